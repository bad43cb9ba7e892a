#include "models/synthetic.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <set>
#include <string>

#include "models/expert_counts.h"
#include "models/workload.h"
#include "test_paths.h"

namespace moesim::models {
namespace {

// Selections per expert over every rank of a layer.
std::vector<uint64_t> Loads(const LayerRouting& r, uint32_t experts) {
  std::vector<uint64_t> load(experts, 0);
  for (const auto& ids : r.experts) {
    for (uint32_t e : ids) ++load.at(e);
  }
  return load;
}

// Every token names top_k distinct experts, all in range.
bool DistinctPerToken(const LayerRouting& r, uint32_t experts) {
  for (const auto& ids : r.experts) {
    for (size_t t = 0; t < ids.size(); t += r.top_k) {
      std::set<uint32_t> chosen(ids.begin() + t, ids.begin() + t + r.top_k);
      if (chosen.size() != r.top_k || *chosen.rbegin() >= experts) return false;
    }
  }
  return true;
}

double Share(const std::vector<uint64_t>& load, uint32_t e) {
  uint64_t total = 0;
  for (uint64_t l : load) total += l;
  return static_cast<double>(load[e]) / static_cast<double>(total);
}

std::string CountsCsv() {
  return std::string(MOESIM_SHARED_DATA_DIR) + "/routing/expert_counts_topk.csv";
}

}  // namespace

TEST_CASE("Uniform routing: k distinct experts per token and deterministic per seed") {
  const RoutingShape shape{
      .ranks = 4, .layers = 1, .tokens_per_rank = 1000, .num_experts = 8, .top_k = 2};
  const LayerRouting a = UniformRouting(shape, 7, 0);
  const LayerRouting b = UniformRouting(shape, 7, 0);
  const LayerRouting c = UniformRouting(shape, 8, 0);
  const LayerRouting other_layer = UniformRouting(shape, 7, 1);
  CHECK(a.experts == b.experts);
  CHECK(a.experts != c.experts);
  CHECK(a.experts != other_layer.experts);
  for (uint32_t r = 0; r < 4; ++r) {
    REQUIRE(a.experts[r].size() == 2000);
    CHECK(a.tokens(r) == 1000);
    for (size_t t = 0; t < 1000; ++t) {
      CHECK(a.experts[r][2 * t] != a.experts[r][2 * t + 1]);
      CHECK(a.experts[r][2 * t] < 8);
      CHECK(a.experts[r][2 * t + 1] < 8);
    }
  }
}

TEST_CASE("Uniform routing spreads load evenly and does not depend on the rank count") {
  const RoutingShape shape{
      .ranks = 8, .layers = 1, .tokens_per_rank = 4096, .num_experts = 8, .top_k = 2};
  const LayerRouting r = UniformRouting(shape, 1, 0);
  std::vector<int> load(8, 0);
  for (const auto& ids : r.experts) {
    for (uint32_t e : ids) ++load[e];
  }
  // 8 * 4096 * 2 = 65,536 choices, 8,192 per expert expected; each choice hits a given expert with
  // p = 1/8, sd = sqrt(65,536 * 1/8 * 7/8) = 85; 6 sigma = 510.
  for (int l : load) CHECK(std::abs(l - 8192) < 510);
  // Rank 3's stream depends only on (seed, layer, rank).
  RoutingShape fewer = shape;
  fewer.ranks = 4;
  CHECK(UniformRouting(fewer, 1, 0).experts[3] == r.experts[3]);
}

TEST_CASE("Top-k equal to the expert count picks every expert once") {
  const RoutingShape shape{
      .ranks = 1, .layers = 1, .tokens_per_rank = 50, .num_experts = 4, .top_k = 4};
  const LayerRouting r = UniformRouting(shape, 3, 0);
  for (size_t t = 0; t < 50; ++t) {
    std::set<uint32_t> chosen(r.experts[0].begin() + 4 * t, r.experts[0].begin() + 4 * t + 4);
    CHECK(chosen == std::set<uint32_t>{0, 1, 2, 3});
  }
}

TEST_CASE("Uniform routing output is pinned to the values it had before it moved to synthetic") {
  // Printed by UniformRouting as committed in 136400b (models/routing.cc); the default scenario's
  // numbers depend on these streams staying the same.
  const RoutingShape shape{
      .ranks = 2, .layers = 1, .tokens_per_rank = 6, .num_experts = 8, .top_k = 2};
  const LayerRouting r = UniformRouting(shape, 1, 0);
  CHECK(r.experts[0] == std::vector<uint32_t>{1, 3, 1, 7, 5, 6, 1, 2, 4, 1, 2, 1});
  CHECK(r.experts[1] == std::vector<uint32_t>{2, 1, 1, 7, 1, 7, 0, 2, 6, 1, 6, 4});
  CHECK(UniformRouting(shape, 42, 3).experts[1] ==
        std::vector<uint32_t>{1, 7, 0, 7, 4, 7, 0, 5, 2, 1, 4, 0});
}

TEST_CASE("Synthetic generators are pinned bit for bit") {
  // Printed on x86-64 (GCC 12, glibc 2.36). The same seed must give these on every machine: a
  // difference here means a floating-point step or a stream changed (see models/synthetic.h).
  const RoutingShape shape{
      .ranks = 2, .layers = 1, .tokens_per_rank = 6, .num_experts = 8, .top_k = 2};
  CHECK(ZipfPopularity(8, 1.3) == std::vector<double>{0x1.d61a46b201872p-2, 0x1.7dd78d1b55e08p-3,
                                                      0x1.c2cfc2e735b19p-4, 0x1.3626ee8471241p-4,
                                                      0x1.d01c5d3daf763p-5, 0x1.6e2c3b0f9bba3p-5,
                                                      0x1.2bada1e516ea5p-5, 0x1.f7d7f1f1d8ffbp-6});
  // ZipfRouting's stream changed when it moved to batched Fisher-Yates draws, stopping at the last
  // point, with experts of pi = 1 listed first and u in [0, 1/2) (see models/synthetic.cc): the
  // same distribution, other draws. It was {5, 0, 7, 1, 7, 0, 0, 7, 0, 5, 0, 7}.
  CHECK(
      ZipfRouting(shape,
                  {.alpha = 1.3, .shuffle_experts = true, .drift = {.step = 7, .period_steps = 10}},
                  11, 2)
          .experts[1] == std::vector<uint32_t>{0, 3, 6, 4, 7, 0, 7, 0, 2, 0, 0, 3});
  CHECK(CollapseRouting(shape, {.fraction = 0.5, .hot_experts = 3, .shuffle_experts = true}, 11, 2)
            .experts[1] == std::vector<uint32_t>{4, 3, 4, 1, 1, 3, 6, 2, 1, 3, 0, 1});
  CHECK(CountsRouting(shape, std::vector<uint64_t>{5, 4, 1, 0, 3, 2, 6, 3}, 11, 2)->experts[1] ==
        std::vector<uint32_t>{0, 6, 2, 7, 1, 6, 0, 4, 0, 5, 4, 7});
}

TEST_CASE("Zipf popularity and inclusion probabilities follow their formulas") {
  // p_r = r^-alpha / H(E, alpha). E = 8, alpha = 1: H = 761 / 280, p_1 = 280 / 761 = 0.36794.
  const std::vector<double> p = ZipfPopularity(8, 1.0);
  CHECK(p[0] == Approx(280.0 / 761).epsilon(1e-14));
  CHECK(p[7] == Approx(280.0 / 761 / 8).epsilon(1e-14));
  // The Ln/Exp used for determinism agree with the C library's pow to ~1e-15.
  const std::vector<double> q = ZipfPopularity(64, 1.3);
  double h = 0;
  for (int r = 1; r <= 64; ++r) h += std::pow(r, -1.3);
  for (int r = 1; r <= 64; ++r) CHECK(q[r - 1] == Approx(std::pow(r, -1.3) / h).epsilon(1e-13));

  // k = 2, E = 8, alpha = 2: H = 1.527422, p_1 = 0.65470 > 1/2, so expert 0 is in every token
  // (pi = 1) and the others share the remaining 1: pi_r = p_r / (1 - p_1); pi_2 = 0.25 / (H - 1).
  const std::vector<double> skewed = ZipfPopularity(8, 2.0);
  const std::vector<double> pi = InclusionProbabilities(skewed, 2);
  CHECK(pi[0] == 1.0);
  CHECK(pi[1] == Approx(0.25 / 0.527422052).epsilon(1e-6));
  double sum = 0;
  for (double v : pi) sum += v;
  CHECK(sum == Approx(2.0));
  // When k max(p) <= 1 nothing is capped: pi = k p.
  const std::vector<double> mild = InclusionProbabilities(p, 2);
  CHECK(mild[0] == Approx(2 * p[0]));
}

TEST_CASE("Zipf routing: the hottest expert share matches 1 over H and is deterministic per seed") {
  const RoutingShape shape{
      .ranks = 8, .layers = 1, .tokens_per_rank = 4096, .num_experts = 8, .top_k = 1};
  const LayerRouting a = ZipfRouting(shape, {.alpha = 1.0}, 5, 0);
  CHECK(a.experts == ZipfRouting(shape, {.alpha = 1.0}, 5, 0).experts);
  CHECK(a.experts != ZipfRouting(shape, {.alpha = 1.0}, 6, 0).experts);
  REQUIRE(DistinctPerToken(a, 8));
  // 32,768 tokens, top-1: share of rank r = p_r; p_1 = 280/761 = 0.36794, sd = sqrt(p (1 - p) /
  // 32,768) = 0.00266, so 6 sigma = 0.016 (the same bound holds for every rank).
  const std::vector<uint64_t> load = Loads(a, 8);
  for (uint32_t r = 0; r < 8; ++r) CHECK(std::abs(Share(load, r) - 280.0 / 761 / (r + 1)) < 0.016);

  // Top-8 of 64 experts, alpha = 1: k p_1 = 8 / H(64) = 1.69 > 1, so expert 0 is in every token
  // (share 1/8 exactly) and the rest follow pi_r = c p_r.
  const RoutingShape wide{
      .ranks = 4, .layers = 1, .tokens_per_rank = 4096, .num_experts = 64, .top_k = 8};
  const LayerRouting z = ZipfRouting(wide, {.alpha = 1.0}, 5, 0);
  REQUIRE(DistinctPerToken(z, 64));
  const std::vector<uint64_t> wide_load = Loads(z, 64);
  CHECK(wide_load[0] == 4 * 4096);
  const std::vector<double> pi = InclusionProbabilities(ZipfPopularity(64, 1.0), 8);
  // Expert 1 is in a token with probability pi_1 = 7 p_2 / (1 - p_1) = 0.9349: sd of its count =
  // sqrt(16,384 x 0.9349 x 0.0651) = 32, 6 sigma = 190 selections.
  CHECK(pi[1] == Approx(0.9349).epsilon(1e-4));
  CHECK(std::abs(static_cast<double>(wide_load[1]) - 16'384 * pi[1]) < 190);
}

TEST_CASE("Zipf routing with shuffled experts makes a seeded expert hot in each layer") {
  const RoutingShape shape{
      .ranks = 4, .layers = 2, .tokens_per_rank = 4096, .num_experts = 16, .top_k = 2};
  const std::vector<uint32_t> order0 = HotOrder(16, 9, 0, 0, true);
  const std::vector<uint32_t> order1 = HotOrder(16, 9, 1, 0, true);
  CHECK(order0 != order1);  // each layer has its own hot experts
  CHECK(HotOrder(16, 9, 0, 0, false)[0] == 0);
  const LayerRouting r = ZipfRouting(shape, {.alpha = 1.2, .shuffle_experts = true}, 9, 0);
  // k p_1 = 2 / H(16, 1.2) = 2 / 2.74 = 0.73 <= 1: the hot expert's share is p_1 exactly in
  // expectation; it is in a token with probability 0.73, so the sd of its share is
  // sqrt(16,384 * 0.73 * 0.27) / 32,768 = 0.0017, and 6 sigma = 0.011.
  const double p1 = ZipfPopularity(16, 1.2)[0];
  CHECK(std::abs(Share(Loads(r, 16), order0[0]) - p1) < 0.011);
}

TEST_CASE("Drift moves popularity from one hot-expert order to the next") {
  // Period 10. Step 10 is epoch 1 with lambda = 0: Zipf over HotOrder(epoch 1). Step 5 is epoch 0
  // with lambda = 0.5: the share of expert x is (p_{rank in epoch 0} + p_{rank in epoch 1}) / 2.
  const RoutingShape shape{
      .ranks = 8, .layers = 1, .tokens_per_rank = 4096, .num_experts = 8, .top_k = 1};
  const std::vector<double> p = ZipfPopularity(8, 1.5);
  const std::vector<uint32_t> epoch0 = HotOrder(8, 2, 0, 0, false);
  const std::vector<uint32_t> epoch1 = HotOrder(8, 2, 0, 1, false);
  REQUIRE(epoch0 != epoch1);
  auto rank_in = [](const std::vector<uint32_t>& order, uint32_t e) {
    return static_cast<size_t>(std::find(order.begin(), order.end(), e) - order.begin());
  };
  // Top-1 over 32,768 tokens: sd of a share <= sqrt(0.25 / 32,768) = 0.0028; 6 sigma = 0.017.
  const LayerRouting at10 =
      ZipfRouting(shape, {.alpha = 1.5, .drift = {.step = 10, .period_steps = 10}}, 2, 0);
  CHECK(std::abs(Share(Loads(at10, 8), epoch1[0]) - p[0]) < 0.017);
  const LayerRouting at5 =
      ZipfRouting(shape, {.alpha = 1.5, .drift = {.step = 5, .period_steps = 10}}, 2, 0);
  const std::vector<uint64_t> load5 = Loads(at5, 8);
  for (uint32_t e = 0; e < 8; ++e) {
    const double expected = (p[rank_in(epoch0, e)] + p[rank_in(epoch1, e)]) / 2;
    CHECK(std::abs(Share(load5, e) - expected) < 0.017);
  }
  // Every step is its own draw, and the same step is the same draw.
  const LayerRouting at6 =
      ZipfRouting(shape, {.alpha = 1.5, .drift = {.step = 6, .period_steps = 10}}, 2, 0);
  CHECK(at5.experts != at6.experts);
  CHECK(at5.experts ==
        ZipfRouting(shape, {.alpha = 1.5, .drift = {.step = 5, .period_steps = 10}}, 2, 0).experts);
}

TEST_CASE("Router collapse sends a fraction of the tokens to the hot experts") {
  // E = 16, k = 2, h = 4 hot experts (0..3), fraction 0.3: a hot expert's share is
  // 0.3 / 4 + 0.7 / 16 = 0.11875, a cold one's 0.7 / 16 = 0.04375. A hot expert is in a token with
  // probability 2 * 0.11875 = 0.2375; sd of its share = sqrt(32,768 * 0.2375 * 0.7625) / 65,536
  // = 0.0012, 6 sigma = 0.0072 (less for the cold ones).
  const RoutingShape shape{
      .ranks = 8, .layers = 1, .tokens_per_rank = 4096, .num_experts = 16, .top_k = 2};
  const LayerRouting r = CollapseRouting(shape, {.fraction = 0.3, .hot_experts = 4}, 4, 0);
  CHECK(r.experts == CollapseRouting(shape, {.fraction = 0.3, .hot_experts = 4}, 4, 0).experts);
  CHECK(r.experts != CollapseRouting(shape, {.fraction = 0.3, .hot_experts = 4}, 5, 0).experts);
  REQUIRE(DistinctPerToken(r, 16));
  const std::vector<uint64_t> load = Loads(r, 16);
  for (uint32_t e = 0; e < 16; ++e) {
    CHECK(std::abs(Share(load, e) - (e < 4 ? 0.11875 : 0.04375)) < 0.0072);
  }
  // Fraction 1: every selection lands on the hot experts.
  const std::vector<uint64_t> all =
      Loads(CollapseRouting(shape, {.fraction = 1, .hot_experts = 4}, 4, 0), 16);
  CHECK(all[0] + all[1] + all[2] + all[3] == 8 * 4096 * 2);
  // Fraction 0: uniform, 1/16 each, within 6 sigma = 6 sqrt(32,768 * 0.125 * 0.875) / 65,536
  // = 0.0055.
  const std::vector<uint64_t> none =
      Loads(CollapseRouting(shape, {.fraction = 0, .hot_experts = 4}, 4, 0), 16);
  for (uint32_t e = 0; e < 16; ++e) CHECK(std::abs(Share(none, e) - 0.0625) < 0.0055);
}

TEST_CASE("Layer correlation copies a token's experts from the layer before") {
  const RoutingShape shape{
      .ranks = 4, .layers = 2, .tokens_per_rank = 4096, .num_experts = 8, .top_k = 2};
  auto layers = [&](double correlation) {
    std::vector<LayerRouting> out = {UniformRouting(shape, 3, 0), UniformRouting(shape, 3, 1)};
    CorrelateLayers(out, correlation, 3);
    return out;
  };
  // Fraction of tokens whose layer-1 set equals their layer-0 set: rho + (1 - rho) / C(8, 2) =
  // 0.5 + 0.5 / 28 = 0.51786 for rho = 0.5; sd = sqrt(0.518 * 0.482 / 16,384) = 0.0039, 6 sigma
  // = 0.024.
  auto same_fraction = [](const std::vector<LayerRouting>& l) {
    uint64_t same = 0, tokens = 0;
    for (size_t r = 0; r < l[0].experts.size(); ++r) {
      for (size_t t = 0; t < l[0].experts[r].size(); t += 2) {
        const std::set<uint32_t> a(l[0].experts[r].begin() + t, l[0].experts[r].begin() + t + 2);
        const std::set<uint32_t> b(l[1].experts[r].begin() + t, l[1].experts[r].begin() + t + 2);
        same += a == b;
        ++tokens;
      }
    }
    return static_cast<double>(same) / static_cast<double>(tokens);
  };
  CHECK(std::abs(same_fraction(layers(0.5)) - (0.5 + 0.5 / 28)) < 0.024);
  const std::vector<LayerRouting> copied = layers(1.0);
  CHECK(copied[1].experts == copied[0].experts);
  CHECK(layers(0.0)[1].experts == UniformRouting(shape, 3, 1).experts);
  CHECK(layers(0.5)[1].experts == layers(0.5)[1].experts);
}

TEST_CASE("Largest-remainder scaling of counts") {
  // {5, 3, 2} to 4: exact shares 2, 1.2, 0.8; floors 2, 1, 0 leave 1 unit, which goes to the
  // largest remainder (0.8, expert 2): {2, 1, 1}.
  CHECK(ScaleCounts(std::vector<uint64_t>{5, 3, 2}, 4) == std::vector<uint64_t>{2, 1, 1});
  // {1, 1, 1} to 2: equal remainders, so the lower indices get the units.
  CHECK(ScaleCounts(std::vector<uint64_t>{1, 1, 1}, 2) == std::vector<uint64_t>{1, 1, 0});
  CHECK(ScaleCounts(std::vector<uint64_t>{7, 0, 9}, 16) == std::vector<uint64_t>{7, 0, 9});
}

TEST_CASE("Counts routing matches the counts exactly with distinct experts per token") {
  // E = 4, k = 2, 2 ranks x 2 tokens = T = 4, counts {4, 2, 1, 1} (sum 8 = T k). Sorted ids
  // [0 0 0 0 1 1 2 3] dealt round-robin: token t gets ids t and 4 + t: (0,1), (0,1), (0,2), (0,3);
  // then the tokens are shuffled over the ranks.
  const RoutingShape shape{
      .ranks = 2, .layers = 1, .tokens_per_rank = 2, .num_experts = 4, .top_k = 2};
  const std::vector<uint64_t> counts = {4, 2, 1, 1};
  auto r = CountsRouting(shape, counts, 1, 0);
  REQUIRE(r.ok());
  CHECK(Loads(*r, 4) == counts);
  std::multiset<std::pair<uint32_t, uint32_t>> sets;
  for (const auto& ids : r->experts) {
    for (size_t t = 0; t < ids.size(); t += 2) sets.insert({ids[t], ids[t + 1]});
  }
  CHECK(sets == std::multiset<std::pair<uint32_t, uint32_t>>{{0, 1}, {0, 1}, {0, 2}, {0, 3}});
  CHECK(CountsRouting(shape, counts, 1, 0)->experts == r->experts);

  // Scaled: {5, 3, 2} over 4 top-1 tokens -> {2, 1, 1} (see the scaling case).
  const RoutingShape small{
      .ranks = 1, .layers = 1, .tokens_per_rank = 4, .num_experts = 3, .top_k = 1};
  auto scaled = CountsRouting(small, std::vector<uint64_t>{5, 3, 2}, 1, 0);
  REQUIRE(scaled.ok());
  CHECK(Loads(*scaled, 3) == std::vector<uint64_t>{2, 1, 1});

  // Expert 0 with 4 of 6 selections over 3 tokens: a token would need it twice.
  const RoutingShape three{
      .ranks = 1, .layers = 1, .tokens_per_rank = 3, .num_experts = 3, .top_k = 2};
  auto impossible = CountsRouting(three, std::vector<uint64_t>{4, 1, 1}, 1, 0);
  REQUIRE_FALSE(impossible.ok());
  CHECK_THAT(impossible.error().message(), Catch::Contains("more selections than tokens"));
}

TEST_CASE("Measured OLMoE counts scaled to a smaller batch keep their shape") {
  auto table = ExpertCounts::ReadCsv(CountsCsv());
  REQUIRE(table.ok());
  const std::vector<uint64_t>* counts = table->Find("olmoe", "arxiv", 0);
  REQUIRE(counts != nullptr);
  REQUIRE(counts->size() == 64);
  CHECK(table->Models() == std::vector<std::string>{"mistral", "olmoe", "olmoe-dpo", "olmoe-sft"});
  CHECK(table->Layers("olmoe", "arxiv") == std::vector<uint32_t>{0, 7, 15});

  // 4 ranks x 1024 tokens x top-8 = 32,768 selections, from 1,671,168 measured: each expert gets
  // its largest-remainder share, e.g. expert 0: 204,013 * 32,768 / 1,671,168 = 4,000.25 -> 4,000.
  const RoutingShape shape{
      .ranks = 4, .layers = 1, .tokens_per_rank = 1024, .num_experts = 64, .top_k = 8};
  auto r = CountsRouting(shape, *counts, 1, 0);
  REQUIRE(r.ok());
  REQUIRE(DistinctPerToken(*r, 64));
  const std::vector<uint64_t> load = Loads(*r, 64);
  CHECK(load == ScaleCounts(*counts, 32'768));
  CHECK(load[0] == 4'000);
  // Deterministic per seed; another seed deals the tokens differently, with the same totals.
  CHECK(CountsRouting(shape, *counts, 1, 0)->experts == r->experts);
  auto other = CountsRouting(shape, *counts, 2, 0);
  CHECK(other->experts != r->experts);
  CHECK(Loads(*other, 64) == load);
}

TEST_CASE("The OLMoE measured-loads scenario reproduces the counts file exactly") {
  const std::string path = testing::SourcePath("scenarios/olmoe_measured_loads.pbtxt");
  pb::Scenario scenario;
  auto file = TextFile::Parse(path, &scenario);
  REQUIRE(file.ok());
  auto w = ResolveWorkload(scenario, *file, /*world=*/8);
  REQUIRE(w.ok());
  REQUIRE(w->routing.size() == 1);
  const LayerRouting& layer = w->routing[0];
  REQUIRE(DistinctPerToken(layer, 64));

  auto table = ExpertCounts::ReadCsv(CountsCsv());
  REQUIRE(table.ok());
  const std::vector<uint64_t>& counts = *table->Find("olmoe", "arxiv", 0);
  // 8 GPUs x 26,112 tokens x top-8 = 1,671,168 selections: the measured total, so no scaling.
  const std::vector<uint64_t> load = Loads(layer, 64);
  CHECK(load == counts);
  CHECK_THAT(layer.note, Catch::Contains("1671168 selections, as measured"));

  // max / mean: expert 0's 204,013 selections over the mean 1,671,168 / 64 = 26,112 = 7.8129978554.
  const double mean = 1'671'168.0 / 64;
  const double max = static_cast<double>(*std::max_element(load.begin(), load.end()));
  CHECK(max / mean == Approx(204'013.0 / 26'112));
  CHECK(max / mean == Approx(7.8129978554).epsilon(1e-10));
  const double file_max = static_cast<double>(*std::max_element(counts.begin(), counts.end()));
  CHECK(max / mean == file_max / mean);

  // GPU 0 holds experts 0-7, 385,725 selections: its dispatch column sums to that.
  uint64_t into_gpu0 = 0;
  for (uint32_t src = 0; src < 8; ++src) into_gpu0 += w->layers[0].dispatch_tokens.at(src, 0);
  CHECK(into_gpu0 == 385'725);
}

// Groups a token's experts touch: bit g set when one of its experts is in group g (ids / per).
std::vector<uint64_t> GroupsPerToken(const LayerRouting& r, uint32_t per) {
  std::vector<uint64_t> masks;
  for (const auto& ids : r.experts) {
    for (size_t t = 0; t < ids.size(); t += r.top_k) {
      uint64_t mask = 0;
      for (size_t j = 0; j < r.top_k; ++j) mask |= uint64_t{1} << (ids[t + j] / per);
      masks.push_back(mask);
    }
  }
  return masks;
}

TEST_CASE("Group-limited routing: every token within its top groups, uniform and Zipf") {
  // DeepSeek-V3's router: 256 experts in 8 groups of 32, top-8 from at most 4 groups.
  const RoutingShape shape{
      .ranks = 4, .layers = 1, .tokens_per_rank = 2048, .num_experts = 256, .top_k = 8};
  const GroupLimit limit{.groups = 8, .top = 4};
  const LayerRouting u = UniformRouting(shape, 3, 0, limit);
  const LayerRouting z = ZipfRouting(shape, {.alpha = 1.2, .limit = limit}, 3, 0);
  for (const LayerRouting* r : {&u, &z}) {
    REQUIRE(DistinctPerToken(*r, 256));
    for (uint64_t mask : GroupsPerToken(*r, 32)) CHECK(__builtin_popcountll(mask) <= 4);
  }
  // Deterministic per seed, and a limit that does not bind (4 of 4 groups) changes nothing.
  CHECK(u.experts == UniformRouting(shape, 3, 0, limit).experts);
  CHECK(z.experts == ZipfRouting(shape, {.alpha = 1.2, .limit = limit}, 3, 0).experts);
  CHECK(UniformRouting(shape, 3, 0, {.groups = 4, .top = 4}).experts ==
        UniformRouting(shape, 3, 0).experts);
  CHECK(ZipfRouting(shape, {.alpha = 1.2, .limit = {.groups = 8, .top = 8}}, 3, 0).experts ==
        ZipfRouting(shape, {.alpha = 1.2}, 3, 0).experts);
  // Without the limit, 8 uniform experts of 256 reach 8 (1 - (7/8)^8)-ish = 5.3 groups on average;
  // with it, at most 4: the limit binds.
  uint64_t unlimited_over_4 = 0;
  for (uint64_t mask : GroupsPerToken(UniformRouting(shape, 3, 0), 32))
    unlimited_over_4 += __builtin_popcountll(mask) > 4;
  CHECK(unlimited_over_4 > 4 * 2048 / 2);
}

TEST_CASE("Group-limited Zipf with more group sets than are kept: the same routing per rank") {
  // 64 groups of 4, 8 of them per token: C(64, 8) = 4.4e9 sets, far more than the 4,096 kept, so
  // most tokens' lines are built anew. Each rank's routing is still its own: rank 0 of a 4-rank
  // layer equals a 1-rank layer's, and every token stays within 8 groups.
  const RoutingShape four{
      .ranks = 4, .layers = 1, .tokens_per_rank = 3000, .num_experts = 256, .top_k = 8};
  RoutingShape one = four;
  one.ranks = 1;
  const ZipfOptions options{.alpha = 1.0, .limit = {.groups = 64, .top = 8}};
  const LayerRouting a = ZipfRouting(four, options, 11, 0);
  CHECK(a.experts[0] == ZipfRouting(one, options, 11, 0).experts[0]);
  REQUIRE(DistinctPerToken(a, 256));
  for (uint64_t mask : GroupsPerToken(a, 4)) CHECK(__builtin_popcountll(mask) <= 8);
}

TEST_CASE("Group-limited routing draws groups by their popularity, then experts within them") {
  // 64 experts in 16 groups of 4, top-8 from at most 2 groups: a token takes every expert of its 2
  // groups, so the groups it touches are the groups it drew, which shows the group stage alone.
  const RoutingShape shape{
      .ranks = 4, .layers = 1, .tokens_per_rank = 4096, .num_experts = 64, .top_k = 8};
  const GroupLimit limit{.groups = 16, .top = 2};
  // Uniform: each group is one of a token's 2 of 16 with probability 1/8. 16,384 tokens: the count
  // of a group has sd = sqrt(16,384 x 1/8 x 7/8) = 42.3, so 6 sigma = 254 around 2,048.
  const LayerRouting u = UniformRouting(shape, 9, 0, limit);
  std::vector<uint64_t> in_group(16, 0);
  for (uint64_t mask : GroupsPerToken(u, 4)) {
    CHECK(__builtin_popcountll(mask) == 2);
    for (uint32_t g = 0; g < 16; ++g) in_group[g] += mask >> g & 1;
  }
  for (uint32_t g = 0; g < 16; ++g) CHECK(std::abs(static_cast<double>(in_group[g]) - 2048) < 254);

  // Zipf 1.2, experts unshuffled: group g holds popularity ranks 4g+1..4g+4, and is one of a
  // token's groups with probability pi_g = InclusionProbabilities(group masses, 2)[g]: each count
  // within 6 sigma of 16,384 pi_g.
  const LayerRouting z = ZipfRouting(shape, {.alpha = 1.2, .limit = limit}, 9, 0);
  const std::vector<double> p = ZipfPopularity(64, 1.2);
  std::vector<double> mass(16, 0.0);
  for (uint32_t e = 0; e < 64; ++e) mass[e / 4] += p[e];
  const std::vector<double> pi = InclusionProbabilities(mass, 2);
  std::fill(in_group.begin(), in_group.end(), 0);
  for (uint64_t mask : GroupsPerToken(z, 4)) {
    CHECK(__builtin_popcountll(mask) == 2);
    for (uint32_t g = 0; g < 16; ++g) in_group[g] += mask >> g & 1;
  }
  for (uint32_t g = 0; g < 16; ++g) {
    const double sd = std::sqrt(16'384 * pi[g] * (1 - pi[g]));
    CHECK(std::abs(static_cast<double>(in_group[g]) - 16'384 * pi[g]) < 6 * sd + 1);
  }
  CHECK(in_group[0] > in_group[15]);
}

TEST_CASE("Group-limited top-k by group score: DeepSeek-V3's top-2 sums, V2's best expert") {
  // 12 experts in 4 groups of 3, keep 2 groups, top-3. Scores:
  //   group 0: e0 90, e1 10, e2 10    best two 100, best one 90
  //   group 1: e3 60, e4 55, e5  0    best two 115, best one 60
  //   group 2: e6 95, e7  1, e8  0    best two  96, best one 95
  //   group 3: e9 50, e10 50, e11 50  best two 100, best one 50
  const std::vector<uint64_t> scores = {90, 10, 10, 60, 55, 0, 95, 1, 0, 50, 50, 50};
  std::vector<uint32_t> ids;
  // DeepSeek-V3 (sum of the best two): group 1 (115), then groups 0 and 3 tie at 100 and the lower
  // id wins: groups {1, 0}. Group 2 holds the single best expert, e6, and is not kept. The best 3
  // of experts 0-5: e0 90, e3 60, e4 55.
  TopKByGroupScore(scores, {.groups = 4, .top = 2, .score_top = 2}, 3, ids);
  CHECK(ids == std::vector<uint32_t>{0, 3, 4});
  // DeepSeek-V2 (the best one): group 2 (95), group 0 (90): experts e6 95, e0 90, then e1 and e2
  // tie at 10 and the lower id wins: e1.
  ids.clear();
  TopKByGroupScore(scores, {.groups = 4, .top = 2, .score_top = 1}, 3, ids);
  CHECK(ids == std::vector<uint32_t>{6, 0, 1});
  // Without a limit the top 3 would be e6, e0, e3: three groups. Both rules keep the token to 2.
  // A score_top larger than a group is refused by the check.
  CHECK(CheckGroupLimit({.groups = 4, .top = 2, .score_top = 4}, 12, 3) ==
        GroupLimitFault::kScoreTop);
  CHECK(CheckGroupLimit({.groups = 4, .top = 2, .score_top = 3}, 12, 3) == GroupLimitFault::kNone);
}

TEST_CASE("Groups picked by score reach more nodes per token than groups drawn first") {
  // DeepSeek-V3's shape: 256 experts in 8 groups of 32 (with contiguous placement on 8 nodes, a
  // group is a node), top-8 from 4 groups; one rank of 16,384 tokens, seed 1.
  const RoutingShape shape{
      .ranks = 1, .layers = 1, .tokens_per_rank = 16'384, .num_experts = 256, .top_k = 8};
  const LayerRouting drawn = UniformRouting(shape, 1, 0, {.groups = 8, .top = 4});
  const LayerRouting scored = UniformRouting(shape, 1, 0, {.groups = 8, .top = 4, .score_top = 2});
  REQUIRE(DistinctPerToken(scored, 256));
  uint64_t drawn_groups = 0, scored_groups = 0;
  for (uint64_t mask : GroupsPerToken(drawn, 32)) drawn_groups += __builtin_popcountll(mask);
  for (uint64_t mask : GroupsPerToken(scored, 32)) {
    CHECK(__builtin_popcountll(mask) <= 4);
    scored_groups += __builtin_popcountll(mask);
  }
  // Drawn first: the 8 experts are uniform over the 128 of the 4 groups, so a group is missed with
  // probability C(96, 8) / C(128, 8) = 0.0927 and a token reaches 4 (1 - 0.0927) = 3.629 groups
  // on average (sd of the mean over 16,384 tokens about 0.004). The sample, seed 1: 59,368 /
  // 16,384 = 3.623.
  CHECK(drawn_groups == 59'368);
  CHECK(std::abs(static_cast<double>(drawn_groups) / 16'384 - 3.629) < 0.02);
  // By score: a group is kept for its two best experts, which are then likely among the token's 8
  // best of the 128: a kept group is missed only when the other three kept groups hold 8 experts
  // better than its best one.
  // The sample, seed 1: 64,750 / 16,384 = 3.952 groups per token, 0.329 more nodes per token (9 %)
  // than with the groups drawn blind: DeepSeek's gate sends more to the network.
  CHECK(scored_groups == 64'750);
  // The same seed gives the same routing; and every expert still gets k / E of the selections
  // (i.i.d. scores: no expert is favoured): 16,384 x 8 / 256 = 512 each, sd sqrt(512) = 22.6.
  CHECK(scored.experts == UniformRouting(shape, 1, 0, {.groups = 8, .top = 4, .score_top = 2})
                              .experts);
  for (uint64_t load : Loads(scored, 256)) CHECK(std::abs(static_cast<double>(load) - 512) < 136);
}

}  // namespace moesim::models

namespace moesim::models {

TEST_CASE("Routing drawn on several threads gives every rank what one thread draws") {
  // 256 ranks x 4,096 tokens = 2^20 tokens: enough for the generators to split the ranks over the
  // machine's cores (models/synthetic.cc, ForRanks). Each rank's stream depends only on (seed,
  // layer, rank), so rank r of the big layer must equal rank r of a layer of r + 1 ranks, which is
  // drawn on one thread (fewer than 2^20 tokens): ranks at both ends of each half are checked.
  const RoutingShape big{
      .ranks = 256, .layers = 1, .tokens_per_rank = 4096, .num_experts = 16, .top_k = 2};
  const auto same_ranks = [&](const auto& draw) {
    const LayerRouting all = draw(big);
    for (const uint32_t rank : {0u, 127u, 128u, 254u}) {
      RoutingShape few = big;
      few.ranks = rank + 1;
      few.tokens_per_rank = 4096;
      INFO("rank " << rank);
      CHECK(draw(few).experts[rank] == all.experts[rank]);
    }
  };
  same_ranks([](const RoutingShape& s) { return UniformRouting(s, 5, 0); });
  same_ranks([](const RoutingShape& s) { return UniformRouting(s, 5, 0, {4, 2}); });
  same_ranks([](const RoutingShape& s) { return ZipfRouting(s, {.alpha = 1.2}, 5, 0); });
  same_ranks([](const RoutingShape& s) {
    return ZipfRouting(s, {.alpha = 1.2, .limit = {.groups = 4, .top = 2}}, 5, 0);
  });
}

}  // namespace moesim::models
