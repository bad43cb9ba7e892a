// The expected MoE layer of a routing distribution, for plan search: instead of drawing every
// token's experts for each candidate plan (seconds at thousands of GPUs), each expert receives its
// share of the layer's selections, spread evenly over the EP ranks that send.
//
//   per expert e:  L_e = ScaleCounts(loads, ep x tokens_per_rank x top_k)[e]
//   each sender gets floor(L_e / ep) of them, and the L_e mod ep left over go one each to the
//   senders e, e+1, ... (mod ep), so no rank is favoured across experts.
//   dispatch[src][EP rank of e] += the sender's share; expert_tokens of e's rank = L_e.
//
// Conservation holds exactly (the matrix adds up to ep x tokens x top_k); rows differ by at most
// the number of experts. The hottest expert's rank still computes its whole L_e, so imbalance
// costs what it costs; what is lost is only the sampling noise of a finite batch.
//
//   LayerWork w = ExpectedLayer(loads, /*ep=*/8, /*tokens_per_rank=*/4096, /*top_k=*/2,
//                               ExpertPlacement::Contiguous(8, 8));
#pragma once

#include <cstdint>
#include <span>

#include "models/dispatch.h"
#include "models/placement.h"

namespace moesim::models {

// `loads`: relative selections per expert (any scale, sum > 0), one per expert of `placement`.
// An expert with replicas has each sender's share split evenly over them. `capacity` > 0: each
// sender's share of an expert is cut to it and the rest counted as dropped (ExpandLayer's rule).
LayerWork ExpectedLayer(std::span<const uint64_t> loads, uint32_t ep, uint64_t tokens_per_rank,
                        uint32_t top_k, const ExpertPlacement& placement, uint64_t capacity = 0);

// DeepEP's deduplicated dispatch needs what per-expert loads cannot say: how many of a rank's
// tokens reach each node (LayerWork::node_tokens). This sets w->node_tokens from `sample`, tokens'
// experts drawn from the same routing (top_k slots per token, token-major, kNotDispatched slots
// skipped): every sender gets
//
//   node_tokens(src, n) = round(tokens_per_rank x h_n / T),   h_n = sum over the T sampled tokens
//                         of P(the token has a copy on node n) = 1 - prod over its experts e of
//                         (1 - f_e(n)),
//
// f_e(n) the fraction of e's replicas on node n (1 or 0 without replicas, so h_n counts the
// tokens with an expert there; replicas are taken independently per expert, as ExpectedLayer
// splits a share evenly over them). Node n holds EP ranks n x gpus_per_node onwards. Each value is
// then kept within what w's dispatch allows: at most the sender's copies to the node's ranks, and
// at least 1 where it has any. Requires ep a multiple of gpus_per_node and w from ExpectedLayer.
//
//   4 experts on 4 ranks, 2 per node, top-2 tokens {0,1} {0,2} {2,3} {1,3}: node 0 (experts 0, 1)
//   is reached by 3 of the 4 tokens, node 1 likewise, so each rank of 100 tokens sends 75 to each.
void SetExpectedNodeTokens(std::span<const uint32_t> sample, uint32_t top_k, uint32_t gpus_per_node,
                           uint64_t tokens_per_rank, const ExpertPlacement& placement,
                           LayerWork* w);

// The same for the per-rank deduplicated dispatch (LayerWork::rank_tokens): how many of a rank's
// tokens reach each EP rank, by the formula above with one GPU per "node",
//
//   rank_tokens(src, r) = round(tokens_per_rank x h_r / T),   h_r = sum over the T sampled tokens
//                         of 1 - prod over its experts e of (1 - f_e(r)),
//
// f_e(r) the fraction of e's replicas on rank r, kept within 1 and the sender's copies to r.
//
//   4 experts on 2 ranks, 2 per rank, top-2 tokens {0,1} {0,2} {2,3} {1,3}: rank 0 (experts 0, 1)
//   is reached by 3 of the 4 tokens, rank 1 likewise. With uniform loads each rank of 100 tokens
//   sends 100 copies to each rank (50 per expert) but 75 distinct tokens (100 x 3 / 4).
void SetExpectedRankTokens(std::span<const uint32_t> sample, uint32_t top_k,
                           uint64_t tokens_per_rank, const ExpertPlacement& placement,
                           LayerWork* w);

}  // namespace moesim::models
