#include "models/dispatch.h"

#include <catch2/catch.hpp>

#include "models/workload.h"
#include "sim/moe/scenario_loader.h"
#include "test_paths.h"

namespace moesim::models {
namespace {

std::vector<uint64_t> Row(const TrafficMatrix& m, uint32_t i) {
  std::vector<uint64_t> row;
  for (uint32_t j = 0; j < m.ranks(); ++j) row.push_back(m.at(i, j));
  return row;
}

// 4 ranks of a model with 4 experts, EP `ep`.
Plan FourRanks(uint32_t ep) {
  pb::ModelSpec model;
  model.set_num_experts(4);
  pb::ParallelPlan spec;
  spec.set_ep(ep);
  auto plan = ResolvePlan(spec, 4, model, nullptr);
  REQUIRE(plan.ok());
  return *std::move(plan);
}

}  // namespace

TEST_CASE("Seed example: the dispatch matrix follows each token to its expert's GPU") {
  auto s = sim::LoadScenario(testing::SourcePath("scenarios/seed_example.pbtxt"));
  REQUIRE(s.ok());
  const LayerWork& w = s->workload.layers.at(0);
  // GPU 0: t0->E2 (GPU 1), t1->E7 (GPU 3), t2->E0 (kept), t3->E3 (GPU 1).
  CHECK(Row(w.dispatch_tokens, 0) == std::vector<uint64_t>{1, 2, 0, 1});
  CHECK(Row(w.dispatch_tokens, 1) == std::vector<uint64_t>{1, 1, 1, 1});
  CHECK(Row(w.dispatch_tokens, 2) == std::vector<uint64_t>{1, 1, 1, 1});
  CHECK(Row(w.dispatch_tokens, 3) == std::vector<uint64_t>{1, 2, 0, 1});
  // Combine returns every token: the transpose. GPU 0 receives its 4 tokens back from GPUs 0,1,1,3.
  const TrafficMatrix combine = w.dispatch_tokens.Transposed();
  CHECK(Row(combine, 1) == std::vector<uint64_t>{2, 1, 1, 2});
  CHECK(combine.Transposed() == w.dispatch_tokens);
  // Every GPU both sends and receives across links.
  for (uint32_t r = 0; r < 4; ++r) {
    CHECK(w.dispatch_tokens.SentOffRank(r) > 0);
    CHECK(w.dispatch_tokens.ReceivedOffRank(r) > 0);
  }
  // GPU 1 holds E2 (tokens GPU0 t0, GPU2 t3, GPU3 t2) and E3 (GPU0 t3, GPU1 t2, GPU3 t1).
  CHECK(w.expert_tokens[1] == std::vector<uint64_t>{3, 3});
  // GPU 2 holds E4 (GPU2 t1) and E5 (GPU1 t1).
  CHECK(w.expert_tokens[2] == std::vector<uint64_t>{1, 1});
}

TEST_CASE("Conservation: each routed token-expert pair is sent once and comes back") {
  auto s = sim::LoadScenario(testing::SourcePath("scenarios/default.pbtxt"));
  REQUIRE(s.ok());
  const Workload& wl = s->workload;
  const LayerWork& w = wl.layers.at(0);
  const uint32_t n = w.dispatch_tokens.ranks();
  REQUIRE(n == 8);
  const uint64_t k = wl.model.top_k();
  // Row sums: each GPU sends tokens_per_gpu * top_k = 4096 * 2 token copies (kept ones included).
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t row = 0;
    for (uint32_t j = 0; j < n; ++j) row += w.dispatch_tokens.at(i, j);
    CHECK(row == wl.tokens_per_gpu * k);
  }
  // Column sums: what a GPU receives is exactly what its experts process.
  for (uint32_t j = 0; j < n; ++j) {
    uint64_t column = 0, processed = 0;
    for (uint32_t i = 0; i < n; ++i) column += w.dispatch_tokens.at(i, j);
    for (uint64_t t : w.expert_tokens[j]) processed += t;
    CHECK(column == processed);
  }
  // And combine returns to each GPU exactly what it sent.
  const TrafficMatrix combine = w.dispatch_tokens.Transposed();
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t back = 0;
    for (uint32_t j = 0; j < n; ++j) back += combine.at(j, i);
    CHECK(back == wl.tokens_per_gpu * k);
  }
  CHECK(w.dispatch_tokens.Total() == n * wl.tokens_per_gpu * k);
}

