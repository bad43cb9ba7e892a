// `moesim export chakra SCENARIO -o DIR [--prefix workload] [--force] [--fidelity F]
// [--hardware PROFILE]`: the scenario's step, as `moesim simulate` predicts it, written as one
// MLCommons Chakra execution trace per rank and the communicator groups, for ASTRA-sim
// (sim/report/chakra_export.h).

#include <cstdio>
#include <memory>
#include <string>

#include "sim/cli/command.h"
#include "sim/moe/scenario_loader.h"
#include "sim/report/chakra_export.h"
#include "sim/step/scenario_run.h"

namespace moesim::sim {
namespace {

struct ChakraOptions {
  std::string scenario;
  std::string dir;
  std::string prefix = "workload";
  bool force = false;
  double max_gib = static_cast<double>(kChakraMaxBytes) / (1 << 30);
  std::string fidelity = "analytical";
  std::string hardware;
};

int ExportChakra(const ChakraOptions& o, CommandIo& io) {
  const StatusOr<LoadedScenario> s = LoadScenario(o.scenario);
  if (!s.ok()) return Fail(io, s.error());
  if (!s->spec.has_step()) {
    return Fail(io, InputError(Location{s->file.path()}, "step", "absent",
                               "moesim export chakra writes a whole step's ops",
                               "a scenario with a step { ... } block"));
  }
  const auto hardware = ScenarioHardware(*s, o.hardware);
  if (!hardware.ok()) return Fail(io, hardware.error());
  const StatusOr<Fidelity> fidelity = ParseFidelity(o.fidelity);
  if (!fidelity.ok()) return Fail(io, fidelity.error());
  const StatusOr<ScenarioStep> step = SimulateScenarioStep(*s, *fidelity, *hardware);
  if (!step.ok()) return Fail(io, step.error());
  const StatusOr<ChakraExport> e = ChakraExport::Create(*step, s->workload.plan, s->workload.model);
  if (!e.ok()) return Fail(io, e.error());
  const StatusOr<ChakraWritten> w = WriteChakraTraces(
      *e, o.dir, {o.prefix, o.force, static_cast<uint64_t>(o.max_gib * (1 << 30))});
  if (!w.ok()) return Fail(io, w.error());
  char size[64];
  std::snprintf(size, sizeof size, "%.1f MiB, at most %.1f KiB a file",
                static_cast<double>(w->bytes) / (1 << 20),
                static_cast<double>(w->largest_file) / 1024);
  io.out << "moesim export chakra: " << w->files << " traces " << o.dir << "/" << o.prefix
         << ".{0.." << w->files - 1 << "}.et (" << w->nodes << " nodes, " << size << "), "
         << w->groups << " communicator groups in " << o.dir << "/comm_group.json\n"
         << "ASTRA-sim: --workload-configuration=" << o.dir << "/" << o.prefix
         << " --comm-group-configuration=" << o.dir << "/comm_group.json\n";
  return 0;
}

}  // namespace

void AddExportCommand(CLI::App& app, CommandAction* chosen) {
  CLI::App* cmd =
      app.add_subcommand("export", "Write a scenario's workload in another tool's format");
  cmd->require_subcommand(1);
  auto options = std::make_shared<ChakraOptions>();
  CLI::App* chakra = cmd->add_subcommand(
      "chakra",
      "One MLCommons Chakra execution trace per rank (PREFIX.RANK.et) of the scenario's step, and "
      "comm_group.json, for ASTRA-sim");
  chakra->add_option("scenario", options->scenario, "Scenario file (.pbtxt) with a step block")
      ->required();
  chakra
      ->add_option("-o,--output", options->dir,
                   "Directory to write into: created if absent; refused if not empty unless "
                   "--force")
      ->required();
  chakra
      ->add_option("--prefix", options->prefix,
                   "File prefix: ASTRA-sim's --workload-configuration is DIR/PREFIX")
      ->capture_default_str();
  chakra->add_flag("--force", options->force,
                   "Write into a directory that is not empty, replacing files of the same names");
  chakra
      ->add_option("--max-gib", options->max_gib,
                   "Refuse traces estimated larger than this in all (GiB, 2^30 bytes)")
      ->check(CLI::Range(0.001, 1e6))
      ->capture_default_str();
  chakra->add_option("--fidelity", options->fidelity, "Network model of moesim's durations")
      ->check(CLI::IsMember({"analytical", "flow"}))
      ->capture_default_str();
  chakra->add_option("--hardware", options->hardware,
                     "HardwareProfile (.pbtxt) for moesim's durations, as moesim simulate");
  chakra->callback([options, chosen] {
    *chosen = [options](CommandIo& io) { return ExportChakra(*options, io); };
  });
}

}  // namespace moesim::sim
