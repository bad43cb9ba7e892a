// `moesim simulate [SCENARIO] [--json] [--fidelity analytical] [--hardware PROFILE] [--html FILE]`.

#include <memory>
#include <optional>
#include <sstream>
#include <utility>

#include "models/alltoallv_matrix.h"
#include "models/dispatch.h"
#include "models/model_spec.h"
#include "models/wire_dtype.h"
#include "proto/atomic_file.h"
#include "proto/checked.h"
#include "sim/cli/cli.h"
#include "sim/cli/command.h"
#include "sim/cli/step_command.h"
#include "sim/moe/moe_layer.h"
#include "sim/moe/scenario_loader.h"
#include "sim/report/html_report.h"
#include "sim/report/placement_report.h"
#include "sim/report/report.h"
#include "sim/report/timeline.h"
#include "sim/step/scenario_run.h"

namespace moesim::sim {
namespace {

struct SimulateOptions {
  std::string scenario;
  bool json = false;
  std::string fidelity = "analytical";
  double flow_tolerance = 0;     // --flow-tolerance (sim/network/flow_model.h)
  std::string timeline;          // Chrome trace JSON path, or empty
  std::string html;              // HTML report path, or empty
  std::string export_alltoallv;  // nccl-tests alltoallv matrix path, or empty
  uint32_t export_layer = 0;
  std::string hardware;  // HardwareProfile path, or empty (then the scenario's, if any)
};

// Writes layer `layer`'s dispatch bytes (the tokens its alltoall_algo sends directly, x a token's
// bytes in the dispatch dtype) in nccl-tests' alltoallv matrix format (models/alltoallv_matrix.h),
// for `moebench a2a --matrix` or nccl-tests.
// Writes layer `layer`'s dispatch bytes to `path` and says on `err` how nccl-tests runs them.
Status ExportAlltoallv(const models::Workload& w, uint32_t layer, const std::string& path,
                       std::ostream& err) {
  if (layer >= w.layers.size()) {
    return InputError({}, "--export-layer", std::to_string(layer), "no such simulated layer",
                      "0 to " + std::to_string(w.layers.size() - 1));
  }
  const models::TrafficMatrix& tokens = models::SentTokens(w.layers[layer], w.alltoall_algo);
  const uint64_t token_bytes = models::WireTokenBytes(w.model, w.dispatch_dtype).value;
  const models::TrafficMatrix bytes = tokens.Scaled(token_bytes);
  MOESIM_RETURN_IF_ERROR(models::WriteAlltoallvMatrixFile(bytes, path));
  const uint64_t run = models::AlltoallvRunBytes(bytes);
  err << "moesim: wrote " << path << ": layer " << layer << "'s dispatch, " << bytes.ranks()
      << " x " << bytes.ranks() << " ranks, bytes per (source, destination). Run it with\n"
      << "  NCCL_TESTS_ALLTOALLV_MATRIX_FILE=" << path << " mpirun -np " << bytes.ranks()
      << " alltoallv_perf -b " << run << " -e " << run << " -a 3\n"
      << "(-b = -e = the most bytes a rank sends or receives; -a 3: the slowest rank's time)\n";
  return Status::Ok();
}

// The capacity factor's drops of the layers the phases describe (a replay: its slowest step).
void AddDrops(const models::Workload& w, pb::Result& result) {
  if (w.capacity_factor <= 0) return;
  const std::vector<models::LayerWork>* layers = &w.layers;
  for (const models::Workload::Step& step : w.replay) {
    if (step.step == result.replayed_step()) layers = &step.layers;
  }
  for (const models::LayerWork& layer : *layers) {
    pb::LayerDrops* d = result.add_drops();
    d->set_layer(layer.layer);
    d->set_capacity_factor(w.capacity_factor);
    // The copies the router dispatched: sent (kept on the GPU included) or dropped here.
    d->set_routed_copies(layer.dispatch_tokens.Total() + layer.TotalDropped());
    d->set_dropped_copies(layer.TotalDropped());
    d->mutable_dropped_per_expert()->Add(layer.dropped_per_expert.begin(),
                                         layer.dropped_per_expert.end());
  }
}

// What the experts of the layers the phases describe computed (a replay: its slowest step's), per
// logical expert and per GPU, and the capacity a capacity factor gives each expert.
void AddExpertLoads(const models::Workload& w, pb::Result& result) {
  const std::vector<models::LayerWork>* layers = &w.layers;
  for (const models::Workload::Step& step : w.replay) {
    if (step.step == result.replayed_step()) layers = &step.layers;
  }
  for (const models::LayerWork& layer : *layers) {
    const models::LayerPlacement& placement = w.placement.layer(layer.layer);
    pb::ExpertLoads* loads = result.add_expert_loads();
    loads->set_layer(layer.layer);
    std::vector<uint64_t> experts(placement.num_experts(), 0);
    uint64_t capacity = 0;
    for (uint32_t rank = 0; rank < layer.expert_tokens.size(); ++rank) {
      const std::vector<uint32_t>& slots = placement.slots().at(w.plan.EpRank(rank));
      uint64_t gpu = 0;
      for (size_t i = 0; i < layer.expert_tokens[rank].size() && i < slots.size(); ++i) {
        experts.at(slots[i]) += layer.expert_tokens[rank][i];
        gpu += layer.expert_tokens[rank][i];
      }
      loads->add_gpu_tokens(gpu);
      if (rank < layer.tokens_in.size()) {
        capacity += models::ExpertCapacity(layer.tokens_in[rank], w.model.top_k(),
                                           placement.num_experts(), w.capacity_factor);
      }
    }
    loads->mutable_expert_tokens()->Add(experts.begin(), experts.end());
    loads->set_capacity_tokens(capacity);
  }
}

// Everything `moesim simulate` does once the scenario is loaded (from a file, or from text:
// SimulateScenarioText).
int SimulateLoaded(const StatusOr<LoadedScenario>& scenario, const SimulateOptions& options,
                   CommandIo& io) {
  if (!scenario.ok()) return Fail(io, scenario.error());
  auto hardware = ScenarioHardware(*scenario, options.hardware);
  if (!hardware.ok()) return Fail(io, hardware.error());
  const StatusOr<Fidelity> fidelity = ParseFidelity(options.fidelity);
  if (!fidelity.ok()) return Fail(io, fidelity.error());
  const StatusOr<FlowOptions> flow =
      ParseFlowOptions(options.flow_tolerance, *fidelity == Fidelity::kFlow);
  if (!flow.ok()) return Fail(io, flow.error());
  // Before the simulation, which may be long: paths that cannot be written fail now.
  for (const auto& [path, option] :
       {std::pair{options.timeline, "--timeline"}, std::pair{options.html, "--html"},
        std::pair{options.export_alltoallv, "--export-alltoallv"}}) {
    if (path.empty()) continue;
    if (Status s = CheckOutputPath(path, option); !s.ok()) return Fail(io, s.error());
  }
  if (scenario->spec.has_step()) {
    return RunScenarioStep(*scenario, *fidelity, *flow, options.json,
                           {options.timeline, options.html}, *hardware, io);
  }
  if (Status s = CheckMoeLayerSupport(scenario->workload, scenario->file); !s.ok())
    return Fail(io, s.error());
  if (!options.export_alltoallv.empty()) {
    const Status s =
        ExportAlltoallv(scenario->workload, options.export_layer, options.export_alltoallv, io.err);
    if (!s.ok()) return Fail(io, s.error());
  }
  // A replay's timeline shows every step, so keep each step's Result for it.
  std::vector<pb::Result> replay_steps;
  const bool every_step = !options.timeline.empty() && !scenario->workload.replay.empty();
  auto simulated = SimulateScenarioLayers(*scenario, *fidelity, *hardware,
                                          every_step ? &replay_steps : nullptr, *flow);
  if (!simulated.ok()) return Fail(io, simulated.error());
  pb::Result result = *std::move(simulated);
  AddDrops(scenario->workload, result);
  AddExpertLoads(scenario->workload, result);
  result.set_gpus_per_node(scenario->cluster.gpus_per_node());
  *result.mutable_placement() = PlacementToProto(
      scenario->workload.placement, static_cast<uint32_t>(scenario->workload.layers.size()));
  for (const pb::RouterFigures& f : scenario->workload.router_figures) {
    *result.add_router_figures() = f;
  }
  if (const Status sane = CheckReportedFigures(result, "scenario " + scenario->workload.name);
      !sane.ok())
    return Fail(io, sane.error());
  if (!options.timeline.empty()) {
    std::ostringstream timeline;
    if (every_step) {
      WriteReplayTimeline(replay_steps, scenario->cluster, timeline);
    } else {
      WriteTimeline(result, scenario->cluster, timeline);
    }
    const Status written = WriteFileAtomically(options.timeline, timeline.str(), "the timeline");
    if (!written.ok()) return Fail(io, written.error());
  }
  if (!options.html.empty()) {
    const Status written =
        WriteFileAtomically(options.html, HtmlResultPage(result), "the HTML report");
    if (!written.ok()) return Fail(io, written.error());
  }
  if (!options.json) {
    PrintReport(*scenario, result, io.out);
    return 0;
  }
  return PrintJson(result, io);
}

int Simulate(const SimulateOptions& options, CommandIo& io) {
  std::string path = options.scenario;
  if (path.empty()) {
    const StatusOr<std::string> default_path = DefaultScenarioPath();
    if (!default_path.ok()) return Fail(io, default_path.error());
    path = *default_path;
  }
  return SimulateLoaded(LoadScenario(path), options, io);
}

}  // namespace

void AddSimulateCommand(CLI::App& app, CommandAction* chosen) {
  auto options = std::make_shared<SimulateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "simulate",
      "Predict one scenario: send matrices of dispatch and combine, time of each phase");
  cmd->add_option("scenario", options->scenario,
                  "Scenario file (.pbtxt); default scenarios/default.pbtxt in moesim's data "
                  "folder ($MOESIM_DATA_DIR, or ../share/moesim beside the executable)");
  cmd->add_flag("--json", options->json, "Print the Result as protobuf JSON instead of a table");
  cmd->add_option("--fidelity", options->fidelity, "Network model")
      ->check(CLI::IsMember({"analytical", "flow"}))
      ->capture_default_str();
  cmd->add_option("--flow-tolerance", options->flow_tolerance,
                  "With --fidelity flow: finish every flow due within this fraction of its own "
                  "time together, in one re-solve (direct all-to-alls; faster; 0 = exact; e.g. "
                  "0.01, at most 0.1)")
      ->capture_default_str();
  cmd->add_option("--timeline", options->timeline,
                  "Write a Chrome trace JSON timeline (open in ui.perfetto.dev)");
  cmd->add_option("--html", options->html,
                  "Write a self-contained HTML report with pictures (heatmaps, loads, links, "
                  "timeline; for a step: the pipeline, the ops, the memory; no network needed)");
  cmd->add_option("--export-alltoallv", options->export_alltoallv,
                  "Write one layer's dispatch bytes as an nccl-tests alltoallv matrix file "
                  "(NCCL_TESTS_ALLTOALLV_MATRIX_FILE; `moebench a2a --matrix`)");
  cmd->add_option("--export-layer", options->export_layer, "Layer --export-alltoallv writes")
      ->capture_default_str();
  cmd->add_option("--hardware", options->hardware,
                  "A HardwareProfile (moesim calibrate --out): measured GEMM, memory, launch and "
                  "all-to-all figures replace the datasheet's and the per-kernel efficiencies");
  cmd->callback(
      [options, chosen] { *chosen = [options](CommandIo& io) { return Simulate(*options, io); }; });
}

int RunDefaultSimulate(CommandIo& io) { return Simulate(SimulateOptions{}, io); }

int SimulateScenarioText(std::string_view text, const std::string& name,
                         const std::string& fidelity, std::ostream& out, std::ostream& err) {
  SimulateOptions options;
  options.json = true;
  options.fidelity = fidelity;
  CommandIo io{out, err};
  return SimulateLoaded(LoadScenarioFromString(text, name), options, io);
}

}  // namespace moesim::sim