TEST_CASE("A token whose two experts share a GPU is sent twice and EP groups do not mix") {
  // 4 ranks, ep = 2: groups {0,1} and {2,3}; 4 experts, 2 per EP rank.
  const Plan plan = FourRanks(2);
  const ExpertPlacement placement = ExpertPlacement::Contiguous(4, 2);
  LayerRouting routing;
  routing.top_k = 2;
  // One token per rank. Rank 0 and rank 2: experts 2 and 3, both on EP rank 1 of their group.
  routing.experts = {{2, 3}, {0, 1}, {2, 3}, {0, 2}};
  const LayerWork w = ExpandLayer(routing, plan, placement);
  CHECK(Row(w.dispatch_tokens, 0) == std::vector<uint64_t>{0, 2, 0, 0});
  // Rank 1: experts 0 and 1 live on EP rank 0 of group {0, 1}, i.e. global rank 0.
  CHECK(Row(w.dispatch_tokens, 1) == std::vector<uint64_t>{2, 0, 0, 0});
  CHECK(Row(w.dispatch_tokens, 2) == std::vector<uint64_t>{0, 0, 0, 2});
  // Rank 3 (group {2, 3}): expert 0 on global rank 2, expert 2 kept.
  CHECK(Row(w.dispatch_tokens, 3) == std::vector<uint64_t>{0, 0, 1, 1});
  // The matrix stores only what was sent: no row holds a cell outside its EP group, and rank 0's
  // one cell is {1, 2}.
  for (uint32_t r = 0; r < 4; ++r) {
    for (const TrafficMatrix::Cell& c : w.dispatch_tokens.row(r)) CHECK(c.dst / 2 == r / 2);
  }
  REQUIRE(w.dispatch_tokens.row(0).size() == 1);
  CHECK(w.dispatch_tokens.row(0)[0].dst == 1);
  CHECK(w.dispatch_tokens.row(0)[0].count == 2);
}

TEST_CASE(
    "Distinct tokens per destination node: a token with two experts on one node counts once") {
  // 4 ranks in 2 nodes of 2 GPUs, ep = 4, 4 experts (expert e on rank e), top-2.
  const Plan plan = FourRanks(4);
  ExpertPlacement placement = ExpertPlacement::Contiguous(4, 4);
  LayerRouting routing;
  routing.top_k = 2;
  // Rank 0: token 0 -> experts 2, 3 (both on node 1), token 1 -> 0, 2 (node 0 and node 1).
  // Rank 3: token 0 -> experts 0, 1 (both on node 0).
  routing.experts = {{2, 3, 0, 2}, {1, 0}, {2, 3}, {0, 1}};
  // Without nodes, no counts: every copy crosses.
  CHECK(ExpandLayer(routing, plan, placement).node_tokens.ranks() == 0);
  placement.set_gpus_per_node(2);
  const LayerWork w = ExpandLayer(routing, plan, placement);
  // Rank 0 sends 3 copies to node 1 (2, 3, 2) but only 2 distinct tokens; 1 token to node 0.
  CHECK(w.dispatch_tokens.at(0, 2) + w.dispatch_tokens.at(0, 3) == 3);
  CHECK(w.node_tokens.at(0, 1) == 2);
  CHECK(w.node_tokens.at(0, 0) == 1);
  // Rank 3's token: 2 copies into node 0, once.
  CHECK(w.node_tokens.at(3, 0) == 1);
  CHECK(w.node_tokens.at(3, 1) == 0);
  // Ranks 1 and 2 keep everything in their node.
  CHECK(w.node_tokens.at(1, 0) == 1);
  CHECK(w.node_tokens.at(2, 1) == 1);
}

