// Many trace files by name (models/trace_files.h): the pattern, globs, the grid and its order.
#include "models/trace_files.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_paths.h"

namespace moesim::models {
namespace {

TraceNamePattern Pattern(const std::string& text) {
  auto p = TraceNamePattern::Parse(text);
  REQUIRE(p.ok());
  return *p;
}

std::string PatternProblem(const std::string& text) {
  auto p = TraceNamePattern::Parse(text);
  REQUIRE_FALSE(p.ok());
  return p.error().message();
}

}  // namespace

TEST_CASE("trace name pattern: placeholders read digits from the whole base name") {
  const TraceNamePattern p = Pattern("r{rank}_l{layer}_s{step}.csv");
  auto cell = p.Match("r12_l3_s40.csv");
  REQUIRE(cell.ok());
  REQUIRE(cell->has_value());
  CHECK((*cell)->rank == 12u);
  CHECK((*cell)->layer == 3u);
  CHECK((*cell)->step == 40u);
  // The '.' is literal, not "any character"; the whole name must match.
  CHECK_FALSE(p.Match("r12_l3_s40xcsv")->has_value());
  CHECK_FALSE(p.Match("r12_l3_s40.csv.bak")->has_value());
  CHECK_FALSE(p.Match("rx_l3_s40.csv")->has_value());
  // A placeholder followed by a digit: the split the literal forces ("0" belongs to the text).
  auto zero = Pattern("r{rank}0.npy").Match("r70.npy");
  REQUIRE(zero.ok());
  CHECK((*zero)->rank == 7u);
  CHECK_FALSE((*zero)->layer.has_value());
  // A rank past uint32: an error, not a wrapped number.
  auto big = p.Match("r4294967296_l0_s0.csv");
  REQUIRE_FALSE(big.ok());
  CHECK_THAT(big.error().message(), Catch::Contains("{rank} = 4294967296 is out of range"));
}

TEST_CASE("trace name pattern: bad patterns are named with what is valid") {
  CHECK_THAT(PatternProblem("r{gpu}.csv"), Catch::Contains("unknown placeholder {gpu}"));
  CHECK_THAT(PatternProblem("r{rank}_{rank}.csv"), Catch::Contains("{rank} appears twice"));
  CHECK_THAT(PatternProblem("{rank}{layer}.csv"), Catch::Contains("side by side"));
  CHECK_THAT(PatternProblem("r{rank.csv"), Catch::Contains("'{' at column 2 is not closed"));
  CHECK_THAT(PatternProblem("topk.csv"), Catch::Contains("no placeholder"));
  CHECK_THAT(PatternProblem("topk.csv"), Catch::Contains("valid: literal text with {step}"));
}

TEST_CASE("trace files: the grid sorted by (step, layer, rank), the first missing cell named") {
  const TraceNamePattern p = Pattern("l{layer}_r{rank}.csv");
  // Given out of order: the inputs come back by (layer, rank), the step from the defaults (5).
  auto grid = PlaceTraceFiles({"d/l1_r1.csv", "d/l0_r1.csv", "d/l1_r0.csv", "d/l0_r0.csv"}, p,
                              {"", 5, 0, 0});
  REQUIRE(grid.ok());
  REQUIRE(grid->inputs.size() == 4);
  CHECK(grid->inputs[0].path == "d/l0_r0.csv");
  CHECK(grid->inputs[1].path == "d/l0_r1.csv");
  CHECK(grid->inputs[2].path == "d/l1_r0.csv");
  CHECK(grid->inputs[3].path == "d/l1_r1.csv");
  CHECK(grid->inputs[3].step == 5);
  CHECK(grid->ranks == 2);
  CHECK(grid->layers == 2);
  CHECK(grid->steps == 1);
  // Layer 1 rank 0 missing: named; ranks start at 0, so a missing rank 0 is found too.
  auto hole = PlaceTraceFiles({"l0_r0.csv", "l0_r1.csv", "l1_r1.csv"}, p, {});
  REQUIRE_FALSE(hole.ok());
  CHECK_THAT(hole.error().message(), Catch::Contains("no file for step 0, layer 1, rank 0"));
  auto no_zero = PlaceTraceFiles({"l0_r1.csv"}, p, {});
  REQUIRE_FALSE(no_zero.ok());
  CHECK_THAT(no_zero.error().message(), Catch::Contains("no file for step 0, layer 0, rank 0"));
  // The same cell twice (two folders): both files named.
  auto twice = PlaceTraceFiles({"a/l0_r0.csv", "b/l0_r0.csv"}, p, {});
  REQUIRE_FALSE(twice.ok());
  CHECK_THAT(twice.error().message(),
             Catch::Contains("step 0, layer 0, rank 0 is in two files: a/l0_r0.csv and "
                             "b/l0_r0.csv"));
  auto stranger = PlaceTraceFiles({"l0_r0.csv", "notes.txt"}, p, {});
  REQUIRE_FALSE(stranger.ok());
  CHECK_THAT(stranger.error().message(),
             Catch::Contains("notes.txt: the base name \"notes.txt\" does not match --pattern"));
}

TEST_CASE("trace files: quoted globs expanded in sorted order, a glob without a match refused") {
  const std::filesystem::path dir = testing::TempPath("trace_globs");
  std::filesystem::create_directories(dir);
  for (const char* name : {"r1.csv", "r0.csv", "r10.csv"}) std::ofstream(dir / name) << "0\n";
  auto files = ExpandTraceGlobs({(dir / "r*.csv").string(), "plain.csv"});
  REQUIRE(files.ok());
  CHECK(*files == std::vector<std::string>{(dir / "r0.csv").string(), (dir / "r1.csv").string(),
                                           (dir / "r10.csv").string(), "plain.csv"});
  auto none = ExpandTraceGlobs({(dir / "*.npy").string()});
  REQUIRE_FALSE(none.ok());
  CHECK_THAT(none.error().message(), Catch::Contains("no file matches this pattern"));
  std::filesystem::remove_all(dir);
}

}  // namespace moesim::models
