// Seeded synthetic routing: for every token, top_k distinct experts drawn from a stated
// distribution. Same seed, same routing, bit for bit, on every machine: every draw comes from
// models/rng.h, and the few floating-point steps (Zipf weights) use only IEEE-rounded + - * / on
// fixed formulas, compiled without fused multiply-add, before they become integers.
//
//   const RoutingShape shape{.ranks = 8, .layers = 1, .tokens_per_rank = 4096, .num_experts = 64,
//                            .top_k = 8};
//   LayerRouting u = UniformRouting(shape, /*seed=*/1, /*layer=*/0);
//   LayerRouting z = ZipfRouting(shape, {.alpha = 1.2}, 1, 0);           // expert 0 the hottest
//   LayerRouting c = CollapseRouting(shape, {.fraction = 0.3, .hot_experts = 8}, 1, 0);
//   MOESIM_ASSIGN_OR_RETURN(LayerRouting m, CountsRouting(shape, counts, 1, 0));  // measured loads
//   CorrelateLayers(layers, /*correlation=*/0.5, /*seed=*/1);   // token affinity across layers
//
// Streams: the draws of (layer, rank) depend only on (seed, layer, rank) and, with drift, the step,
// so adding ranks leaves the existing ranks' routing unchanged (CountsRouting deals over all ranks
// at once and is the exception). No function keeps state between calls: call them from any thread
// (CorrelateLayers changes only the layers it is given).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "models/routing.h"
#include "proto/status.h"