TEST_CASE("Distinct tokens per destination rank: a token with two experts on one GPU counts once") {
  // 4 ranks, ep = 2: groups {0,1} and {2,3}; 4 experts, 2 per EP rank (experts 0, 1 on EP rank 0,
  // experts 2, 3 on EP rank 1), top-2, as in the test above, with two tokens on rank 0.
  const Plan plan = FourRanks(2);
  const ExpertPlacement placement = ExpertPlacement::Contiguous(4, 2);
  LayerRouting routing;
  routing.top_k = 2;
  // Rank 0: token 0 -> experts 2, 3 (both on rank 1), token 1 -> experts 0, 2 (rank 0 and rank 1).
  // Rank 1: experts 0, 1 (both on rank 0). Rank 2: 2, 3 (both on rank 3). Rank 3: 0, 2 (ranks 2,
  // 3).
  routing.experts = {{2, 3, 0, 2}, {0, 1}, {2, 3}, {0, 2}};
  const LayerWork w = ExpandLayer(routing, plan, placement);
  // Copies: rank 0 sends 3 to rank 1 (experts 2, 3 of token 0 and 2 of token 1) and keeps 1.
  CHECK(Row(w.dispatch_tokens, 0) == std::vector<uint64_t>{1, 3, 0, 0});
  // Distinct tokens: both of rank 0's tokens reach rank 1, once each: 2, not 3. Token 1 keeps one
  // copy on rank 0 itself (the diagonal).
  CHECK(Row(w.rank_tokens, 0) == std::vector<uint64_t>{1, 2, 0, 0});
  // Rank 1's token: 2 copies to rank 0, 1 distinct token. Rank 2 likewise to rank 3.
  CHECK(Row(w.dispatch_tokens, 1) == std::vector<uint64_t>{2, 0, 0, 0});
  CHECK(Row(w.rank_tokens, 1) == std::vector<uint64_t>{1, 0, 0, 0});
  CHECK(Row(w.rank_tokens, 2) == std::vector<uint64_t>{0, 0, 0, 1});
  // Rank 3's token has one expert on each rank of its group: nothing to deduplicate.
  CHECK(Row(w.rank_tokens, 3) == std::vector<uint64_t>{0, 0, 1, 1});
  CHECK(Row(w.dispatch_tokens, 3) == std::vector<uint64_t>{0, 0, 1, 1});
  // Off the diagonal: 3 + 2 + 2 + 1 = 8 copies cross, 2 + 1 + 1 + 1 = 5 distinct tokens.
  CHECK(w.dispatch_tokens.OffDiagonal() == 8);
  CHECK(w.rank_tokens.OffDiagonal() == 5);
  // What a per_rank exchange sends is rank_tokens; every other algorithm sends the copies.
  CHECK(&SentTokens(w, AllToAllAlgo::kPerRank) == &w.rank_tokens);
  CHECK(&SentTokens(w, AllToAllAlgo::kDirect) == &w.dispatch_tokens);
  CHECK(&SentTokens(w, AllToAllAlgo::kHierarchical) == &w.dispatch_tokens);
  // A layer without the counts (an expected layer not filled) falls back to the copies.
  LayerWork copies_only = w;
  copies_only.rank_tokens = TrafficMatrix();
  CHECK(&SentTokens(copies_only, AllToAllAlgo::kPerRank) == &copies_only.dispatch_tokens);
}

TEST_CASE("Distinct tokens per rank never exceed the copies and are there wherever copies are") {
  // DeepSeek-V3 on 32 GPUs (8 of its 256 experts per GPU, top-8, 4096 tokens per GPU: many tokens
  // have two experts on one GPU), with and without a capacity that drops copies: rank_tokens <=
  // node-blind copies cell by cell, non-zero exactly where they are, and fewer in all.
  auto s = sim::LoadScenario(testing::SourcePath("scenarios/deepseek-v3-h800-ep32.pbtxt"));
  REQUIRE(s.ok());
  // Factor 0.8: ceil(4096 x 8 / 256 x 0.8) = 103 copies per expert and sender.
  for (double factor : {0.0, 0.8}) {
    INFO("capacity factor " << factor);
    const LayerWork w =
        ExpandLayer(s->workload.routing[0], s->workload.plan, s->workload.placement, factor);
    const uint32_t n = w.dispatch_tokens.ranks();
    REQUIRE(w.rank_tokens.ranks() == n);
    for (uint32_t i = 0; i < n; ++i) {
      for (uint32_t j = 0; j < n; ++j) {
        CHECK(w.rank_tokens.at(i, j) <= w.dispatch_tokens.at(i, j));
        CHECK((w.rank_tokens.at(i, j) > 0) == (w.dispatch_tokens.at(i, j) > 0));
      }
    }
    CHECK(w.rank_tokens.Total() < w.dispatch_tokens.Total());
    if (factor > 0) CHECK(w.TotalDropped() > 0);
  }
}

