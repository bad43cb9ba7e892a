// `moesim placement show SCENARIO [--json]`: which experts (and replicas) each EP rank holds under
// the scenario's plan { placement { ... } }, layer by layer, in DeepSeek EPLB's terms (phy2log,
// logcnt, log2phy; sim/report/placement_report.h).

#include <memory>
#include <string>

#include "sim/cli/command.h"
#include "sim/moe/scenario_loader.h"
#include "sim/report/placement_report.h"

namespace moesim::sim {
namespace {

struct PlacementOptions {
  std::string scenario;
  bool json = false;
};

int Show(const PlacementOptions& o, CommandIo& io) {
  auto scenario = LoadScenario(o.scenario);
  if (!scenario.ok()) return Fail(io, scenario.error());
  if (scenario->spec.has_step()) {
    // A step draws its placement for each plan's micro-batch (sim/step/step.h, StepMoeLayer).
    io.err << "moesim: error: " << o.scenario
           << ": a scenario with a step block places experts per plan as it runs; `placement "
              "show` reads a one-layer scenario (a workload block)\n";
    return 1;
  }
  const models::Workload& w = scenario->workload;
  const pb::PlacementReport report =
      PlacementToProto(w.placement, static_cast<uint32_t>(w.layers.size()));
  if (o.json) return PrintJson(report, io);
  io.out << "moesim placement show: " << o.scenario << " (" << w.plan.sizes().ep
         << " EP ranks in each of " << w.plan.world() / w.plan.sizes().ep
         << " EP groups; every EP group holds the same placement)\n";
  PrintPlacement(report, /*max_ranks=*/0, io.out);
  return 0;
}

}  // namespace

void AddPlacementCommand(CLI::App& app, CommandAction* chosen) {
  auto options = std::make_shared<PlacementOptions>();
  CLI::App* placement = app.add_subcommand(
      "placement", "Expert placements: which experts and replicas each EP rank holds");
  placement->require_subcommand(1);
  CLI::App* show = placement->add_subcommand(
      "show",
      "Per layer and EP rank, the experts it holds (contiguous, round-robin, file or EPLB, with "
      "replicas): phy2log, logcnt and log2phy as DeepSeek's EPLB prints them");
  show->add_option("scenario", options->scenario, "Scenario file (.pbtxt)")->required();
  show->add_flag("--json", options->json, "Print the PlacementReport as protobuf JSON");
  show->callback([options, chosen] {
    *chosen = [options](CommandIo& io) { return Show(*options, io); };
  });
}

}  // namespace moesim::sim
