// `moesim result show FILE [--json]` (sim/cli/report_command.cc): a Result or plan table written
// before, printed as the command that made it prints it.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/moesim_runner.h"
#include "tests/test_paths.h"

namespace moesim::testing {
namespace {

// `text` from its first blank line on: a report without its header.
std::string AfterHeader(const std::string& text) {
  const size_t at = text.find("\n\n");
  return at == std::string::npos ? "" : text.substr(at + 2);
}

std::string Written(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

}  // namespace

TEST_CASE("result show prints a Result as simulate does, below a header of its own") {
  // The seed, simulated (text) and written as JSON then shown: the same placement, matrices,
  // phases, critical path and busiest links, token bytes read off the matrices (8192 B).
  const std::string seed = SourcePath("scenarios/seed_example.pbtxt");
  const MoesimRun text = Moesim({"simulate", seed});
  const MoesimRun json = Moesim({"simulate", seed, "--json"});
  REQUIRE(text.status == 0);
  REQUIRE(json.status == 0);
  const std::string path = Written(TempPath("seed_result.json"), json.out);
  const MoesimRun shown = Moesim({"result", "show", path});
  REQUIRE(shown.status == 0);
  CHECK(AfterHeader(shown.out) == AfterHeader(text.out));
  CHECK(shown.out.rfind("moesim result: " + path +
                            ": seed example: 4 GPUs, 8 experts, top-1 "
                            "(analytical), 4 GPUs, total 212.94 us\n",
                        0) == 0);
  // --json: the Result again, as simulate --json printed it.
  const MoesimRun again = Moesim({"result", "show", path, "--json"});
  CHECK(again.out == json.out);
  std::filesystem::remove(path);
}

TEST_CASE("result show prints a measured binary Result and a plan table") {
  // moebench's Result of the held-out Zipf run (results/calibration/heldout): its phases.
  const MoesimRun measured =
      Moesim({"result", "show", SourcePath("results/calibration/heldout/zipf1.2-t384.pb")});
  REQUIRE(measured.status == 0);
  CHECK(measured.out.find("(measured)") != std::string::npos);
  CHECK(measured.out.find("Phases (each takes its slowest GPU's time") != std::string::npos);
  // A plan table written by plan --json prints as plan prints it with every row (--top past
  // the rows: the plan column as wide as the longest plan of them all).
  const std::vector<std::string> plan = {"plan", "--model",        "mixtral-8x7b", "--gpus",
                                         "8",    "--global-batch", "16",           "--seq-len",
                                         "512",  "--quiet"};
  std::vector<std::string> all = plan, as_json = plan;
  all.insert(all.end(), {"--top", "100000"});
  as_json.push_back("--json");
  const MoesimRun table = Moesim(all);
  const MoesimRun printed = Moesim(as_json);
  REQUIRE(table.status == 0);
  REQUIRE(printed.status == 0);
  const std::string path = Written(TempPath("plan_table.json"), printed.out);
  const MoesimRun shown = Moesim({"result", "show", path});
  REQUIRE(shown.status == 0);
  CHECK(shown.out == table.out);
  std::filesystem::remove(path);
}

TEST_CASE("result show refuses what is not a Result and needs a subcommand") {
  const std::string path = Written(TempPath("not_a_result.json"), "{\"nope\": 1}\n");
  const MoesimRun bad = Moesim({"result", "show", path});
  CHECK(bad.status == 1);
  CHECK(bad.err.rfind("moesim: error: " + path, 0) == 0);
  std::filesystem::remove(path);
  const MoesimRun missing = Moesim({"result", "show", TempPath("no_such_file.pb")});
  CHECK(missing.status == 1);
  CHECK(Moesim({"result"}).status != 0);
}

}  // namespace moesim::testing

namespace moesim::testing {

TEST_CASE("result show prints a whole step's StepResult as simulate prints the step") {
  // scenarios/mixtral-8x7b-h100-64.pbtxt has a step block: simulate --json writes a StepResult,
  // whose report `result show` prints line for line as simulate does (the batch line from the
  // step block's figures the file keeps), and --json gives the file back.
  const std::string scenario = SourcePath("scenarios/mixtral-8x7b-h100-64.pbtxt");
  const MoesimRun text = Moesim({"simulate", scenario});
  const MoesimRun json = Moesim({"simulate", scenario, "--json"});
  REQUIRE(text.status == 0);
  REQUIRE(json.status == 0);
  const std::string path = Written(TempPath("mixtral_step.json"), json.out);
  const MoesimRun shown = Moesim({"result", "show", path});
  REQUIRE(shown.status == 0);
  CHECK(shown.out == text.out);
  CHECK(Moesim({"result", "show", path, "--json"}).out == json.out);
  std::filesystem::remove(path);
}

}  // namespace moesim::testing