TEST_CASE("ExpandLayer drops token copies beyond an expert's capacity per sender") {
  // 2 ranks, 2 experts (one per rank), top-1. Rank 0 routes 4 tokens to expert 1 and 1 to expert
  // 0; rank 1 routes 5 tokens all to expert 1.
  LayerRouting routing;
  routing.top_k = 1;
  routing.experts = {{1, 1, 0, 1, 1}, {1, 1, 1, 1, 1}};
  pb::ModelSpec model;
  model.set_num_experts(2);
  pb::ParallelPlan spec;
  spec.set_ep(2);
  auto plan = ResolvePlan(spec, 2, model, nullptr);
  REQUIRE(plan.ok());
  const ExpertPlacement placement = ExpertPlacement::Contiguous(2, 2);
  // Megatron's capacity for 5 tokens, top-1, 2 experts, factor 1.2: ceil(5 x 1 / 2 x 1.2) = 3.
  const uint64_t capacity = ExpertCapacity(5, 1, 2, 1.2);
  REQUIRE(capacity == 3);
  const LayerWork w = ExpandLayer(routing, *plan, placement, 1.2);
  // Rank 0 sends 3 of its 4 copies to expert 1 (the 5th token's is dropped) and its 1 to expert 0;
  // rank 1 keeps 3 of its 5 for its own expert 1 and drops 2: all 3 drops are expert 1's.
  CHECK(w.dispatch_tokens.at(0, 0) == 1);
  CHECK(w.dispatch_tokens.at(0, 1) == 3);
  CHECK(w.dispatch_tokens.at(1, 1) == 3);
  CHECK(w.dropped == std::vector<uint64_t>{1, 2});
  CHECK(w.TotalDropped() == 3);
  CHECK(w.dropped_per_expert == std::vector<uint64_t>{0, 3});
  CHECK(w.expert_tokens[1][0] == 6);
  // Without a capacity nothing is dropped.
  const LayerWork all = ExpandLayer(routing, *plan, placement);
  CHECK(all.TotalDropped() == 0);
  CHECK(all.expert_tokens[1][0] == 9);
  CHECK(ExpertCapacity(5, 1, 2, 0) == 0);
}

}  // namespace moesim::models

namespace moesim::models {

TEST_CASE("Expanding a large layer on several threads gives what counting token by token gives") {
  // 64 GPUs x 8,192 tokens x top-2 = 2^20 copies: enough for ExpandLayer to split the senders over
  // the cores (models/parallel.h). 64 experts on 64 EP ranks, contiguous: expert e is on GPU e, of
  // node e / 8. The counts are recomputed here one copy at a time.
  auto s = sim::LoadScenarioFromString(
      "cluster { node_preset: \"dgx-h100\" nodes: 8 fabric { rail_optimized {} } }\n"
      "model_spec { name: \"t\" hidden_size: 64 expert_ffn_size: 32 num_experts: 64 top_k: 2 "
      "num_layers: 1 dtype: BF16 }\n"
      "plan { ep: 64 }\n"
      "workload { tokens_per_gpu: 8192 }\n"
      "routing { synthetic { distribution: ZIPF zipf_alpha: 1.2 shuffle_experts: true seed: 3 } "
      "}\n",
      "big.pbtxt");
  REQUIRE(s.ok());
  const LayerWork& w = s->workload.layers.at(0);
  const LayerRouting& routing = s->workload.routing.at(0);
  TrafficMatrix dispatch(64), nodes(64);
  std::vector<std::vector<uint64_t>> experts(64, std::vector<uint64_t>(1, 0));
  for (uint32_t src = 0; src < 64; ++src) {
    const std::vector<uint32_t>& ids = routing.experts[src];
    for (size_t t = 0; t < ids.size(); t += 2) {
      for (size_t j = 0; j < 2; ++j) {
        ++dispatch.at(src, ids[t + j]);
        ++experts[ids[t + j]][0];
      }
      ++nodes.at(src, ids[t] / 8);
      if (ids[t + 1] / 8 != ids[t] / 8) ++nodes.at(src, ids[t + 1] / 8);
    }
  }
  CHECK(w.dispatch_tokens == dispatch);
  CHECK(w.expert_tokens == experts);
  REQUIRE(w.node_tokens.ranks() == 64);
  CHECK(w.node_tokens == nodes);
}

}  // namespace moesim::models

