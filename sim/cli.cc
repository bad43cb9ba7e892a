#include "sim/cli.h"

#include <google/protobuf/util/json_util.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>

#include "sim/analytical.h"
#include "sim/report.h"
#include "sim/scenario_loader.h"

#ifndef MOESIM_DEFAULT_SCENARIO
#error "MOESIM_DEFAULT_SCENARIO must be defined by the build"
#endif

namespace moesim::sim {
namespace {

struct SimulateOptions {
  std::string scenario;
  bool json = false;
  std::string fidelity = "analytical";
};

int Simulate(const SimulateOptions& options, std::ostream& out, std::ostream& err) {
  const std::string path = options.scenario.empty() ? DefaultScenarioPath() : options.scenario;
  auto scenario = LoadScenario(path);
  if (!scenario.ok()) {
    err << "moesim: error: " << scenario.error().message() << "\n";
    return 1;
  }
  if (Status s = CheckAnalyticalSupport(scenario->workload, scenario->file); !s.ok()) {
    err << "moesim: error: " << s.error().message() << "\n";
    return 1;
  }
  const pb::Result result = SimulateAnalytical(scenario->cluster, scenario->workload);
  if (options.json) {
    google::protobuf::util::JsonPrintOptions json;
    json.add_whitespace = true;
    json.always_print_primitive_fields = true;  // layer 0 and zero counts are data, not defaults
    std::string text;
    const auto status = google::protobuf::util::MessageToJsonString(result, &text, json);
    if (!status.ok()) {
      err << "moesim: error: cannot print the result as JSON: " << status.ToString() << "\n";
      return 1;
    }
    out << text;
  } else {
    PrintReport(*scenario, result, out);
  }
  return 0;
}

}  // namespace

std::string DefaultScenarioPath() {
  if (const char* env = std::getenv("MOESIM_DEFAULT_SCENARIO"); env != nullptr && *env != '\0') {
    return env;
  }
  return MOESIM_DEFAULT_SCENARIO;
}

int RunMoesim(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app{
      "moesim predicts what a Mixture-of-Experts layer costs on a GPU cluster under a parallel plan:\n"
      "the dispatch and combine all-to-alls, the expert FFNs, phase by phase.\n"
      "With no command, runs `simulate` on the default scenario.",
      "moesim"};
  app.set_version_flag("--version", "moesim 0.1.0");

  SimulateOptions simulate;
  CLI::App* sim_cmd = app.add_subcommand(
      "simulate", "Predict one scenario: send matrices of dispatch and combine, time of each phase");
  sim_cmd->add_option("scenario", simulate.scenario,
                      "Scenario file (.pbtxt); default " + DefaultScenarioPath());
  sim_cmd->add_flag("--json", simulate.json, "Print the Result as protobuf JSON instead of a table");
  sim_cmd->add_option("--fidelity", simulate.fidelity, "Network model")
      ->check(CLI::IsMember({"analytical"}))
      ->capture_default_str();
  app.require_subcommand(0, 1);

  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them back to front
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e, out, err);
    return code == 0 ? 0 : 2;
  }
  // `moesim` alone and `moesim simulate` both run the default scenario.
  return Simulate(simulate, out, err);
}

}  // namespace moesim::sim