namespace moesim::models {

// Group-limited (node-limited) routing, as DeepSeek-V2/V3 route (their config's n_group and
// topk_group; Megatron-Core's moe_router_num_groups and moe_router_group_topk). The experts are
// split into `groups` groups of consecutive ids, and each token's experts come from at most `top`
// of them. With contiguous placement over whole nodes, a group is one node's experts, so a token
// reaches at most `top` nodes. Two rules pick a token's groups:
//   score_top = 0  the token first draws its `top` groups, then its k experts among theirs, each
//                  stage as the distribution draws experts (uniformly, or by systematic sampling
//                  on the groups' and then the experts' popularity);
//   score_top > 0  DeepSeek's gate (UniformRouting only): every expert gets an affinity score, a
//                  group scores the sum of its score_top best experts' scores (DeepSeek-V3's
//                  noaux_tc sums the top 2, arXiv:2412.19437 §2.1.2 and its inference/model.py
//                  Gate; DeepSeek-V2's group_limited_greedy takes the best 1), the token keeps its
//                  `top` best groups and takes the k best experts among theirs
//                  (TopKByGroupScore). A group is kept for its best experts, so those experts are
//                  likely among the token's k: the token reaches more of its `top` groups (nodes)
//                  than when the groups are drawn blind.
// groups = 0, or top = groups: no limit, and the routing is exactly the unlimited one. Needs
// groups dividing the experts, top x (experts / groups) >= k and score_top <= experts / groups
// (synthetic_spec.cc checks them).
struct GroupLimit {
  uint32_t groups = 0;
  uint32_t top = 0;
  uint32_t score_top = 0;
  bool Limits() const { return groups > 0 && top < groups; }
};
// What keeps `limit` from applying to `experts` experts with top-k `k`: kGroups when groups is
// not a divisor of the experts from 1 to 64; kTop when top is not 1 to groups, or its groups hold
// fewer than k experts; kScoreTop when score_top is more than a group's experts.
enum class GroupLimitFault { kNone, kGroups, kTop, kScoreTop };
GroupLimitFault CheckGroupLimit(const GroupLimit& limit, uint32_t experts, uint32_t k);

// DeepSeek's group-limited top-k on one token's expert scores (scores[e] for expert e; any
// totally ordered affinity, larger is better): group g = experts [g P, (g + 1) P), P = E /
// limit.groups, scores the sum of its limit.score_top best scores; the limit.top best groups are
// kept (equal group scores: the lower group id) and the k best experts among theirs appended to
// `ids`, best first (equal scores: the lower expert id). Needs a limit CheckGroupLimit accepts,
// with score_top >= 1, and scores.size() = E.
void TopKByGroupScore(std::span<const uint64_t> scores, const GroupLimit& limit, uint32_t k,
                      std::vector<uint32_t>& ids);

// Each token picks top_k distinct experts, every set equally likely (Floyd's sampling). The stream
// of (rank, layer) depends only on (seed, layer, rank): adding ranks does not change existing ones.
// Under a group limit: `top` groups uniformly, then k experts uniformly among theirs; or, with
// score_top, E affinity scores per token, each a uniform 53-bit integer from the stream, and
// TopKByGroupScore (i.i.d. scores: every expert still gets k / E of the selections).
LayerRouting UniformRouting(const RoutingShape& shape, uint64_t seed, uint32_t layer,
                            const GroupLimit& limit = {});

// Popularity changing across training steps. Steps are cut into epochs of `period_steps`; epoch
// n = floor(step / period_steps) has its own hot-expert order (HotOrder), and at step s the
// popularity is the mix (1 - lambda) P_n + lambda P_{n+1}, lambda = (s mod period) / period: each
// token draws from epoch n + 1's distribution with probability lambda, else from epoch n's. So
// popularity moves continuously and the hot experts are all new every period.
struct Drift {
  uint64_t step = 0;          // the training step simulated
  uint64_t period_steps = 0;  // steps from one hot-expert order to the next; 0 = no drift
};

// Which expert holds each popularity rank: order[r] is the r-th most popular expert (r = 0 is the
// hottest). The identity (expert 0 hottest) for epoch 0 unless `shuffle`; otherwise a uniformly
// random permutation drawn from (seed, layer, epoch): each layer and each drift epoch has its own.
std::vector<uint32_t> HotOrder(uint32_t experts, uint64_t seed, uint32_t layer, uint64_t epoch,
                               bool shuffle);

// Zipf popularity over popularity ranks r = 1..E: p_r = r^-alpha / H(E, alpha), H(E, alpha) =
// sum_{j=1..E} j^-alpha (so the hottest expert's probability is 1 / H). alpha > 0 and finite.
std::vector<double> ZipfPopularity(uint32_t experts, double alpha);

// Probabilities pi_e that expert e is among a token's k distinct experts, given popularity p
// (p_e >= 0, sum > 0): pi_e = min(1, c p_e) with c such that sum_e pi_e = k (an expert popular
// enough to be in every token is capped at 1 and the rest share what is left). The expected share
// of all selections that go to e is pi_e / k, which equals p_e whenever k max(p) <= 1.
std::vector<double> InclusionProbabilities(std::span<const double> popularity, uint32_t k);

// Zipf-skewed expert popularity. Each token draws its k distinct experts by randomized systematic
// sampling (Madow 1949; Hartley & Rao 1962): experts in a fresh random order, each covering an
// interval of length pi_e (InclusionProbabilities of the Zipf popularity, in units of 2^-32), and k
// points u, u + 1, ..., u + k - 1 with u uniform in [0, 1); the experts under the points are
// chosen. Each interval is at most 1 long, so no expert is chosen twice, and e is chosen with
// probability exactly pi_e. Expected share of expert order[r]: pi_r / k (= p_{r+1} when
// k p_1 <= 1). (The draw takes shortcuts that change no probability: experts with pi_e = 1 come
// first in every token, the others are shuffled only as far as the last point, and u is drawn in
// [0, 1/2), the mirror image of the other half: see synthetic.cc.)
struct ZipfOptions {
  double alpha = 1.0;            // > 0; larger = more skewed (alpha -> 0 tends to uniform)
  bool shuffle_experts = false;  // which experts are hot: see HotOrder
  Drift drift = {};
  // Under a limit, a token's groups by systematic sampling on each group's total popularity (their
  // inclusion probabilities for `top`), then its experts by systematic sampling among those groups'
  // experts (inclusion probabilities for k of that popularity alone).
  GroupLimit limit = {};
};
LayerRouting ZipfRouting(const RoutingShape& shape, const ZipfOptions& options, uint64_t seed,
                         uint32_t layer);

// Router collapse: a fraction of the tokens send all k of their selections to a few hot experts.
// Each token, with probability `fraction`, picks k distinct experts uniformly among the
// `hot_experts` hottest (HotOrder), else k distinct experts uniformly among all E. Expected share
// of selections: fraction / h + (1 - fraction) / E for each hot expert, (1 - fraction) / E for the
// others.
struct CollapseOptions {
  double fraction = 0;           // in [0, 1]
  uint32_t hot_experts = 0;      // h, top_k..E; 0 means top_k
  bool shuffle_experts = false;  // which experts are hot: see HotOrder
  Drift drift = {};
};
LayerRouting CollapseRouting(const RoutingShape& shape, const CollapseOptions& options,
                             uint64_t seed, uint32_t layer);

// `counts` scaled to add up to `total` by largest-remainder (Hamilton) rounding: each gets
// floor(c_e * total / sum), and the units left go one each to the largest remainders c_e * total
// mod sum (equal remainders: the lower index). Exact integer arithmetic. Requires sum(counts) > 0.
std::vector<uint64_t> ScaleCounts(std::span<const uint64_t> counts, uint64_t total);

// Routing whose per-expert totals over the whole layer (all ranks) are exactly `counts`, after
// scaling them to the layer's T * k selections (T = ranks * tokens_per_rank) with ScaleCounts when
// they add up to anything else. The multiset of expert ids, sorted, is dealt round-robin over the T
// tokens (selection i goes to token i mod T), which gives every token k ids and, as no expert has
// more than T selections, k distinct ones; then the tokens are shuffled with the seeded Rng and cut
// into ranks. Only the totals come from the data: which experts share a token is an artefact of the
// deal. Errors: counts.size() != E, all counts 0, or an expert with more than T selections after
// scaling.
StatusOr<LayerRouting> CountsRouting(const RoutingShape& shape, std::span<const uint64_t> counts,
                                     uint64_t seed, uint32_t layer);

// Token affinity across layers: for every layer l >= 1, each token (of each rank) keeps exactly the
// experts it had in layer l - 1 with probability `correlation`, and otherwise keeps its own draw
// for layer l. 0 leaves the layers independent; 1 makes every layer a copy of layer 0. When every
// layer has the same popularity the per-layer expert loads keep their distribution; otherwise layer
// l's expected load is correlation x layer (l - 1)'s + (1 - correlation) x its own. Layers must
// share ranks, tokens and top_k.
void CorrelateLayers(std::vector<LayerRouting>& layers, double correlation, uint64_t seed);

}  // namespace moesim::models
