// Every whole-step scenario in scenarios/: its Perfetto timeline (WriteStepTimeline) ends where the
// report's step does (step_ns), so what the user sees in Perfetto is what the report prices.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sim/step/scenario_run.h"
#include "sim/step/step_report.h"
#include "test_paths.h"

namespace moesim::sim {

TEST_CASE("Timeline end equals the report's step for every step scenario in scenarios/") {
  std::vector<std::filesystem::path> files;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(testing::SourcePath("scenarios"))) {
    if (entry.path().extension() == ".pbtxt") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  int steps = 0;
  for (const std::filesystem::path& file : files) {
    auto scenario = LoadScenario(file.string());
    if (!scenario.ok() || !scenario->spec.has_step()) continue;  // clusters, layers, traces
    INFO(file.string());
    auto hardware = ScenarioHardware(*scenario, "");
    REQUIRE(hardware.ok());
    auto step = SimulateScenarioStep(*scenario, Fidelity::kAnalytical, *hardware);
    REQUIRE(step.ok());
    const pb::StepResult& r = step->result;
    std::ostringstream out;
    WriteStepTimeline(r, out);
    const nlohmann::json trace = nlohmann::json::parse(out.str());
    // The pipeline's stages are processes 0..p-1; the last process is one micro-batch's ops.
    const int p = r.stage_forward_ns_size();
    double end_us = 0;
    for (const nlohmann::json& e : trace["traceEvents"]) {
      if (e["ph"] != "X" || e["pid"].get<int>() >= p) continue;
      end_us = std::max(end_us, e["ts"].get<double>() + e["dur"].get<double>());
    }
    // The timeline lays out F, B, P and the bubble as whole ns; the report sums picoseconds. Each
    // of the m + p + 1 ops on the longest chain, and the gradient reduction and optimizer after,
    // rounds by under 1 ns: at most m + p + 3 ns apart.
    const double tolerance_ns = r.micro_batches() + p + 3;
    CHECK(std::abs(end_us * 1e3 - static_cast<double>(r.step_ns())) <= tolerance_ns);
    ++steps;
  }
  CHECK(steps >= 13);  // 6 examples and the 7 published configurations in scenarios/validation/
}

}  // namespace moesim::sim
