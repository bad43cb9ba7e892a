#include "models/count_routing.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>
#include <vector>

#include "models/synthetic.h"

namespace moesim::models {
namespace {

struct CountMoments {
  double mean = 0, variance = 0;
};

template <typename Draw>
CountMoments CountSample(int draws, Draw draw) {
  double sum = 0, squares = 0;
  for (int i = 0; i < draws; ++i) {
    const double x = static_cast<double>(draw());
    sum += x;
    squares += x * x;
  }
  const double mean = sum / draws;
  return {mean, (squares - draws * mean * mean) / (draws - 1)};
}

// Zipf with alpha 1 over 4 experts, top-2: p = (1, 1/2, 1/3, 1/4) / H, H = 25/12, so p = (0.48,
// 0.24, 0.16, 0.12); pi = min(1, 2 p) = (0.96, 0.48, 0.32, 0.24), which adds up to k = 2.
const std::vector<double> kCountZipfPi = {0.96, 0.48, 0.32, 0.24};

// A plan of `ranks` GPUs, all in one EP group, for a model with `experts` experts.
Plan CountPlan(uint32_t ranks, uint32_t experts) {
  pb::ModelSpec model;
  model.set_num_experts(experts);
  pb::ParallelPlan spec;
  spec.set_ep(ranks);
  auto plan = ResolvePlan(spec, ranks, model, nullptr);
  REQUIRE(plan.ok());
  return *std::move(plan);
}

std::vector<uint64_t> CountRow(const TrafficMatrix& m, uint32_t i) {
  std::vector<uint64_t> row;
  for (uint32_t j = 0; j < m.ranks(); ++j) row.push_back(m.at(i, j));
  return row;
}

}  // namespace

TEST_CASE("DrawBinomial: the binomial's mean and variance, by inversion and by the normal") {
  Rng rng(42);
  // Edges: nothing to draw, certain, impossible.
  CHECK(DrawBinomial(rng, 0, 0.3) == 0);
  CHECK(DrawBinomial(rng, 17, 1.0) == 17);
  CHECK(DrawBinomial(rng, 17, 0.0) == 0);
  // 40,000 draws: the sample mean within 4 standard errors sqrt(var / 40,000), the sample
  // variance within 4 of its standard errors, about var sqrt(2 / 40,000) = 0.71 % of it.
  SECTION("mean 5 (inversion): n 1000, p 0.005, variance 1000 x 0.005 x 0.995 = 4.975") {
    const CountMoments m = CountSample(40000, [&] { return DrawBinomial(rng, 1000, 0.005); });
    CHECK(m.mean == Approx(5).margin(4 * std::sqrt(4.975 / 40000)));
    CHECK(m.variance == Approx(4.975).epsilon(0.04));
  }
  SECTION("mean 3000 (normal): n 10000, p 0.3, variance 10000 x 0.3 x 0.7 = 2100") {
    const CountMoments m = CountSample(40000, [&] { return DrawBinomial(rng, 10000, 0.3); });
    CHECK(m.mean == Approx(3000).margin(4 * std::sqrt(2100.0 / 40000)));
    CHECK(m.variance == Approx(2100).epsilon(0.04));
  }
  SECTION("p above 1/2 is n less the mirror draw: n 10, p 0.9, mean 9, variance 0.9") {
    const CountMoments m = CountSample(40000, [&] { return DrawBinomial(rng, 10, 0.9); });
    CHECK(m.mean == Approx(9).margin(4 * std::sqrt(0.9 / 40000)));
    CHECK(m.variance == Approx(0.9).epsilon(0.04));
  }
}

TEST_CASE("DrawRankCounts: T k selections, no count above T, each count's mean T pi") {
  // The hand-worked inclusion probabilities are what the per-token draw uses.
  const std::vector<double> pi = InclusionProbabilities(ZipfPopularity(4, 1.0), 2);
  REQUIRE(pi.size() == 4);
  for (int e = 0; e < 4; ++e) CHECK(pi[e] == Approx(kCountZipfPi[e]).margin(1e-12));
  // T = 1000 tokens of 2 experts: 2000 selections. Means T pi = 960, 480, 320, 240. Variances, the
  // binomials' v = T pi (1 - pi) = 38.4, 249.6, 217.6, 182.4 (sum V = 688) conditioned on their
  // sum: v (1 - v / V) = 36.26, 159.05, 148.78, 134.04.
  const double mean[] = {960, 480, 320, 240}, variance[] = {36.26, 159.05, 148.78, 134.04};
  Rng rng(7);
  const int draws = 4000;
  std::vector<double> sum(4, 0), squares(4, 0);
  for (int i = 0; i < draws; ++i) {
    const std::vector<uint64_t> c = DrawRankCounts(rng, kCountZipfPi, 1000, 2);
    REQUIRE(std::accumulate(c.begin(), c.end(), uint64_t{0}) == 2000);
    for (int e = 0; e < 4; ++e) {
      REQUIRE(c[e] <= 1000);
      sum[e] += static_cast<double>(c[e]);
      squares[e] += static_cast<double>(c[e]) * static_cast<double>(c[e]);
    }
  }
  for (int e = 0; e < 4; ++e) {
    INFO("expert " << e);
    const double m = sum[e] / draws;
    // 4 standard errors of the mean: at most 4 sqrt(250 / 4000) = 1.
    CHECK(m == Approx(mean[e]).margin(1.0));
    // The approximation of the variance holds to a few percent; 4,000 draws measure it to 9 %.
    CHECK((squares[e] - draws * m * m) / (draws - 1) == Approx(variance[e]).epsilon(0.12));
  }
  SECTION("an expert in every token gets exactly T") {
    // pi = (1, 0.5, 0.5), k = 2: expert 0 takes all 1000 tokens, 1 and 2 share the other 1000.
    const std::vector<double> certain = {1.0, 0.5, 0.5};
    for (int i = 0; i < 100; ++i) {
      const std::vector<uint64_t> c = DrawRankCounts(rng, certain, 1000, 2);
      REQUIRE(c[0] == 1000);
      REQUIRE(c[1] + c[2] == 1000);
    }
  }
}

TEST_CASE("Count draw and per-token draw: the same per-expert means") {
  // 64 ranks of 1000 tokens, Zipf alpha 1 over 4 experts, top-2 (expert 0 the hottest, no
  // shuffle): both draws give expert e about 1000 pi_e = 960, 480, 320, 240 per rank. The mean
  // over 64 ranks is within 4 sqrt(T pi (1 - pi) / 64) <= 4 x 1.98 = 8 of it.
  const RoutingShape shape{
      .ranks = 64, .layers = 1, .tokens_per_rank = 1000, .num_experts = 4, .top_k = 2};
  const LayerRouting tokens = ZipfRouting(shape, {.alpha = 1.0}, /*seed=*/3, /*layer=*/0);
  std::vector<double> per_token(4, 0);
  for (const auto& rank : tokens.experts) {
    for (uint32_t e : rank) per_token[e] += 1.0 / 64;
  }
  const LayerCounts counts = DrawLayerCounts(shape, kCountZipfPi, /*seed=*/3, /*layer=*/0);
  std::vector<double> per_count(4, 0);
  for (const auto& rank : counts.counts) {
    for (int e = 0; e < 4; ++e) per_count[e] += static_cast<double>(rank[e]) / 64;
  }
  const double mean[] = {960, 480, 320, 240};
  for (int e = 0; e < 4; ++e) {
    INFO("expert " << e);
    CHECK(per_token[e] == Approx(mean[e]).margin(8));
    CHECK(per_count[e] == Approx(mean[e]).margin(8));
  }
}

TEST_CASE("Count draw: the same seed, the same counts, on one thread or several") {
  // 1,024 ranks x 64 experts is enough work to split over the cores (models/parallel.h); 8 ranks
  // run on the calling thread. Rank r's counts come from its own stream: equal in both.
  std::vector<double> pi(64, 8.0 / 64);
  const RoutingShape many{.ranks = 1024, .tokens_per_rank = 512, .num_experts = 64, .top_k = 8};
  const RoutingShape few{.ranks = 8, .tokens_per_rank = 512, .num_experts = 64, .top_k = 8};
  const LayerCounts a = DrawLayerCounts(many, pi, 11, 2);
  const LayerCounts b = DrawLayerCounts(many, pi, 11, 2);
  const LayerCounts c = DrawLayerCounts(few, pi, 11, 2);
  CHECK(a.counts == b.counts);
  for (uint32_t r = 0; r < 8; ++r) CHECK(a.counts[r] == c.counts[r]);
  CHECK(DrawLayerCounts(few, pi, 12, 2).counts != c.counts);  // another seed, another draw
  CHECK(DrawLayerCounts(few, pi, 11, 3).counts != c.counts);  // another layer likewise
}

TEST_CASE("ExpandCounts: rows, expert tokens, drops and distinct tokens by hand") {
  // 2 ranks, 4 experts contiguous (rank 0: e0 e1, rank 1: e2 e3), T = 10 tokens of top-2.
  const Plan plan = CountPlan(2, 4);
  ExpertPlacement placement = ExpertPlacement::Contiguous(4, 2);
  placement.set_gpus_per_node(2);  // one node
  // Sampled tokens {0,1} {0,2} {2,3} {1,3}: 3 of the 4 reach rank 0 (e0 or e1), 3 reach rank 1,
  // all 4 the node.
  const LayerCounts counts{0, 2, 10, {{10, 5, 3, 2}, {4, 6, 7, 3}}, {0, 1, 0, 2, 2, 3, 1, 3}};
  SECTION("no capacity") {
    const LayerWork w = ExpandCounts(counts, plan, placement);
    // Rank 0 sends 10 + 5 = 15 to itself and 3 + 2 = 5 to rank 1; rank 1 sends 10 and 10.
    CHECK(CountRow(w.dispatch_tokens, 0) == std::vector<uint64_t>{15, 5});
    CHECK(CountRow(w.dispatch_tokens, 1) == std::vector<uint64_t>{10, 10});
    CHECK(w.expert_tokens[0] == std::vector<uint64_t>{14, 11});
    CHECK(w.expert_tokens[1] == std::vector<uint64_t>{10, 5});
    CHECK(w.tokens_in == std::vector<uint64_t>{10, 10});
    CHECK(w.TotalDropped() == 0);
    // Distinct tokens: round(T x 3/4) = round(7.5) = 8 at each rank, but rank 0 sends only 5
    // copies to rank 1; the node: round(10 x 4/4) = 10.
    CHECK(CountRow(w.rank_tokens, 0) == std::vector<uint64_t>{8, 5});
    CHECK(CountRow(w.rank_tokens, 1) == std::vector<uint64_t>{8, 8});
    CHECK(w.node_tokens.at(0, 0) == 10);
    CHECK(w.node_tokens.at(1, 0) == 10);
  }
  SECTION("capacity 1.2: ceil(10 x 2 / 4 x 1.2) = 6 copies per sender and expert") {
    const LayerWork w = ExpandCounts(counts, plan, placement, 1.2);
    // Rank 0 drops 4 of e0's 10; rank 1 drops 1 of e2's 7 (e1's 6 fit).
    CHECK(w.dropped == std::vector<uint64_t>{4, 1});
    CHECK(w.dropped_per_expert == std::vector<uint64_t>{4, 0, 1, 0});
    CHECK(CountRow(w.dispatch_tokens, 0) == std::vector<uint64_t>{11, 5});
    CHECK(CountRow(w.dispatch_tokens, 1) == std::vector<uint64_t>{10, 9});
    CHECK(w.expert_tokens[0] == std::vector<uint64_t>{10, 11});
  }
}

TEST_CASE("ExpandCounts on a per-token routing's counts is ExpandLayer's, replicas and drops too") {
  // 4 ranks, 8 experts, each expert on two ranks (slots below): a copy's replica follows the
  // sender's n-th copy of that expert, whether the copies come from tokens or from a count.
  const RoutingShape shape{.ranks = 4, .tokens_per_rank = 300, .num_experts = 8, .top_k = 2};
  const LayerRouting tokens = ZipfRouting(shape, {.alpha = 1.2}, 5, 0);
  LayerCounts counts{0, 2, 300, std::vector<std::vector<uint64_t>>(4, std::vector<uint64_t>(8))};
  for (uint32_t r = 0; r < 4; ++r) {
    for (uint32_t e : tokens.experts[r]) ++counts.counts[r][e];
  }
  const Plan plan = CountPlan(4, 8);
  ExpertPlacement placement = ExpertPlacement::PerLayer(
      {LayerPlacement(8, {{0, 1, 2, 3}, {4, 5, 6, 7}, {0, 2, 4, 6}, {1, 3, 5, 7}})},
      "two replicas each");
  placement.set_gpus_per_node(2);
  for (double capacity : {0.0, 1.1}) {
    INFO("capacity factor " << capacity);
    const LayerWork want = ExpandLayer(tokens, plan, placement, capacity);
    const LayerWork got = ExpandCounts(counts, plan, placement, capacity);
    CHECK(got.dispatch_tokens == want.dispatch_tokens);
    CHECK(got.expert_tokens == want.expert_tokens);
    CHECK(got.tokens_in == want.tokens_in);
    CHECK(got.dropped == want.dropped);
    CHECK(got.dropped_per_expert == want.dropped_per_expert);
    // Distinct tokens are estimates from the sample (here none: 1 wherever copies go); at most
    // the copies, and at least one where there are any.
    for (uint32_t s = 0; s < 4; ++s) {
      for (uint32_t d = 0; d < 4; ++d) {
        CHECK(got.rank_tokens.at(s, d) <= got.dispatch_tokens.at(s, d));
        CHECK((got.rank_tokens.at(s, d) > 0) == (got.dispatch_tokens.at(s, d) > 0));
      }
    }
  }
}

}  // namespace moesim::models
