#include "models/placement.h"

#include <catch2/catch.hpp>

#include "models/dispatch.h"
#include "models/placement_file.h"
#include "models/placement_spec.h"
#include "models/plan.h"
#include "models/workload.h"
#include "proto/text_file.h"

namespace moesim::models {
namespace {

using Slots = std::vector<std::vector<uint32_t>>;
using Replica = LayerPlacement::Replica;

std::vector<uint64_t> SendRow(const TrafficMatrix& m, uint32_t src) {
  std::vector<uint64_t> row;
  for (uint32_t j = 0; j < m.ranks(); ++j) row.push_back(m.at(src, j));
  return row;
}

Plan EpPlan(uint32_t world, uint32_t ep, uint32_t experts) {
  pb::ParallelPlan spec;
  spec.set_ep(ep);
  spec.mutable_placement()->set_kind(pb::ExpertPlacementSpec::FROM_FILE);  // no divisibility
  pb::ModelSpec model;
  model.set_num_experts(experts);
  return ResolvePlan(spec, world, model, nullptr).value();
}

}  // namespace

TEST_CASE("RankLoads splits a replicated expert's load evenly, the first replicas taking the rest") {
  // 3 experts on 2 EP ranks, expert 0 on both: rank 0 holds {0, 1}, rank 1 holds {2, 0}.
  // Loads {5, 4, 2}: expert 0's 5 split 3 (its first replica, rank 0) + 2 (rank 1); rank 0 also
  // computes expert 1's 4, rank 1 expert 2's 2: {3 + 4, 2 + 2} = {7, 4}.
  const LayerPlacement layer(3, {{0, 1}, {2, 0}});
  CHECK(RankLoads(layer, std::vector<uint64_t>{5, 4, 2}) == std::vector<uint64_t>{7, 4});
  // An even load splits exactly: {6, 0, 0} -> {3, 3}.
  CHECK(RankLoads(layer, std::vector<uint64_t>{6, 0, 0}) == std::vector<uint64_t>{3, 3});
}

TEST_CASE("Contiguous and round-robin placements") {
  const ExpertPlacement c = ExpertPlacement::Contiguous(8, 4);
  CHECK(c.layer(0).slots() == Slots{{0, 1}, {2, 3}, {4, 5}, {6, 7}});
  CHECK(c.layer(7).slots() == c.layer(0).slots());  // one placement serves every layer
  CHECK(c.description() == "contiguous");
  // Round-robin, 10 experts over 4: e on rank e mod 4, slot e / 4; ranks 0 and 1 hold 3.
  const ExpertPlacement r = ExpertPlacement::RoundRobin(10, 4);
  CHECK(r.layer(0).slots() == Slots{{0, 4, 8}, {1, 5, 9}, {2, 6}, {3, 7}});
  CHECK(r.experts_per_rank() == 3);
  CHECK(r.EpRankOf(9) == 1);
  CHECK(r.LocalIndexOf(9) == 2);
  CHECK(r.layer(0).physical_experts() == 10);
}

TEST_CASE("A token goes to the replica on its own GPU then on its node then in turn") {
  // Expert 0 on EP ranks 0 and 2; EP group = global ranks 0-3; 2 GPUs per node: {0,1} {2,3}.
  const LayerPlacement layer(2, {{0}, {1}, {0}, {}});
  const std::vector<uint32_t> group = {0, 1, 2, 3};
  CHECK(layer.ReplicasOf(0) == std::vector<Replica>{{0, 0}, {2, 0}});
  for (uint64_t nth = 0; nth < 3; ++nth) {
    CHECK(ChooseReplica(layer, 0, group, 0, 2, nth) == Replica{0, 0});  // own GPU
    CHECK(ChooseReplica(layer, 0, group, 1, 2, nth) == Replica{0, 0});  // own node: GPU 0
    CHECK(ChooseReplica(layer, 0, group, 3, 2, nth) == Replica{2, 0});  // own node: GPU 2
  }
  // Nodes unknown: sender EP rank 1 takes candidate (j + 1) mod 2 for its j-th token.
  CHECK(ChooseReplica(layer, 0, group, 1, 0, 0) == Replica{2, 0});
  CHECK(ChooseReplica(layer, 0, group, 1, 0, 1) == Replica{0, 0});
  CHECK(ChooseReplica(layer, 1, group, 3, 0, 5) == Replica{1, 0});  // one replica: the only one
}

TEST_CASE("ExpandLayer spreads a sender's tokens over an expert's replicas") {
  // 4 ranks, ep 4, 4 experts. Expert 0 on EP ranks 0 and 2, expert 1 on 0 and 3, experts 2, 3 on 1.
  const ExpertPlacement placement =
      ExpertPlacement::PerLayer({LayerPlacement(4, {{0, 1}, {2, 3}, {0}, {1}})}, "test");
  const Plan plan = EpPlan(4, 4, 4);
  LayerRouting routing;
  routing.top_k = 1;
  routing.experts = {{}, {0, 0, 0, 1}, {}, {}};
  const LayerWork w = ExpandLayer(routing, plan, placement);
  // Rank 1 (EP rank 1) has no replica of expert 0 or 1 at home: its j-th token to expert 0 takes
  // replica (j + 1) mod 2: ranks 2, 0, 2; its first token to expert 1 replica 1: rank 3.
  CHECK(SendRow(w.dispatch_tokens, 1) == std::vector<uint64_t>{1, 0, 2, 1});
  CHECK(w.expert_tokens[0] == std::vector<uint64_t>{1, 0});  // slots: expert 0, expert 1
  CHECK(w.expert_tokens[2] == std::vector<uint64_t>{2});
  CHECK(w.expert_tokens[3] == std::vector<uint64_t>{1});
}

TEST_CASE("Placement CSV: rows per layer or for every layer and located errors") {
  const PlacementShape shape{2, 2, 2};
  // Layer 1 takes the * rows; layer 0 its own: expert 1 on both ranks.
  auto p = ParsePlacementCsv("layer,expert,ep_rank\n*,0,0\n*,1,1\n0,1,0\n0,0,1\n0,1,1\n", "p.csv",
                             shape);
  REQUIRE(p.ok());
  REQUIRE(p->size() == 2);
  CHECK((*p)[0].slots() == Slots{{1}, {0, 1}});
  CHECK((*p)[1].slots() == Slots{{0}, {1}});

  auto Error = [&](const std::string& text) {
    auto r = ParsePlacementCsv(text, "p.csv", shape);
    REQUIRE_FALSE(r.ok());
    return r.error().message();
  };
  CHECK(Error("layer,expert,rank\n") ==
        "p.csv:1:1: header = layer,expert,rank: not the header; valid: layer,expert,ep_rank");
  CHECK(Error("layer,expert,ep_rank\n*,0,0\n*,9,1\n") ==
        "p.csv:3:3: expert = 9: the model has 2 experts; valid: 0 to 1");
  CHECK(Error("layer,expert,ep_rank\n*,0,0\n*,1,x\n") ==
        "p.csv:3:5: ep_rank = x: not a non-negative integer; valid: 0 to 1");
  CHECK(Error("layer,expert,ep_rank\n*,0,0\n*,1\n") ==
        "p.csv:3:1: row = 2 fields: wrong number of columns; valid: 3 (layer,expert,ep_rank)");
  CHECK(Error("layer,expert,ep_rank\n*,0,0\n") ==
        "p.csv:2:1: layer *: places no replica of expert 1; valid: every expert 0 to 1 at "
        "least once");
  CHECK_THAT(Error("layer,expert,ep_rank\n0,0,0\n0,1,1\n"),
             Catch::StartsWith("p.csv: layer = 1: has no rows"));
  // Rows of layers the scenario does not simulate are ignored.
  CHECK(ParsePlacementCsv("layer,expert,ep_rank\n*,0,0\n*,1,1\n5,7,7\n", "p.csv", shape).ok());
}

TEST_CASE("Loads CSV: every expert of every layer once") {
  const PlacementShape shape{2, 2, 1};
  auto loads = ParseLoadsCsv("layer,expert,load\n0,1,2.5\n0,0,10\n3,0,1\n", "l.csv", shape);
  REQUIRE(loads.ok());
  CHECK(*loads == LoadMatrix{{10.0f, 2.5f}});
  auto twice = ParseLoadsCsv("layer,expert,load\n0,1,2\n0,1,3\n", "l.csv", shape);
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.error().message() ==
        "l.csv:3:3: expert = 1: given twice for layer 0 (first on line 2); valid: each expert "
        "once per layer");
  auto negative = ParseLoadsCsv("layer,expert,load\n0,0,-1\n0,1,3\n", "l.csv", shape);
  REQUIRE_FALSE(negative.ok());
  CHECK_THAT(negative.error().message(), Catch::StartsWith("l.csv:2:5: load = -1: not a non-neg"));
  auto missing = ParseLoadsCsv("layer,expert,load\n0,0,1\n", "l.csv", shape);
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error().message(), Catch::Contains("no load for expert 1"));
}

