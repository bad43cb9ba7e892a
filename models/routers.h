// Routers: from router scores (logits) to each token's experts and combine weights, the way real
// MoE models choose them: softmax top-k (Mixtral, Qwen1.5-MoE), sigmoid with a selection-only bias
// (DeepSeek-V3), group- and node-limited top-k (DeepSeek-V2/V3), GShard's random top-2, Switch's
// expert capacity, dense MoE and expert-choice routing.
//
//   std::vector<float> scores = ...;                                   // [tokens x 8], row-major
//   MOESIM_ASSIGN_OR_RETURN(Logits logits, Logits::FromRowMajor(scores, /*experts=*/8));
//   MOESIM_ASSIGN_OR_RETURN(RouterOutput out,
//                           RouteTopK(logits, {.top_k = 2, .normalize = true}));   // Mixtral
//   out.token(3)            // token 3's choices {expert, weight}, best first
//   out.expert_tokens[5]    // tokens expert 5 processes
//   MOESIM_ASSIGN_OR_RETURN(RouterOutput switch_out,
//                           ApplyCapacity(RouteTopK(logits, {.top_k = 1}).value(),
//                                         {.capacity_factor = 1.25, .top_k = 1}));
//   MOESIM_ASSIGN_OR_RETURN(std::vector<uint32_t> ids, FlatExpertIds(out));  // LayerRouting style
//
// Conventions shared by every router here:
//  - Scores are read as doubles (a float converts exactly). Softmax is over all E experts of a
//    token, computed as exp(x - max) / sum; sigmoid is 1 / (1 + exp(-x)).
//  - A token's choices are listed best first by the score that selected them; equal scores are
//    broken by the lower expert id (so results never depend on sort stability).
//  - Top-k selects on the score plus the optional selection bias (softmax probabilities for
//    Mixtral, as torch.topk(softmax(x)) does; softmax is monotonic, so these are the experts with
//    the largest logits).
//  - Errors (a size that does not match, top_k larger than the experts, a score that is not finite)
//    come back as an Error naming the argument, its value and what is valid; nothing aborts.
//
// Floating-point weights go through std::exp, so they may differ in the last bit between C
// libraries; the GShard router draws its random numbers from models/rng.h, so its coin flips do
// not. Every function is pure (safe to call from several threads) except GShardTop2, which advances
// the Rng it is given.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "models/rng.h"
#include "models/routing.h"
#include "proto/status.h"

namespace moesim::models {

// Router scores of a batch: tokens x experts, row-major, all finite.
class Logits {
 public:
  // `values.size()` must be a multiple of `experts` (>= 1); every value must be finite.
  static StatusOr<Logits> FromRowMajor(std::span<const float> values, uint32_t experts);
  static StatusOr<Logits> FromRowMajor(std::span<const double> values, uint32_t experts);

  uint64_t tokens() const { return tokens_; }
  uint32_t experts() const { return experts_; }
  std::span<const double> row(uint64_t token) const {
    return std::span<const double>(values_).subspan(token * experts_, experts_);
  }

 private:
  Logits(std::vector<double> values, uint32_t experts)
      : values_(std::move(values)), experts_(experts), tokens_(values_.size() / experts) {}

  std::vector<double> values_;
  uint32_t experts_ = 0;
  uint64_t tokens_ = 0;
};

// One of a token's experts and the weight its output is combined with.
struct Choice {
  uint32_t expert = 0;
  double weight = 0;
  bool operator==(const Choice&) const = default;
};

// What happens to a selection that finds its expert full (see ApplyCapacity). For the cost of a
// layer both mean the same thing, the selection is not dispatched; they differ in what the combine
// adds.
enum class Overflow {
  // The selection is discarded: its term of the token's output is zero, and a token left with no
  // expert reaches the next layer through the residual connection only (Switch Transformer §2.2,
  // GShard, Megatron-Core's token dropping).
  kDrop,
  // The token is passed on in place of the expert's output: the combine adds weight x the token's
  // own input for this selection (an identity expert), so the weight is not lost.
  kResidual,
};

enum class DropReason {
  kCapacity,      // the expert was full (ApplyCapacity)
  kRandomSecond,  // GShard's random routing did not keep the second expert (GShardTop2)
};

// A selection a router made and then did not dispatch.
struct DroppedChoice {
  uint64_t token = 0;
  uint32_t expert = 0;
  double weight = 0;  // the combine weight it would have had (kResidual: the weight it still has)
  DropReason reason = DropReason::kCapacity;
  bool operator==(const DroppedChoice&) const = default;
};

// A router's decision for a batch. Invariants: offsets.size() == tokens + 1, offsets[0] == 0,
// offsets is non-decreasing and offsets.back() == choices.size(); expert_tokens[e] is the number of
// choices naming e; dropped_per_expert[e] the number of dropped entries naming e.
struct RouterOutput {
  uint32_t num_experts = 0;
  // Token t's choices are choices[offsets[t] .. offsets[t + 1]), best first; no expert twice.
  std::vector<uint64_t> offsets = {0};
  std::vector<Choice> choices;
  // Tokens each expert processes (size num_experts).
  std::vector<uint64_t> expert_tokens;
  // Selections made but not dispatched, in the order they were refused.
  std::vector<DroppedChoice> dropped;
  std::vector<uint64_t> dropped_per_expert;  // size num_experts
  // What the combine does with the capacity drops (see Overflow).
  Overflow overflow = Overflow::kDrop;

