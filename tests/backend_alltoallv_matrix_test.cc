// models/alltoallv_matrix.h: nccl-tests' alltoallv matrix files, and moesim's export of them.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "models/alltoallv_matrix.h"
#include "moesim_runner.h"
#include "test_paths.h"

namespace moesim::models {
namespace {

using testing::TempPath;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("alltoallv matrix: nccl-tests' example is read with every cell rounded down to 16 B") {
  // The 3-rank example in nccl-tests src/alltoallv.cu; 100 -> 96, 200 -> 192, 150 -> 144, ...
  auto m = ParseAlltoallvMatrix("100  200  150\n50   100  75\n300  150  200\n", "ex.txt", 3);
  REQUIRE(m.ok());
  CHECK(m->at(0, 0) == 96);
  CHECK(m->at(0, 1) == 192);
  CHECK(m->at(0, 2) == 144);
  CHECK(m->at(1, 0) == 48);
  CHECK(m->at(1, 2) == 64);
  CHECK(m->at(2, 0) == 288);
  // A larger matrix serves fewer ranks: its top-left corner.
  auto corner = ParseAlltoallvMatrix("16 32 48\n64 80 96\n112 128 144\n\n", "ex.txt", 2);
  REQUIRE(corner.ok());
  CHECK(corner->ranks() == 2);
  CHECK(corner->at(1, 1) == 80);
}

TEST_CASE("alltoallv matrix: written then read gives the same matrix") {
  TrafficMatrix m(3);
  m.at(0, 1) = 8192;
  m.at(2, 0) = 16;
  m.at(1, 1) = 1 << 30;
  std::ostringstream text;
  WriteAlltoallvMatrix(m, text);
  CHECK(text.str() == "0 8192 0\n0 1073741824 0\n16 0 0\n");
  auto back = ParseAlltoallvMatrix(text.str(), "m.txt", 3);
  REQUIRE(back.ok());
  CHECK(*back == m);
}

TEST_CASE("alltoallv matrix: bad files name the place and what is valid") {
  auto negative = ParseAlltoallvMatrix("16 32\n-16 0\n", "bad.txt", 2);
  REQUIRE_FALSE(negative.ok());
  CHECK(negative.error().message() ==
        "bad.txt:2:1: row 1 column 0 = -16: not a byte count; valid: a non-negative number");
  auto word = ParseAlltoallvMatrix("16 x2\n0 0\n", "bad.txt", 2);
  REQUIRE_FALSE(word.ok());
  CHECK_THAT(word.error().message(), Catch::StartsWith("bad.txt:1:4: row 0 column 1 = x2"));
  auto ragged = ParseAlltoallvMatrix("16 32\n0\n", "bad.txt", 2);
  REQUIRE_FALSE(ragged.ok());
  CHECK_THAT(ragged.error().message(), Catch::Contains("rows have different lengths"));
  auto wide = ParseAlltoallvMatrix("16 32 48\n0 0 0\n", "bad.txt", 2);
  REQUIRE_FALSE(wide.ok());
  CHECK_THAT(wide.error().message(), Catch::Contains("matrix = 2x3: not square"));
  auto small = ParseAlltoallvMatrix("16 32\n0 0\n", "bad.txt", 4);
  REQUIRE_FALSE(small.ok());
  CHECK(small.error().message() ==
        "bad.txt: matrix = 2x2: smaller than the 4 ranks of this run; valid: at least 4 rows and "
        "columns");
  CHECK_FALSE(ParseAlltoallvMatrix(" \n\n", "bad.txt", 1).ok());
  CHECK_FALSE(ReadAlltoallvMatrix(TempPath("does_not_exist"), 1).ok());
}

TEST_CASE("moesim --export-alltoallv writes the seed example's dispatch bytes moebench reads") {
  const std::string path = TempPath("seed_dispatch.txt");
  const auto run = testing::Moesim({"simulate", testing::SourcePath("scenarios/seed_example.pbtxt"),
                                    "--export-alltoallv", path});
  REQUIRE(run.status == 0);
  // Dispatch tokens [1 2 0 1; 1 1 1 1; 1 1 1 1; 1 2 0 1] x 4096 BF16 elements x 2 B = 8192 B each.
  CHECK(Slurp(path) ==
        "8192 16384 0 8192\n8192 8192 8192 8192\n8192 8192 8192 8192\n8192 16384 0 8192\n");
  auto read = ReadAlltoallvMatrix(path, 4);
  REQUIRE(read.ok());
  const uint64_t expected[4][4] = {{8192, 16384, 0, 8192},
                                   {8192, 8192, 8192, 8192},
                                   {8192, 8192, 8192, 8192},
                                   {8192, 16384, 0, 8192}};
  for (uint32_t i = 0; i < 4; ++i) {
    for (uint32_t j = 0; j < 4; ++j) CHECK(read->at(i, j) == expected[i][j]);
  }
  // What to run it with: every rank sends 4 x 8192 B, GPU 1 receives 2 + 1 + 1 + 2 = 6 tokens,
  // 49,152 B, the most: -b = -e = 49152.
  CHECK_THAT(run.err, Catch::Contains("NCCL_TESTS_ALLTOALLV_MATRIX_FILE=" + path +
                                      " mpirun -np 4 alltoallv_perf -b 49152 -e 49152 -a 3"));
  std::filesystem::remove(path);
  // A layer the scenario does not simulate is refused.
  const auto bad = testing::Moesim({"simulate", testing::SourcePath("scenarios/seed_example.pbtxt"),
                                    "--export-alltoallv", path, "--export-layer", "3"});
  CHECK(bad.status == 1);
  CHECK_THAT(bad.err,
             Catch::Contains("--export-layer = 3: no such simulated layer; valid: 0 to 0"));
}

TEST_CASE("AlltoallvRunBytes: the most a rank sends or receives, cells rounded down to 16 B") {
  // [[0, 100], [0, 50]] as nccl-tests reads it: [[0, 96], [0, 48]]. Rank 0 sends 96, rank 1 48;
  // rank 1 receives 96 + 48 = 144, the most: alltoallv_perf -b 144 -e 144.
  TrafficMatrix m(2);
  m.at(0, 1) = 100;
  m.at(1, 1) = 50;
  CHECK(AlltoallvRunBytes(m) == 144);
  CHECK(AlltoallvRunBytes(TrafficMatrix(3)) == 0);
}

}  // namespace moesim::models