TEST_CASE("Placement fields that do not apply to the kind are refused where written") {
  pb::Scenario scenario;
  auto file = TextFile::ParseString(
      "plan {\n"
      "  ep: 4\n"
      "  placement { kind: ROUND_ROBIN\n"
      "    redundant_experts: 4 }\n"
      "}\n",
      "s.pbtxt", &scenario);
  REQUIRE(file.ok());
  const Plan plan = EpPlan(4, 4, 8);
  auto p = ResolvePlacement(scenario.plan().placement(), plan, 8, 1, 0, {}, &*file);
  REQUIRE_FALSE(p.ok());
  CHECK(p.error().message() ==
        "s.pbtxt:4:5: plan.placement.redundant_experts: does not apply to kind ROUND_ROBIN; "
        "valid: only with kind: EPLB");
}

TEST_CASE("EPLB from the routing's own loads relieves the GPU of the hot experts") {
  // 4 GPUs, 8 experts, top-1, ep 4. Every GPU routes its 4 tokens to experts 0, 0, 1, 2: loads
  // 8, 4, 4, 0, ... Contiguous: GPU 0 (experts 0, 1) receives 12 of the 16 tokens.
  const std::string scenario_text =
      "cluster { node_preset: \"dgx-h100\" gpus: 4 }\n"
      "model_spec { name: \"toy\" hidden_size: 64 expert_ffn_size: 128 num_experts: 8 top_k: 1\n"
      "  num_layers: 1 dtype: BF16 }\n"
      "workload { tokens_per_gpu: 4 }\n"
      "routing { explicit {\n"
      "  rank { rank: 0 experts: [0, 0, 1, 2] } rank { rank: 1 experts: [0, 0, 1, 2] }\n"
      "  rank { rank: 2 experts: [0, 0, 1, 2] } rank { rank: 3 experts: [0, 0, 1, 2] } } }\n";
  auto Load = [&](const std::string& placement) {
    pb::Scenario s;
    auto file =
        TextFile::ParseString(scenario_text + "plan { ep: 4 " + placement + " }\n", "s.pbtxt", &s);
    REQUIRE(file.ok());
    auto w = ResolveWorkload(s, *file, 4);
    REQUIRE(w.ok());
    return std::move(w).value();
  };
  const Workload contiguous = Load("");
  CHECK(contiguous.layers[0].dispatch_tokens.at(0, 0) +
            contiguous.layers[0].dispatch_tokens.at(1, 0) +
            contiguous.layers[0].dispatch_tokens.at(2, 0) +
            contiguous.layers[0].dispatch_tokens.at(3, 0) ==
        12);

  // EPLB, 4 redundant: 12 physical, 3 per GPU; one node. Replicas go to 8/1 (expert 0), then
  // expert 0 again (4 = 4 = 4, first wins), expert 1, expert 2. Packing the replica loads
  // 8/3, 8/3, 8/3, 2, 2, 2, 2, 0 x 5 (heaviest first, ties by index) gives
  //   GPU 0: e0 e1 e6 | GPU 1: e0 e2 e7 | GPU 2: e0 e3 e4 | GPU 3: e1 e2 e5.
  const Workload eplb = Load("placement { kind: EPLB redundant_experts: 4 }");
  CHECK(eplb.placement.layer(0).slots() == Slots{{0, 1, 6}, {0, 2, 7}, {0, 3, 4}, {1, 2, 5}});
  CHECK_THAT(eplb.placement.description(), Catch::StartsWith("EPLB hierarchical"));
  // Replica choice (own GPU first, else (j + sender) mod replicas):
  //   GPU 0: e0 e0 e1 at home, e2 -> GPU 1              [3, 1, 0, 0]
  //   GPU 1: e0 e0 e2 at home, e1 -> (0+1) mod 2: GPU 3  [0, 3, 0, 1]
  //   GPU 2: e0 e0 at home, e1 -> GPU 0, e2 -> GPU 1    [1, 1, 2, 0]
  //   GPU 3: e0 -> (0+3) mod 3: GPU 0, (1+3) mod 3: GPU 1; e1 e2 at home  [1, 1, 0, 2]
  const LayerWork& w = eplb.layers[0];
  CHECK(SendRow(w.dispatch_tokens, 0) == std::vector<uint64_t>{3, 1, 0, 0});
  CHECK(SendRow(w.dispatch_tokens, 1) == std::vector<uint64_t>{0, 3, 0, 1});
  CHECK(SendRow(w.dispatch_tokens, 2) == std::vector<uint64_t>{1, 1, 2, 0});
  CHECK(SendRow(w.dispatch_tokens, 3) == std::vector<uint64_t>{1, 1, 0, 2});
  // The busiest GPU now receives 6 tokens (GPU 1: 1 + 3 + 1 + 1), not 12.
  CHECK(w.expert_tokens[1] == std::vector<uint64_t>{3, 3, 0});
  CHECK(w.expert_tokens[0] == std::vector<uint64_t>{3, 2, 0});
}

}  // namespace moesim::models
