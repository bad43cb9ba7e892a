#include <catch2/catch.hpp>

#include "backend/run/bench_scenario.h"
#include "test_paths.h"

namespace moesim::backend {

TEST_CASE("bench scenario: the seed example resolves as the simulator resolves it") {
  auto s = LoadBenchScenario(testing::SourcePath("scenarios/seed_example.pbtxt"));
  REQUIRE(s.ok());
  CHECK(s->ranks == 4);          // cluster.gpus: 4
  CHECK(s->gpus_per_node == 8);  // dgx-h100
  CHECK(s->workload.plan.sizes().ep == 4);
  CHECK(s->workload.layers.size() == 1);
  CHECK(CheckRankCount(*s, 4, "MPI ranks (mpirun -np)").ok());
}

TEST_CASE("bench scenario: a rank count that does not match the plan names both numbers") {
  const std::string path = testing::SourcePath("scenarios/seed_example.pbtxt");
  auto s = LoadBenchScenario(path);
  REQUIRE(s.ok());
  const Status two = CheckRankCount(*s, 2, "MPI ranks (mpirun -np)");
  REQUIRE_FALSE(two.ok());
  CHECK(two.error().message() ==
        path +
            ":16:1: MPI ranks (mpirun -np) = 2: the scenario's plan needs 4 ranks "
            "(cluster.gpus = 4, one rank per GPU) but this run has 2; valid: 4 (mpirun -np 4)");
  const Status gpus = CheckRankCount(*s, 8, "--gpus");
  REQUIRE_FALSE(gpus.ok());
  CHECK_THAT(gpus.error().message(),
             Catch::EndsWith("--gpus = 8: the scenario's plan needs 4 ranks (cluster.gpus = 4, "
                             "one rank per GPU) but this run has 8; valid: 4"));
}

TEST_CASE("bench scenario: plans moebench does not run are refused at their line") {
  const std::string text = R"(
cluster { node_preset: "dgx-h100" gpus: 8 }
model: "mixtral-8x7b"
plan { ep: 4 pp: 2 }
workload { tokens_per_gpu: 16 }
routing { synthetic { distribution: UNIFORM seed: 1 } }
)";
  auto s = LoadBenchScenarioFromString(text, "pp.pbtxt");
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.error().message(), Catch::StartsWith("pp.pbtxt:4:14: plan.pp = 2: moebench runs "
                                                    "one MoE layer on every rank"));
  auto missing = LoadBenchScenario(testing::SourcePath("scenarios/no_such_file.pbtxt"));
  CHECK_FALSE(missing.ok());
}

}  // namespace moesim::backend
