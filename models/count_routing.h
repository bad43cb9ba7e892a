// Routing drawn as counts (a synthetic routing's `routing_version: 2`): each rank draws only how
// many of its tokens x top_k selections go to each expert, and the layer's per-rank work is
// expanded from those counts. No token's experts are drawn, so loading 16,384 GPUs of 4,096 tokens
// costs 4 million count draws instead of 537 million expert choices.
//
//   const std::vector<double> pi = ...;   // P(expert e among a token's k), sum = k
//   LayerCounts c = DrawLayerCounts(shape, pi, /*seed=*/1, /*layer=*/0);
//   c.sample = ...;                        // tokens drawn one by one, for distinct tokens
//   LayerWork w = ExpandCounts(c, plan, placement, /*capacity_factor=*/0);
//
// The draw. Rank r's count of expert e starts as a Binomial(T, pi_e) draw (T tokens, k = top_k),
// pi_e the probability that the per-token draw (models/synthetic.h) puts e among a token's
// experts: exactly the per-token draw's count of e, taken alone. The counts must add up to T k, as
// a token has k experts; the difference D (about sqrt(T k) either way) is then added or taken a
// selection at a time, each at an expert drawn in proportion to its variance T pi_e (1 - pi_e),
// never past T or below 0. D has mean 0, so each count keeps its mean T pi_e; its variance is about
// T pi_e (1 - pi_e) (1 - v_e / V), v_e that variance and V their sum (the binomials conditioned on
// their sum, as the per-token draw's counts are). An expert with pi_e = 1 gets exactly T, one with
// pi_e = 0 none.
//
// Binomials use only IEEE-rounded + - * / and sqrt (no libm transcendental), so a seed gives the
// same counts on every machine: below a mean of 16 by inversion (the probabilities by their
// recurrence from (1 - p)^n), above it the nearest integer to a normal draw (an Irwin-Hall sum of
// 12 uniforms), which differs from the binomial by less than its skew.
//
// Streams: rank r of layer l draws from its own stream of (seed, layer, rank), so the counts do not
// depend on the number of threads or on the other ranks.
//
// The expansion (ExpandCounts) is ExpandLayer's (models/dispatch.h) on counts: the same replica
// choice for each copy, the same capacity (the copies past it dropped), the same rows. Distinct
// tokens per destination (node_tokens, rank_tokens), which counts cannot say, are expected values
// from a sample of tokens drawn one by one from the same distribution, as plan search estimates
// them (models/expected_layer.h, SetExpectedNodeTokens): sender s with T tokens reaches
// destination d with
//
//   distinct(s, d) = round(T h_d / N),   h_d = sum over the N sampled tokens of
//                    1 - prod over its experts e of (1 - f_e(d)),
//
// f_e(d) the fraction of e's replicas at d (a rank, or a node of s's EP group), kept within 1 and
// the copies s sends there.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "models/dispatch.h"
#include "models/placement.h"
#include "models/plan.h"
#include "models/rng.h"
#include "models/routing.h"

namespace moesim::models {

// One layer's counts: counts[rank][e] selections of expert e by rank's tokens; each rank's add up
// to tokens_per_rank x top_k, none above tokens_per_rank.
struct LayerCounts {
  uint32_t layer = 0;
  uint32_t top_k = 0;
  uint64_t tokens_per_rank = 0;
  std::vector<std::vector<uint64_t>> counts;
  // Tokens drawn one by one from the same distribution, top_k expert ids each, token-major: what
  // ExpandCounts estimates distinct tokens from (none: 1 wherever copies go).
  std::vector<uint32_t> sample = {};
};

// A Binomial(n, p) draw from `rng` (p outside (0, 1) gives 0 or n), as the header says.
uint64_t DrawBinomial(Rng& rng, uint64_t n, double p);

// One rank's counts over the experts: `inclusion[e]` = pi_e in [0, 1], summing to `top_k` (the
// counts then add up to tokens x top_k).
std::vector<uint64_t> DrawRankCounts(Rng& rng, std::span<const double> inclusion, uint64_t tokens,
                                     uint32_t top_k);

// Every rank's counts of layer `layer`, over the machine's cores (models/parallel.h).
LayerCounts DrawLayerCounts(const RoutingShape& shape, std::span<const double> inclusion,
                            uint64_t seed, uint32_t layer);

// Each expert's selections over all ranks, added to loads[counts.layer] (for EPLB), as
// AddRoutingLoads does for per-token routing.
void AddCountLoads(const LayerCounts& counts, std::vector<std::vector<uint64_t>>* loads);

// The per-rank work of `counts` (ExpandLayer's on counts; see the header).
LayerWork ExpandCounts(const LayerCounts& counts, const Plan& plan,
                       const ExpertPlacement& placement, double capacity_factor = 0);

}  // namespace moesim::models
