#include "models/routers.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <set>

namespace moesim::models {
namespace {

// Logits whose softmax is `p` up to rounding: softmax(ln p) = p / sum(p) = p when sum(p) = 1.
std::vector<double> LogOf(std::initializer_list<double> p) {
  std::vector<double> out;
  for (double v : p) out.push_back(std::log(v));
  return out;
}

Logits Make(const std::vector<double>& values, uint32_t experts) {
  auto logits = Logits::FromRowMajor(values, experts);
  REQUIRE(logits.ok());
  return *logits;
}

std::vector<uint32_t> Experts(const RouterOutput& out, uint64_t token) {
  std::vector<uint32_t> ids;
  for (const Choice& c : out.token(token)) ids.push_back(c.expert);
  return ids;
}

std::vector<double> Weights(const RouterOutput& out, uint64_t token) {
  std::vector<double> w;
  for (const Choice& c : out.token(token)) w.push_back(c.weight);
  return w;
}

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace

TEST_CASE("Softmax top-k with and without renormalizing over the chosen k") {
  // Token 0: p = [0.1, 0.2, 0.3, 0.4]; top-2 = e3 (0.4), e2 (0.3).
  //   Mixtral renormalizes: 0.4 / 0.7 = 4/7, 0.3 / 0.7 = 3/7. Qwen1.5-MoE keeps 0.4 and 0.3.
  // Token 1: equal logits, p = 0.25 each; the tie goes to the lower ids, e0 and e1 (0.5 each when
  //   renormalized).
  std::vector<double> x = LogOf({0.1, 0.2, 0.3, 0.4});
  for (int i = 0; i < 4; ++i) x.push_back(0.0);
  const Logits logits = Make(x, 4);

  auto mixtral = RouteTopK(logits, {.top_k = 2, .normalize = true});
  REQUIRE(mixtral.ok());
  CHECK(Experts(*mixtral, 0) == std::vector<uint32_t>{3, 2});
  CHECK(Weights(*mixtral, 0)[0] == Approx(4.0 / 7));
  CHECK(Weights(*mixtral, 0)[1] == Approx(3.0 / 7));
  CHECK(Experts(*mixtral, 1) == std::vector<uint32_t>{0, 1});
  CHECK(Weights(*mixtral, 1)[0] == Approx(0.5));
  CHECK(mixtral->expert_tokens == std::vector<uint64_t>{1, 1, 1, 1});
  CHECK(mixtral->dropped.empty());

  auto qwen = RouteTopK(logits, {.top_k = 2});
  REQUIRE(qwen.ok());
  CHECK(Experts(*qwen, 0) == std::vector<uint32_t>{3, 2});
  CHECK(Weights(*qwen, 0)[0] == Approx(0.4));
  CHECK(Weights(*qwen, 0)[1] == Approx(0.3));
  CHECK(Weights(*qwen, 1)[1] == Approx(0.25));

  // Float scores give the same experts.
  const std::vector<float> xf(x.begin(), x.end());
  auto from_float = Logits::FromRowMajor(xf, 4);
  REQUIRE(from_float.ok());
  CHECK(Experts(RouteTopK(*from_float, {.top_k = 2}).value(), 0) == std::vector<uint32_t>{3, 2});
}

TEST_CASE("Sigmoid scores with a selection-only bias and a scaling factor (DeepSeek-V3)") {
  // x = [2, 1, 0, -1]: s = sigmoid(x) = [0.8808, 0.7311, 0.5, 0.2689].
  // Without bias the top-2 are e0, e1. With b = [0, 0, 0.3, 0.5], s + b = [0.8808, 0.7311, 0.8,
  // 0.7689], so the top-2 are e0 and e2; their weights come from the unbiased s:
  //   w0 = 2.5 * s0 / (s0 + s2) = 2.5 * 0.8808 / 1.3808 = 1.5947, w2 = 2.5 * 0.5 / 1.3808 = 0.9053.
  const Logits logits = Make({2, 1, 0, -1}, 4);
  const double s0 = Sigmoid(2), s1 = Sigmoid(1), s2 = Sigmoid(0);

  auto plain = RouteTopK(logits, {.top_k = 2, .score = ScoreFunction::kSigmoid, .normalize = true});
  REQUIRE(plain.ok());
  CHECK(Experts(*plain, 0) == std::vector<uint32_t>{0, 1});
  CHECK(Weights(*plain, 0)[0] == Approx(s0 / (s0 + s1)));

  auto v3 = RouteTopK(logits, {.top_k = 2,
                               .score = ScoreFunction::kSigmoid,
                               .normalize = true,
                               .selection_bias = {0, 0, 0.3, 0.5},
                               .scaling_factor = 2.5});
  REQUIRE(v3.ok());
  CHECK(Experts(*v3, 0) == std::vector<uint32_t>{0, 2});
  CHECK(Weights(*v3, 0)[0] == Approx(2.5 * s0 / (s0 + s2)));
  CHECK(Weights(*v3, 0)[0] == Approx(1.5947).epsilon(1e-4));
  CHECK(Weights(*v3, 0)[1] == Approx(2.5 * s2 / (s0 + s2)));
  // Unnormalized sigmoid weights are the sigmoids themselves, times the factor.
  auto raw = RouteTopK(logits, {.top_k = 2,
                                .score = ScoreFunction::kSigmoid,
                                .selection_bias = {0, 0, 0.3, 0.5},
                                .scaling_factor = 2.5});
  REQUIRE(raw.ok());
  CHECK(Weights(*raw, 0)[1] == Approx(2.5 * 0.5));
}

namespace {

// 8 experts in 4 groups of 2 (g0 = {e0, e1}, g1 = {e2, e3}, g2 = {e4, e5}, g3 = {e6, e7}), softmax
// probabilities chosen so that the three rules disagree:
//   p      = [0.30, 0.01 | 0.17, 0.16 | 0.18, 0.02 | 0.10, 0.06]      (sum 1)
//   max    =  0.30         0.17         0.18         0.10
//   top-2  =  0.31         0.33         0.20         0.16
const std::vector<double> kGrouped = LogOf({0.30, 0.01, 0.17, 0.16, 0.18, 0.02, 0.10, 0.06});

}  // namespace

TEST_CASE("Group-limited top-k by group max (DeepSeek-V2) and by top-2 sum (DeepSeek-V3)") {
  const Logits logits = Make(kGrouped, 8);
  // No limit: top-3 = e0 (0.30), e4 (0.18), e2 (0.17).
  auto unlimited = RouteTopK(logits, {.top_k = 3});
  REQUIRE(unlimited.ok());
  CHECK(Experts(*unlimited, 0) == std::vector<uint32_t>{0, 4, 2});

  // Max: best two groups g0 (0.30), g2 (0.18); top-3 of {e0, e1, e4, e5} = e0, e4, e5 (0.02).
  auto v2 = RouteTopK(logits, {.top_k = 3, .group_limit = RouterGroupLimit{4, 2, 1}});
  REQUIRE(v2.ok());
  CHECK(Experts(*v2, 0) == std::vector<uint32_t>{0, 4, 5});
  CHECK(Weights(*v2, 0)[2] == Approx(0.02));

  // Top-2 sum: best two groups g1 (0.33), g0 (0.31); top-3 of {e0..e3} = e0, e2, e3.
  auto v3 = RouteTopK(logits, {.top_k = 3, .group_limit = RouterGroupLimit{4, 2, 2}});
  REQUIRE(v3.ok());
  CHECK(Experts(*v3, 0) == std::vector<uint32_t>{0, 2, 3});

  // One group per expert, all kept: the same as no limit.
  auto trivial = RouteTopK(logits, {.top_k = 3, .group_limit = RouterGroupLimit{8, 8, 1}});
  REQUIRE(trivial.ok());
  CHECK(Experts(*trivial, 0) == std::vector<uint32_t>{0, 4, 2});
}

TEST_CASE("Node-limited routing reaches at most M nodes") {
  // The same 8 experts on 4 nodes of 2. top_k = 4, M = 2: nodes are ranked by the sum of their best
  // ceil(4 / 2) = 2 scores (0.31, 0.33, 0.20, 0.16), so nodes 1 and 0 are kept and the token takes
  // e0, e2, e3, e1, although e4 (0.18) would make the unlimited top-4 (e0, e4, e2, e3).
  const Logits logits = Make(kGrouped, 8);
  auto unlimited = RouteTopK(logits, {.top_k = 4});
  REQUIRE(unlimited.ok());
  CHECK(Experts(*unlimited, 0) == std::vector<uint32_t>{0, 4, 2, 3});

  auto limited = RouteTopK(logits, {.top_k = 4, .node_limit = NodeLimit{2, 2}});
  REQUIRE(limited.ok());
  CHECK(Experts(*limited, 0) == std::vector<uint32_t>{0, 2, 3, 1});
  std::set<uint32_t> nodes;
  for (uint32_t e : Experts(*limited, 0)) nodes.insert(e / 2);
  CHECK(nodes.size() <= 2);

  // M = 1, top_k = 2: one node, ranked by its top-2 sum: node 1 (0.33) -> e2, e3.
  auto one = RouteTopK(logits, {.top_k = 2, .node_limit = NodeLimit{2, 1}});
  REQUIRE(one.ok());
  CHECK(Experts(*one, 0) == std::vector<uint32_t>{2, 3});
}

TEST_CASE("GShard random top-2 keeps the second expert with probability 2 w2") {
  // p = [0.6, 0.2, 0.1, 0.1]: e1 = 0 and e2 = 1, w1 = 0.6 / 0.8 = 0.75, w2 = 0.25; the second
  // expert is kept iff u < 2 * 0.25 = 0.5.
  const int tokens = 20'000;
  std::vector<double> x;
  for (int t = 0; t < tokens; ++t) {
    for (double v : LogOf({0.6, 0.2, 0.1, 0.1})) x.push_back(v);
  }
  const Logits logits = Make(x, 4);
  Rng rng(11);
  auto out = GShardTop2(logits, rng);
  REQUIRE(out.ok());

  // The same coin flips, replayed: one 53-bit uniform per token, in token order.
  Rng replay(11);
  uint64_t kept = 0;
  for (int t = 0; t < tokens; ++t) {
    const double u = static_cast<double>(replay.Next() >> 11) * 0x1p-53;
    const bool keep = u < 0.5;
    REQUIRE(out->token(t).size() == (keep ? 2u : 1u));
    CHECK(out->token(t)[0].expert == 0);
    CHECK(out->token(t)[0].weight == Approx(0.75));  // not renormalized after a drop
    kept += keep;
  }
  CHECK(out->expert_tokens[1] == kept);
  CHECK(out->dropped.size() == tokens - kept);
  CHECK(out->dropped_per_expert[1] == tokens - kept);
  CHECK(out->dropped.front().reason == DropReason::kRandomSecond);
  CHECK(out->dropped.front().weight == Approx(0.25));
  // Kept with probability 0.5: sd = sqrt(20,000 * 0.25) = 71; 6 sigma = 424.
  CHECK(std::abs(static_cast<double>(kept) - 10'000) < 424);

  // Equal top two: w2 = 0.5, 2 * w2 = 1 > u always, so the second is always kept.
  const Logits tie = Make({0, 0, 0, 0}, 2);
  auto both = GShardTop2(tie, rng);
  REQUIRE(both.ok());
  CHECK(both->dropped.empty());
  CHECK(Experts(*both, 1) == std::vector<uint32_t>{0, 1});
}

TEST_CASE("Expert capacity follows ceil of capacity factor x tokens x k over experts") {
  CHECK(ExpertCapacity(8, 1, 4, 1.25) == 3);       // 8 / 4 * 1.25 = 2.5 -> 3
  CHECK(ExpertCapacity(4096, 2, 8, 1.0) == 1024);  // 4096 * 2 / 8 = 1024 exactly
  // As Megatron-Core computes it, in double: 100 / 1 * 1.1 = 110.00000000000001 -> 111.
  CHECK(ExpertCapacity(100, 1, 1, 1.1) == 111);
}

TEST_CASE("Switch capacity drops selections past capacity in token order") {
  // 4 tokens, 2 experts, top-1. Tokens 0, 1 and 3 prefer e0, token 2 prefers e1.
  // capacity = ceil(4 * 1 / 2 * 1.0) = 2: e0 takes tokens 0 and 1, token 3 is over capacity.
  const Logits logits = Make({1, 0, 1, 0, 0, 1, 1, 0}, 2);
  auto routed = RouteTopK(logits, {.top_k = 1});
  REQUIRE(routed.ok());
  const double w = 1 / (1 + std::exp(-1.0));  // softmax of [1, 0] at e0

  auto dropped = ApplyCapacity(*routed, {.capacity_factor = 1.0, .top_k = 1});
  REQUIRE(dropped.ok());
  CHECK(dropped->expert_tokens == std::vector<uint64_t>{2, 1});
  CHECK(dropped->token(3).empty());
  CHECK(dropped->TokensWithoutExpert() == 1);
  REQUIRE(dropped->dropped.size() == 1);
  CHECK(dropped->dropped[0].token == 3);
  CHECK(dropped->dropped[0].expert == 0);
  CHECK(dropped->dropped[0].weight == Approx(w));
  CHECK(dropped->dropped[0].reason == DropReason::kCapacity);
  CHECK(dropped->dropped_per_expert == std::vector<uint64_t>{1, 0});
  CHECK(dropped->overflow == Overflow::kDrop);

  // Passed on through the residual: the same selections leave the expert, reported the same way.
  auto residual =
      ApplyCapacity(*routed, {.capacity_factor = 1.0, .top_k = 1, .overflow = Overflow::kResidual});
  REQUIRE(residual.ok());
  CHECK(residual->overflow == Overflow::kResidual);
  CHECK(residual->dropped == dropped->dropped);

  // capacity = ceil(2 * 1.5) = 3: nothing over.
  auto roomy = ApplyCapacity(*routed, {.capacity_factor = 1.5, .top_k = 1});
  REQUIRE(roomy.ok());
  CHECK(roomy->dropped.empty());
  CHECK(roomy->expert_tokens == std::vector<uint64_t>{3, 1});
}

TEST_CASE("Capacity claim order: token order against first choices first") {
  // 3 tokens, 3 experts, top-2; capacity = ceil(3 * 2 / 3 * 1.0) = 2.
  //   t0 = [1, 2, 0] -> (e1, e0);  t1 = [2, 0, 1] -> (e0, e2);  t2 = [2, 1, 0] -> (e0, e1).
  // Token order: t0 takes e1, e0; t1 takes e0 (e0 full now), e2; t2's e0 is refused.
  // First choices first: t0 e1, t1 e0, t2 e0 (full); then t0's second choice e0 is refused.
  const Logits logits = Make({1, 2, 0, 2, 0, 1, 2, 1, 0}, 3);
  auto routed = RouteTopK(logits, {.top_k = 2});
  REQUIRE(routed.ok());
  CHECK(Experts(*routed, 0) == std::vector<uint32_t>{1, 0});

  auto by_token = ApplyCapacity(*routed, {.capacity_factor = 1.0, .top_k = 2});
  REQUIRE(by_token.ok());
  REQUIRE(by_token->dropped.size() == 1);
  CHECK(by_token->dropped[0].token == 2);
  CHECK(by_token->dropped[0].expert == 0);
  CHECK(Experts(*by_token, 2) == std::vector<uint32_t>{1});

  auto by_rank = ApplyCapacity(
      *routed, {.capacity_factor = 1.0, .top_k = 2, .order = ClaimOrder::kChoiceRankThenToken});
  REQUIRE(by_rank.ok());
  REQUIRE(by_rank->dropped.size() == 1);
  CHECK(by_rank->dropped[0].token == 0);
  CHECK(by_rank->dropped[0].expert == 0);
  CHECK(Experts(*by_rank, 0) == std::vector<uint32_t>{1});
  CHECK(by_rank->expert_tokens == std::vector<uint64_t>{2, 2, 1});
}

TEST_CASE("Dense MoE uses every expert with softmax weights") {
  // p = [0.5, 0.3, 0.2]: every expert, best first, weights p.
  const Logits logits = Make(LogOf({0.2, 0.5, 0.3}), 3);
  auto out = DenseRouting(logits);
  REQUIRE(out.ok());
  CHECK(Experts(*out, 0) == std::vector<uint32_t>{1, 2, 0});
  CHECK(Weights(*out, 0)[0] == Approx(0.5));
  CHECK(Weights(*out, 0)[2] == Approx(0.2));
  CHECK(out->expert_tokens == std::vector<uint64_t>{1, 1, 1});
}

TEST_CASE("Expert choice: each expert takes its top-c tokens") {
  // 4 tokens, 2 experts, S[t][0] = 0.9, 0.8, 0.7, 0.6 (so S[t][1] = 0.1, 0.2, 0.3, 0.4).
  std::vector<double> x;
  for (double p : {0.9, 0.8, 0.7, 0.6}) {
    x.push_back(std::log(p));
    x.push_back(std::log(1 - p));
  }
  const Logits logits = Make(x, 2);

  // c = ceil(4 / 2 * 1.5) = 3: e0 takes t0, t1, t2; e1 takes t3, t2, t1.
  auto wide = ExpertChoice(logits, 1.5);
  REQUIRE(wide.ok());
  CHECK(Experts(*wide, 0) == std::vector<uint32_t>{0});
  CHECK(Experts(*wide, 1) == std::vector<uint32_t>{0, 1});
  CHECK(Experts(*wide, 2) == std::vector<uint32_t>{0, 1});
  CHECK(Experts(*wide, 3) == std::vector<uint32_t>{1});
  CHECK(Weights(*wide, 1)[1] == Approx(0.2));
  CHECK(wide->expert_tokens == std::vector<uint64_t>{3, 3});

  // c = ceil(4 / 2 * 0.5) = 1: e0 takes t0, e1 takes t3; t1 and t2 get no expert.
  auto narrow = ExpertChoice(logits, 0.5);
  REQUIRE(narrow.ok());
  CHECK(Experts(*narrow, 0) == std::vector<uint32_t>{0});
  CHECK(Experts(*narrow, 3) == std::vector<uint32_t>{1});
  CHECK(narrow->TokensWithoutExpert() == 2);

  // c is capped at the tokens: every expert takes every token, like dense.
  auto all = ExpertChoice(logits, 10);
  REQUIRE(all.ok());
  CHECK(all->expert_tokens == std::vector<uint64_t>{4, 4});
}

TEST_CASE("Router outputs as flat expert lists and LayerRouting") {
  // Token 0 -> (e3, e2), token 1 -> (e0, e1), as in the softmax top-k case above.
  std::vector<double> x = LogOf({0.1, 0.2, 0.3, 0.4});
  for (int i = 0; i < 4; ++i) x.push_back(0.0);
  const RouterOutput out = RouteTopK(Make(x, 4), {.top_k = 2}).value();
  auto ids = FlatExpertIds(out);
  REQUIRE(ids.ok());
  CHECK(*ids == std::vector<uint32_t>{3, 2, 0, 1});

  const std::vector<RouterOutput> ranks = {out, out};
  auto layer = ToLayerRouting(ranks, 5);
  REQUIRE(layer.ok());
  CHECK(layer->layer == 5);
  CHECK(layer->top_k == 2);
  CHECK(layer->tokens(1) == 2);
  CHECK(layer->experts[1] == std::vector<uint32_t>{3, 2, 0, 1});

  // Expert choice gives tokens different numbers of experts: no flat form. S[t][0] = 0.9, 0.5, 0.2,
  // c = ceil(3 / 2 * 0.5) = 1: e0 takes t0, e1 takes t2, t1 gets none.
  const Logits three = Make(LogOf({0.9, 0.1, 0.5, 0.5, 0.2, 0.8}), 2);
  auto uneven = FlatExpertIds(ExpertChoice(three, 0.5).value());
  REQUIRE_FALSE(uneven.ok());
  CHECK_THAT(uneven.error().message(), Catch::StartsWith("router output token 1 = 0 experts: "));
}

TEST_CASE("Router argument errors name the argument and what is valid") {
  const Logits logits = Make({0, 1, 2, 3}, 4);
  auto big_k = RouteTopK(logits, {.top_k = 5});
  REQUIRE_FALSE(big_k.ok());
  CHECK(big_k.error().message() == "top_k = 5: outside the 4 experts; valid: 1 to 4");

  auto nan = Logits::FromRowMajor(
      std::vector<double>{0, 1, std::numeric_limits<double>::quiet_NaN(), 3}, 2);
  REQUIRE_FALSE(nan.ok());
  CHECK(nan.error().message() == "logits[1][0] = nan: not finite; valid: finite numbers");

  auto ragged = Logits::FromRowMajor(std::vector<double>{0, 1, 2}, 2);
  REQUIRE_FALSE(ragged.ok());
  CHECK(ragged.error().message() ==
        "logits = 3 values: not a whole number of tokens of 2 experts; valid: a multiple of 2");

  auto groups = RouteTopK(logits, {.top_k = 1, .group_limit = RouterGroupLimit{3, 1, 1}});
  REQUIRE_FALSE(groups.ok());
  CHECK(groups.error().message() ==
        "group_limit.groups = 3: does not divide the 4 experts; valid: a divisor of 4");

  auto nodes = RouteTopK(logits, {.top_k = 3, .node_limit = NodeLimit{1, 2}});
  REQUIRE_FALSE(nodes.ok());
  CHECK(nodes.error().message() ==
        "node_limit.max_nodes = 2: outside the nodes, or too few for top_k = 3; valid: 3 to 4");

  auto bias = RouteTopK(logits, {.top_k = 1, .selection_bias = {1, 2}});
  REQUIRE_FALSE(bias.ok());
  CHECK_THAT(bias.error().message(), Catch::StartsWith("selection_bias = 2 values"));

  auto factor = ExpertChoice(logits, 0);
  REQUIRE_FALSE(factor.ok());
  CHECK(factor.error().message() == "capacity_factor = 0: must be a finite number > 0");

  Rng rng(1);
  auto one_expert = GShardTop2(Make({0, 1}, 1), rng);
  REQUIRE_FALSE(one_expert.ok());
}

}  // namespace moesim::models
