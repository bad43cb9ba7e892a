// `moesim simulate [SCENARIO] [--json] [--fidelity analytical]`.
#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <memory>

#include "sim/cli.h"
#include "sim/command.h"
#include "sim/moe_layer.h"
#include "sim/replay.h"
#include "sim/report.h"
#include "sim/scenario_loader.h"
#include "sim/timeline.h"

namespace moesim::sim {
namespace {

struct SimulateOptions {
  std::string scenario;
  bool json = false;
  std::string fidelity = "analytical";
  std::string timeline;  // Chrome trace JSON path, or empty
};

int Simulate(const SimulateOptions& options, CommandIo& io) {
  const std::string path = options.scenario.empty() ? DefaultScenarioPath() : options.scenario;
  auto scenario = LoadScenario(path);
  if (!scenario.ok()) {
    io.err << "moesim: error: " << scenario.error().message() << "\n";
    return 1;
  }
  if (Status s = CheckMoeLayerSupport(scenario->workload, scenario->file); !s.ok()) {
    io.err << "moesim: error: " << s.error().message() << "\n";
    return 1;
  }
  const Fidelity fidelity = options.fidelity == "flow" ? Fidelity::kFlow : Fidelity::kAnalytical;
  const pb::Result result = scenario->workload.replay.empty()
                                ? SimulateMoeLayers(scenario->cluster, scenario->workload, fidelity)
                                : SimulateReplay(scenario->cluster, scenario->workload, fidelity);
  if (!options.timeline.empty()) {
    std::ofstream file(options.timeline);
    WriteTimeline(result, scenario->cluster, file);
    if (!file) {
      io.err << "moesim: error: " << options.timeline << ": cannot write the timeline\n";
      return 1;
    }
  }
  if (!options.json) {
    PrintReport(*scenario, result, io.out);
    return 0;
  }
  google::protobuf::util::JsonPrintOptions json;
  json.add_whitespace = true;
  json.always_print_primitive_fields = true;  // layer 0 and zero counts are data, not defaults
  std::string text;
  const auto status = google::protobuf::util::MessageToJsonString(result, &text, json);
  if (!status.ok()) {
    io.err << "moesim: error: cannot print the result as JSON: " << status.ToString() << "\n";
    return 1;
  }
  io.out << text;
  return 0;
}

}  // namespace

void AddSimulateCommand(CLI::App& app, CommandAction* chosen) {
  auto options = std::make_shared<SimulateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "simulate",
      "Predict one scenario: send matrices of dispatch and combine, time of each phase");
  cmd->add_option("scenario", options->scenario,
                  "Scenario file (.pbtxt); default " + DefaultScenarioPath());
  cmd->add_flag("--json", options->json, "Print the Result as protobuf JSON instead of a table");
  cmd->add_option("--fidelity", options->fidelity, "Network model")
      ->check(CLI::IsMember({"analytical", "flow"}))
      ->capture_default_str();
  cmd->add_option("--timeline", options->timeline,
                  "Write a Chrome trace JSON timeline (open in ui.perfetto.dev)");
  cmd->callback(
      [options, chosen] { *chosen = [options](CommandIo& io) { return Simulate(*options, io); }; });
}

int RunDefaultSimulate(CommandIo& io) { return Simulate(SimulateOptions{}, io); }

}  // namespace moesim::sim
