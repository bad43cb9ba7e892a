// Capacity in one-layer scenarios (workload.capacity_factor): copies past an expert's capacity are
// dropped per sender, counted per expert in the Result and the report; and a step's MFU counts only
// the copies computed.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "models/params.h"
#include "moesim_runner.h"
#include "sim/moe/scenario_loader.h"
#include "test_paths.h"

namespace moesim::sim {
namespace {

using testing::Moesim;

// 2 GPUs, 2 experts (one per GPU), top-1, 5 tokens each: GPU 0 routes to experts 1 1 0 1 1,
// GPU 1 to 1 1 1 1 1.
std::string TwoGpuScenario(const std::string& capacity) {
  return R"(
name: "capacity"
cluster { node_preset: "dgx-h100" gpus: 2 }
model_spec {
  name: "toy" hidden_size: 1024 expert_ffn_size: 2048 num_experts: 2 top_k: 1 num_layers: 1
  dtype: BF16
}
plan { ep: 2 }
workload { tokens_per_gpu: 5 )" + capacity + R"( }
routing {
  explicit {
    rank { rank: 0 experts: [1, 1, 0, 1, 1] }
    rank { rank: 1 experts: [1, 1, 1, 1, 1] }
  }
}
)";
}

TEST_CASE("workload.capacity_factor drops copies per sender and counts them per expert") {
  // Capacity per GPU: ceil(5 tokens x top-1 / 2 experts x 1.2) = ceil(3.0) = 3. GPU 0 keeps 3 of its 4 copies
  // for expert 1 and its one for expert 0 (1 dropped); GPU 1 keeps 3 of 5 (2 dropped): 3 drops,
  // all expert 1's, of 10 copies.
  auto s = LoadScenarioFromString(TwoGpuScenario("capacity_factor: 1.2"), "capacity.pbtxt");
  REQUIRE(s.ok());
  const models::LayerWork& w = s->workload.layers.at(0);
  CHECK(w.dropped == std::vector<uint64_t>{1, 2});
  CHECK(w.dropped_per_expert == std::vector<uint64_t>{0, 3});
  CHECK(w.expert_tokens[0][0] == 1);  // expert 0: GPU 0's one copy
  CHECK(w.expert_tokens[1][0] == 6);  // expert 1: 3 + 3 kept of 9

  // The same through the command, as a user runs it.
  const std::string path = testing::TempPath("capacity.pbtxt");
  {
    std::ofstream(path) << TwoGpuScenario("capacity_factor: 1.2");
  }
  const auto text = Moesim({"simulate", path});
  REQUIRE(text.status == 0);
  CHECK_THAT(text.out,
             Catch::Contains("Dropped by capacity (factor 1.2), layer 0: 3 of 10 token copies "
                             "(30.00 %), not sent and not computed\n  per expert: e1:3\n"));
  const auto json = Moesim({"simulate", path, "--json"});
  REQUIRE(json.status == 0);
  CHECK_THAT(json.out, Catch::Contains("\"droppedCopies\": \"3\""));
  // Without a capacity: nothing dropped, no such section.
  {
    std::ofstream(path) << TwoGpuScenario("");
  }
  const auto none = Moesim({"simulate", path});
  REQUIRE(none.status == 0);
  CHECK_THAT(none.out, !Catch::Contains("Dropped by capacity"));
  // A factor must be positive: the declared range says so, located.
  {
    std::ofstream(path) << TwoGpuScenario("capacity_factor: 0");
  }
  const auto zero = Moesim({"simulate", path});
  CHECK(zero.status == 1);
  CHECK_THAT(zero.err, Catch::Contains("workload.capacity_factor = 0: out of range"));
  std::filesystem::remove(path);
}

TEST_CASE("Capacity on OLMoE's measured loads drops the hot expert's excess, exactly") {
  // Capacity per GPU and expert: ceil(26,112 tokens x 8 / 64 experts x 1.25) = 4080. Expert 0 is
  // chosen 204,013 times, about 25,502 per GPU: every GPU keeps 4080 of its copies, so 8 x 4080 =
  // 32,640 are computed and 204,013 - 32,640 = 171,373 dropped.
  const auto r = Moesim(
      {"simulate", testing::SourcePath("scenarios/olmoe_measured_loads_capacity.pbtxt")});
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("  per expert: e0:171373 "));
  CHECK_THAT(r.out, Catch::Contains("of 1671168 token copies"));  // 208,896 tokens x top-8
}

}  // namespace
}  // namespace moesim::sim
