// Fuzzes a scenario file (moesim.pb.Scenario in text format, what `moesim simulate FILE` reads):
// load it as the CLI does (cluster graph, model, plan, routing, per-rank workload), then, for a
// scenario without a `step`, check the layer is supported and simulate it with the analytical
// network model and its critical path, as `moesim simulate` does.
#include <cstdint>
#include <memory>

#include "proto/scenario.pb.h"
#include "proto/text_file.h"
#include "sim/moe/critical_path.h"
#include "sim/moe/moe_layer.h"
#include "sim/moe/replay.h"
#include "sim/moe/scenario_loader.h"
#include "sim/network/network_model.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/work_cap.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = moesim::fuzz::AsText(data, size);
  moesim::pb::Scenario spec;
  if (!moesim::TextFile::ParseString(text, "fuzz.pbtxt", &spec).ok()) return 0;
  if (!moesim::fuzz::ScenarioWithinCap(spec)) return 0;
  auto scenario = moesim::sim::LoadScenarioFromString(text, "fuzz.pbtxt");
  if (!scenario.ok() || scenario->spec.has_step()) return 0;
  const moesim::models::Workload& w = scenario->workload;
  if (!moesim::sim::CheckMoeLayerSupport(w, scenario->file).ok()) return 0;
  const std::unique_ptr<moesim::sim::NetworkModel> net =
      moesim::sim::MakeNetworkModel(scenario->cluster, moesim::sim::Fidelity::kAnalytical);
  moesim::pb::Result result =
      w.replay.empty() ? moesim::sim::SimulateMoeLayers(*net, w) : moesim::sim::SimulateReplay(*net, w);
  if (w.replay.empty()) moesim::sim::AddCriticalPath(w.layers, result);
  return 0;
}