namespace moesim::models {

TEST_CASE("All-to-all algorithms: names, DeepEP's chunk, and the SMs each kernel holds") {
  for (AllToAllAlgo a : {AllToAllAlgo::kDirect, AllToAllAlgo::kPerRank, AllToAllAlgo::kHierarchical,
                         AllToAllAlgo::kDeepEpNormal, AllToAllAlgo::kDeepEpLowLatency}) {
    CHECK(*ParseAllToAllAlgo(ToString(a), {}, "f") == a);
  }
  CHECK(*ParseAllToAllAlgo("", {}, "f") == AllToAllAlgo::kDirect);
  const auto bad = ParseAllToAllAlgo("deepep", {"s.pbtxt", 3, 5}, "workload.alltoall_algo");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message() ==
        "s.pbtxt:3:5: workload.alltoall_algo = deepep: unknown all-to-all algorithm; valid: "
        "direct, per_rank, hierarchical, deepep_normal, deepep_low_latency");
  CHECK(RelaysByNode(AllToAllAlgo::kDeepEpNormal));
  CHECK(RelaysByNode(AllToAllAlgo::kHierarchical));
  CHECK_FALSE(RelaysByNode(AllToAllAlgo::kDeepEpLowLatency));
  // DeepEP's normal kernels within one node are its intranode ones.
  CHECK(KernelsFor(AllToAllAlgo::kDeepEpNormal, 8, 8) == AllToAllAlgo::kPerRank);
  CHECK(KernelsFor(AllToAllAlgo::kDeepEpNormal, 16, 8) == AllToAllAlgo::kDeepEpNormal);
  CHECK(KernelsFor(AllToAllAlgo::kHierarchical, 8, 8) == AllToAllAlgo::kHierarchical);

  // The chunk: absent, DeepEP's 10 channels x 8 tokens; given, >= 1 and only for deepep_normal.
  CHECK(kDeepEpChunkTokens == 10 * 8);
  CHECK(*ParseChunkTokens(false, 0, AllToAllAlgo::kDirect, {}, "f") == 80);
  CHECK(*ParseChunkTokens(true, 16, AllToAllAlgo::kDeepEpNormal, {}, "f") == 16);
  CHECK_FALSE(ParseChunkTokens(true, 0, AllToAllAlgo::kDeepEpNormal, {}, "f").ok());
  CHECK_FALSE(ParseChunkTokens(true, 16, AllToAllAlgo::kHierarchical, {}, "f").ok());

  // SMs: NCCL one per channel; DeepEP's normal kernels Buffer.num_sms = 20; its low-latency
  // kernels one SM per ceil(E / SMs) experts: 256 experts on an H800's 132 SMs, 2 experts an SM,
  // 128 SMs; 64 experts, one each, 64 SMs; 288 experts, 3 an SM, 96 SMs.
  CHECK(CommSms(AllToAllAlgo::kDirect, {.nccl_channels = 16}) == 16);
  CHECK(CommSms(AllToAllAlgo::kPerRank, {}) == 20);
  CHECK(CommSms(AllToAllAlgo::kHierarchical, {}) == 20);
  CHECK(CommSms(AllToAllAlgo::kDeepEpNormal, {}) == 20);
  CHECK(CommSms(AllToAllAlgo::kDeepEpLowLatency, {.experts = 256, .device_sms = 132}) == 128);
  CHECK(CommSms(AllToAllAlgo::kDeepEpLowLatency, {.experts = 64, .device_sms = 132}) == 64);
  CHECK(CommSms(AllToAllAlgo::kDeepEpLowLatency, {.experts = 288, .device_sms = 132}) == 96);
  CHECK(CommSms(AllToAllAlgo::kDeepEpLowLatency, {.experts = 256}) == 0);
}

}  // namespace moesim::models
