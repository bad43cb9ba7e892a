#include "models/routing.h"

#include <catch2/catch.hpp>

#include "models/rng.h"
#include "models/workload.h"

namespace moesim::models {

TEST_CASE("Rng::Below is uniform over small ranges") {
  Rng rng(42);
  std::vector<int> counts(6, 0);
  const int draws = 60'000;
  for (int i = 0; i < draws; ++i) ++counts[rng.Below(6)];
  // Each face expects 10,000 with standard deviation sqrt(60,000 * 1/6 * 5/6) = 91; 6 sigma = 550.
  for (int c : counts) CHECK(std::abs(c - 10'000) < 550);
}

namespace {

pb::Routing Explicit(std::vector<std::pair<uint32_t, std::vector<uint32_t>>> ranks) {
  pb::Routing routing;
  for (auto& [rank, ids] : ranks) {
    pb::RankRouting* r = routing.mutable_explicit_()->add_rank();
    r->set_rank(rank);
    for (uint32_t id : ids) r->add_experts(id);
  }
  return routing;
}

const RoutingShape kTwoRanks{
    .ranks = 2, .layers = 1, .tokens_per_rank = 2, .num_experts = 4, .top_k = 1};

}  // namespace

TEST_CASE("Explicit routing is taken as written") {
  auto r = ResolveRouting(Explicit({{1, {3, 0}}, {0, {1, 2}}}), kTwoRanks, nullptr);
  REQUIRE(r.ok());
  REQUIRE(r->size() == 1);
  CHECK((*r)[0].experts[0] == std::vector<uint32_t>{1, 2});
  CHECK((*r)[0].experts[1] == std::vector<uint32_t>{3, 0});
}

TEST_CASE("Explicit routing errors name the entry and the value and the valid range") {
  auto out_of_range = ResolveRouting(Explicit({{0, {1, 2}}, {1, {4, 0}}}), kTwoRanks, nullptr);
  REQUIRE_FALSE(out_of_range.ok());
  CHECK(out_of_range.error().message() ==
        "routing.explicit.rank[1].experts[0] = 4: expert id out of range; valid: 0 to 3 (the model "
        "has 4 experts)");

  auto count = ResolveRouting(Explicit({{0, {1, 2}}, {1, {0}}}), kTwoRanks, nullptr);
  REQUIRE_FALSE(count.ok());
  CHECK(count.error().message() ==
        "routing.explicit.rank[1].experts = 1 expert ids: does not match workload.tokens_per_gpu = "
        "2 tokens x top_k = 1; valid: 2 expert ids");

  auto missing = ResolveRouting(Explicit({{0, {1, 2}}}), kTwoRanks, nullptr);
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error().message(), Catch::Contains("rank 1 of layer 0 has no routing"));

  auto twice = ResolveRouting(Explicit({{0, {1, 2}}, {0, {1, 2}}}), kTwoRanks, nullptr);
  REQUIRE_FALSE(twice.ok());
  CHECK_THAT(twice.error().message(), Catch::Contains("is given twice"));

  auto bad_rank = ResolveRouting(Explicit({{2, {1, 2}}}), kTwoRanks, nullptr);
  REQUIRE_FALSE(bad_rank.ok());
  CHECK(bad_rank.error().message() ==
        "routing.explicit.rank[0].rank = 2: no such rank; valid: 0 to 1");

  RoutingShape top2 = kTwoRanks;
  top2.top_k = 2;
  top2.tokens_per_rank = 1;
  auto duplicate = ResolveRouting(Explicit({{0, {1, 1}}, {1, {0, 2}}}), top2, nullptr);
  REQUIRE_FALSE(duplicate.ok());
  CHECK_THAT(duplicate.error().message(), Catch::Contains("token 0 names this expert twice"));

  auto none = ResolveRouting(pb::Routing(), kTwoRanks, nullptr);
  REQUIRE_FALSE(none.ok());
  CHECK_THAT(none.error().message(), Catch::StartsWith("routing: missing; valid: "));

  pb::Routing no_distribution;
  no_distribution.mutable_synthetic()->set_seed(1);
  auto nd = ResolveRouting(no_distribution, kTwoRanks, nullptr);
  REQUIRE_FALSE(nd.ok());
  CHECK_THAT(nd.error().message(), Catch::EndsWith("valid: UNIFORM, ZIPF, COLLAPSE, MEASURED"));
}

TEST_CASE("The workload estimate: ids, the dispatch matrix and expert counts, per layer") {
  // 8 ranks, 1 layer, 4096 tokens, 8 experts, top-2: ids 4 x 8 x 4096 x 2 = 262,144; the dispatch
  // matrix and its copy 2 x 8 x 8^2 = 1,024; expert counts 8 x 8 x 8 = 512. Sum 263,680 B.
  CHECK(EstimateWorkloadBytes({8, 1, 4096, 8, 2}) == 263'680.0);
  // Per layer: 61 layers take 61 times as much.
  CHECK(EstimateWorkloadBytes({8, 61, 4096, 8, 2}) == 61 * 263'680.0);
}

}  // namespace moesim::models