  uint64_t tokens() const { return offsets.size() - 1; }
  std::span<const Choice> token(uint64_t t) const {
    return std::span<const Choice>(choices).subspan(offsets.at(t), offsets.at(t + 1) - offsets[t]);
  }
  // Tokens that reach no expert (expert choice, or every selection dropped).
  uint64_t TokensWithoutExpert() const;
};

enum class ScoreFunction {
  kSoftmax,  // p_e = exp(x_e) / sum_j exp(x_j) over all experts of the token
  kSigmoid,  // s_e = 1 / (1 + exp(-x_e)), each expert on its own (DeepSeek-V3)
};

// Group-limited routing (DeepSeek-V2 §2.1.2 "device-limited", DeepSeek-V3 §2.1.2): experts
// [g*E/G, (g+1)*E/G) form group g; each token first keeps its `top_groups` best groups, then takes
// its top_k experts inside them. A group's score is the sum of its `score_top` best selection
// scores: 1 = its maximum (DeepSeek-V2, `group_limited_greedy`), 2 = the sum of its top two
// (DeepSeek-V3, `noaux_tc`). Equal group scores go to the lower group id.
struct RouterGroupLimit {
  uint32_t groups = 1;      // G >= 1, divides E
  uint32_t top_groups = 1;  // 1..G, with top_groups * E/G >= top_k
  uint32_t score_top = 1;   // 1..E/G
};

// Node-limited routing (DeepSeek-V3 §2.1.2): experts [n*P, (n+1)*P) live on node n (P =
// experts_per_node); each token reaches at most `max_nodes` = M nodes, chosen by the sum of the
// best ceil(top_k / M) selection scores on each node (the paper's "highest K_r/M affinity scores"),
// then takes its top_k experts on those nodes. The same as RouterGroupLimit{E/P, M, ceil(top_k/M)}.
struct NodeLimit {
  uint32_t experts_per_node = 0;  // P >= 1, divides E
  uint32_t max_nodes = 0;         // M: 1..E/P, with M * P >= top_k
};

// Top-k routing. Every field but top_k has the default of the plain softmax router.
//  Mixtral-8x7B:   {.top_k = 2, .normalize = true}
//  Qwen1.5-MoE:    {.top_k = 4}                    (weights are the softmax probabilities)
//  DeepSeek-V2:    {.top_k = 6, .scaling_factor = 16, .group_limit = RouterGroupLimit{8, 3, 1}}
//  DeepSeek-V3:    {.top_k = 8, .score = kSigmoid, .normalize = true, .selection_bias = b,
//                   .scaling_factor = 2.5, .group_limit = RouterGroupLimit{8, 4, 2}}
struct TopKOptions {
  // Experts per token, 1..E.
  uint32_t top_k = 1;
  ScoreFunction score = ScoreFunction::kSoftmax;
  // Weights of the chosen experts divided by their sum, so they add up to 1 (before scaling):
  // Mixtral (softmax then renormalize over the top k) and DeepSeek-V3 (norm_topk_prob) do;
  // Qwen1.5-MoE and DeepSeek-V2 do not. Default false.
  bool normalize = false;
  // Per-expert bias b_e added to the scores for selection only (DeepSeek-V3's auxiliary-loss-free
  // balancing, `e_score_correction_bias`): experts are chosen by s_e + b_e, weights come from the
  // unbiased s_e. Empty = no bias; otherwise E finite values.
  std::vector<double> selection_bias = {};
  // Multiplies every weight after normalization (DeepSeek `routed_scaling_factor`: V2 16, V3 2.5).
  // Finite, > 0. Default 1.
  double scaling_factor = 1.0;
  // At most one of these two.
  std::optional<RouterGroupLimit> group_limit = std::nullopt;
  std::optional<NodeLimit> node_limit = std::nullopt;
};

StatusOr<RouterOutput> RouteTopK(const Logits& logits, const TopKOptions& options);

// GShard's top-2 with random routing (Lepikhin et al. 2021, "GShard", §2.2 and Algorithm 1; the
// same as fairseq's top2gating with second_expert_policy="random" and
// normalize_gate_prob_before_dropping):
//   p = softmax over all experts; e1 = argmax p, e2 = the best other expert;
//   w1 = p1 / (p1 + p2), w2 = p2 / (p1 + p2)        (normalized over the two, before any drop);
//   the second expert is kept iff u < 2 * w2, u uniform in [0, 1) from `rng` (one draw per token,
//   in token order), i.e. with probability 2 * p2 / (p1 + p2) <= 1, proportional to its weight.
// A second expert not kept is listed in `dropped` (reason kRandomSecond); w1 is not renormalized.
// Needs E >= 2.
StatusOr<RouterOutput> GShardTop2(const Logits& logits, Rng& rng);

// Dense MoE: every token uses every expert, weighted by the softmax over all experts.
StatusOr<RouterOutput> DenseRouting(const Logits& logits);

// Expert-choice routing (Zhou et al. 2022, "Mixture-of-Experts with Expert Choice Routing", §3.1):
// S = softmax over experts for each token; each expert e takes the c tokens with the highest
// S[t][e] (equal scores: the lower token id), with weight S[t][e]. c = min(tokens,
// ExpertCapacity(tokens, 1, E, capacity_factor)) (models/routing.h), the paper's k = n x c / e
// rounded up. A token may get 0..E experts; TokensWithoutExpert() counts those with none.
// capacity_factor finite, > 0.
StatusOr<RouterOutput> ExpertChoice(const Logits& logits, double capacity_factor);

// In which order selections claim places in their expert.
enum class ClaimOrder {
  // Token order: for each expert, the tokens that selected it claim in token order, whatever rank
  // the expert has among the token's choices (Switch Transformer; Megatron-Core
  // drop_policy="position").
  kTokenOrder,
  // Every token's first choice, in token order, before any second choice, and so on (GShard
  // Algorithm 1; fairseq top2gating, where locations2 start after all of mask1).
  kChoiceRankThenToken,
};

struct CapacityOptions {
  // capacity = ceil(capacity_factor * tokens * top_k / E) places per expert (Switch Transformer
  // §2.2, "expert capacity = tokens per batch / experts x capacity factor", with top_k selections
  // per token as Megatron-Core's moe_expert_capacity_factor). Finite, > 0.
  double capacity_factor = 1.0;
  // The k of the formula: the router's experts per token (1..E).
  uint32_t top_k = 1;
  Overflow overflow = Overflow::kDrop;
  ClaimOrder order = ClaimOrder::kTokenOrder;
};

// Applies expert capacity to a router's output: selections past an expert's capacity are removed
// from their token and listed in `dropped` (reason kCapacity), counted per expert in
// dropped_per_expert; `overflow` says what the combine does with them. Earlier drops (GShard's) are
// kept in `dropped`.
StatusOr<RouterOutput> ApplyCapacity(const RouterOutput& routed, const CapacityOptions& options);

// The LayerRouting form of a router output: token t's experts at [t*k, t*k + k), in choice order.
// Only for outputs where every token has the same number k >= 1 of experts (top-k and dense routing
// without drops); otherwise an error naming the first token that differs.
StatusOr<std::vector<uint32_t>> FlatExpertIds(const RouterOutput& routed);

// One layer's routing from each rank's router output (index = rank), every one of them flat as
// above with the same k.
StatusOr<LayerRouting> ToLayerRouting(std::span<const RouterOutput> per_rank, uint32_t layer);

}  // namespace moesim::models
