// The expected MoE layer of plan search (models/expected_layer.h): conservation, the spread of
// each expert's share over the senders, and how many tokens reach each node and each GPU for
// DeepEP.
#include "models/expected_layer.h"

#include <catch2/catch.hpp>
#include <vector>

namespace moesim::models {
namespace {

// 4 experts on 4 EP ranks, one each; ranks 0, 1 on node 0 and 2, 3 on node 1 (2 GPUs a node).
ExpertPlacement OnePerRank() { return ExpertPlacement::Contiguous(4, 4); }

// Top-2 tokens {0,1} {0,2} {2,3} {1,3}: node 0 (experts 0, 1) is reached by the first, second and
// fourth, node 1 (experts 2, 3) by the last three.
const std::vector<uint32_t> kSample = {0, 1, 0, 2, 2, 3, 1, 3};

}  // namespace

TEST_CASE("The expected layer spreads each expert's selections evenly over the senders") {
  // Loads 3:3:1:1 of 4 ranks x 100 tokens x top-2 = 800 selections: 300, 300, 100, 100. Each of
  // the 4 senders gets a quarter: 75, 75, 25, 25; rank r computes expert r's whole load.
  const LayerWork w = ExpectedLayer(std::vector<uint64_t>{3, 3, 1, 1}, 4, 100, 2, OnePerRank());
  for (uint32_t src = 0; src < 4; ++src) {
    CHECK(w.dispatch_tokens.at(src, 0) == 75);
    CHECK(w.dispatch_tokens.at(src, 1) == 75);
    CHECK(w.dispatch_tokens.at(src, 2) == 25);
    CHECK(w.dispatch_tokens.at(src, 3) == 25);
    CHECK(w.tokens_in[src] == 100);
  }
  CHECK(w.expert_tokens == std::vector<std::vector<uint64_t>>{{300}, {300}, {100}, {100}});
  CHECK(w.dispatch_tokens.Total() == 800);
  CHECK(w.node_tokens.ranks() == 0);  // no per-token routing: every copy crosses

  // 7 selections of expert 0 over 4 senders: 1 each and 3 left over, to senders 0, 1, 2 (the
  // expert's id onwards); expert 1's 1 goes to sender 1.
  const LayerWork odd = ExpectedLayer(std::vector<uint64_t>{7, 1, 0, 0}, 4, 1, 2, OnePerRank());
  CHECK(odd.dispatch_tokens.at(0, 0) == 2);
  CHECK(odd.dispatch_tokens.at(1, 0) == 2);
  CHECK(odd.dispatch_tokens.at(2, 0) == 2);
  CHECK(odd.dispatch_tokens.at(3, 0) == 1);
  CHECK(odd.dispatch_tokens.at(1, 1) == 1);
  CHECK(odd.dispatch_tokens.Total() == 8);
}

TEST_CASE("Expected node tokens: the sampled share of tokens with a copy on each node") {
  // Uniform loads: each sender has 50 copies for each expert, 100 for each node. 3 of the 4 sampled
  // tokens reach node 0 and 3 reach node 1: 100 x 3 / 4 = 75 tokens cross to each, once.
  LayerWork w = ExpectedLayer(std::vector<uint64_t>{1, 1, 1, 1}, 4, 100, 2, OnePerRank());
  SetExpectedNodeTokens(kSample, 2, 2, 100, OnePerRank(), &w);
  REQUIRE(w.node_tokens.ranks() == 4);
  for (uint32_t src = 0; src < 4; ++src) {
    CHECK(w.node_tokens.at(src, 0) == 75);
    CHECK(w.node_tokens.at(src, 1) == 75);
  }

  SECTION("a replicated expert reaches each of its nodes in proportion") {
    // Expert 0 also on rank 2 (node 1): half its copies go to each node. Per token, P(no copy on
    // n) = product of (1 - fraction of the expert on n):
    //   {0,1}: node 0 1 - 0.5 x 0 = 1,   node 1 1 - 0.5 = 0.5
    //   {0,2}: node 0 0.5,               node 1 1
    //   {2,3}: node 0 0,                 node 1 1
    //   {1,3}: node 0 1,                 node 1 1
    // h = 2.5 and 3.5: 100 x 2.5 / 4 = 62.5 -> 63, 100 x 3.5 / 4 = 87.5 -> 88 (halves away
    // from zero), within the copies (node 0: 25 of expert 0 + 50 of expert 1; node 1: 125).
    const ExpertPlacement replicated =
        ExpertPlacement::PerLayer({LayerPlacement(4, {{0}, {1}, {2, 0}, {3}})}, "expert 0 twice");
    LayerWork r = ExpectedLayer(std::vector<uint64_t>{1, 1, 1, 1}, 4, 100, 2, replicated);
    SetExpectedNodeTokens(kSample, 2, 2, 100, replicated, &r);
    CHECK(r.node_tokens.at(0, 0) == 63);
    CHECK(r.node_tokens.at(0, 1) == 88);
  }

  SECTION("kept within what the dispatch sends: at least 1 token where copies go, at most them") {
    // Loads 3:3:1:1: each sender has 25 + 25 = 50 copies for node 1. Every sampled token of
    // {2,3} {0,2} {1,3} {0,3} reaches node 1: 100 expected, cut to the 50 copies. Node 0: 3 of 4,
    // 75 of its 150 copies.
    const std::vector<uint32_t> sample = {2, 3, 0, 2, 1, 3, 0, 3};
    LayerWork c = ExpectedLayer(std::vector<uint64_t>{3, 3, 1, 1}, 4, 100, 2, OnePerRank());
    SetExpectedNodeTokens(sample, 2, 2, 100, OnePerRank(), &c);
    CHECK(c.node_tokens.at(1, 1) == 50);
    CHECK(c.node_tokens.at(1, 0) == 75);
    // A sample that never reaches node 1, while the loads send copies there: 1, not 0 (the
    // hierarchical schedule needs a crossing wherever copies go).
    const std::vector<uint32_t> only_node0 = {0, 1, 0, 1};
    LayerWork z = ExpectedLayer(std::vector<uint64_t>{1, 1, 1, 1}, 4, 100, 2, OnePerRank());
    SetExpectedNodeTokens(only_node0, 2, 2, 100, OnePerRank(), &z);
    CHECK(z.node_tokens.at(2, 1) == 1);
    CHECK(z.node_tokens.at(2, 0) == 100);
  }
}

TEST_CASE("Expected rank tokens: the sampled share of tokens with a copy on each GPU") {
  // 4 experts on 2 EP ranks, 2 each (experts 0, 1 on rank 0; 2, 3 on rank 1). Uniform loads, 2
  // ranks x 100 tokens x top-2 = 400 selections, 100 per expert: each sender has 50 copies for
  // each expert, 100 for each rank. Of the sampled tokens {0,1} {0,2} {2,3} {1,3}, 3 have an
  // expert on rank 0 ({0,1} counts once though both its experts are there) and 3 on rank 1:
  // 100 x 3 / 4 = 75 distinct tokens to each rank, diagonal included.
  const ExpertPlacement two_per_rank = ExpertPlacement::Contiguous(4, 2);
  LayerWork w = ExpectedLayer(std::vector<uint64_t>{1, 1, 1, 1}, 2, 100, 2, two_per_rank);
  CHECK(w.rank_tokens.ranks() == 0);  // not filled: a per_rank exchange sends every copy
  for (uint32_t src = 0; src < 2; ++src) {
    CHECK(w.dispatch_tokens.at(src, 0) == 100);
    CHECK(w.dispatch_tokens.at(src, 1) == 100);
  }
  SetExpectedRankTokens(kSample, 2, 100, two_per_rank, &w);
  REQUIRE(w.rank_tokens.ranks() == 2);
  for (uint32_t src = 0; src < 2; ++src) {
    CHECK(w.rank_tokens.at(src, 0) == 75);
    CHECK(w.rank_tokens.at(src, 1) == 75);
  }
  // One expert per rank: a token's experts are on distinct ranks, so the distinct tokens to rank
  // r are the tokens with expert r: 2 of the 4 sampled for each expert, 100 x 2 / 4 = 50 = the
  // copies (uniform: 4 ranks x 100 x 2 / 4 experts / 4 senders).
  LayerWork one = ExpectedLayer(std::vector<uint64_t>{1, 1, 1, 1}, 4, 100, 2, OnePerRank());
  SetExpectedRankTokens(kSample, 2, 100, OnePerRank(), &one);
  CHECK(one.rank_tokens == one.dispatch_tokens);
}

TEST_CASE("ExpectedLayer drops each sender's share past the capacity, counted per expert") {
  // 2 EP ranks, 4 tokens each, top-1, experts 0 and 1 one per rank; loads {6, 2} of the 8 copies.
  // Each sender routes 6 / 2 = 3 copies to expert 0 and 1 to expert 1. Capacity 2: each drops 1
  // copy of expert 0 (dropped {1, 1}, expert 0's 2 in all); expert 0 computes 2 + 2 = 4, expert 1
  // its 1 + 1 = 2.
  const LayerWork w = ExpectedLayer(std::vector<uint64_t>{6, 2}, 2, 4, 1,
                                    ExpertPlacement::Contiguous(2, 2), /*capacity=*/2);
  CHECK(w.dropped == std::vector<uint64_t>{1, 1});
  CHECK(w.dropped_per_expert == std::vector<uint64_t>{2, 0});
  CHECK(w.expert_tokens[0][0] == 4);
  CHECK(w.expert_tokens[1][0] == 2);
  CHECK(w.dispatch_tokens.at(0, 0) == 2);
  CHECK(w.dispatch_tokens.at(1, 1) == 1);
}

}  // namespace moesim::models
