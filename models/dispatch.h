// Expanding one layer's routing into per-rank work: which tokens each rank sends to each other rank
// (the dispatch all-to-all; combine sends them back, the transpose), and how many tokens each local
// expert then processes (the grouped-GEMM shapes). Both executors call this, so they agree.
//
// Counting rule (Megatron-Core's all-to-all dispatcher): a token is sent once per selected expert,
// so a token whose two experts live on the same rank is sent twice. A token whose expert is on its
// own rank stays: it is counted on the diagonal and crosses no link. An expert with several
// replicas receives each token at one of them, by the rule in models/placement.h. The same copies
// are also counted as distinct tokens per destination rank (rank_tokens, what DeepEP's intranode
// dispatch sends) and per destination node (node_tokens, what its internode dispatch sends across).
//
//   LayerWork w = ExpandLayer(routing, plan, placement);
//   w.dispatch_tokens.at(0, 1);    // token copies rank 0 sends to rank 1
//   w.rank_tokens.at(0, 1);        // distinct tokens among them
//   w.expert_tokens[1][0];         // tokens rank 1's first local expert processes
#pragma once

#include <cstdint>
#include <vector>

#include "models/plan.h"
#include "models/routing.h"
#include "models/traffic_matrix.h"

namespace moesim::models {

struct LayerWork {
  uint32_t layer = 0;
  // Tokens per (source, destination) in dispatch; combine is dispatch_tokens.Transposed().
  TrafficMatrix dispatch_tokens;
  // expert_tokens[rank][i]: tokens the i-th local expert (slot i of the placement's layer) of
  // `rank` processes; one entry per slot of the rank's EP rank, so ranks may differ in length.
  std::vector<std::vector<uint64_t>> expert_tokens;
  // Tokens each rank holds before dispatch (routed by its router).
  std::vector<uint64_t> tokens_in;
  // Token copies each rank dropped because an expert was over capacity (0 without a capacity).
  std::vector<uint64_t> dropped;
  // node_tokens.at(rank, node): distinct tokens of `rank` with at least one copy sent to a rank of
  // `node` (node = rank / gpus per node), its own node included; columns are nodes, so only the
  // first ceil(ranks / gpus per node) are used. A token with experts on two GPUs of one node
  // counts once: what crosses the network once under DeepEP's deduplicated dispatch
  // (sim/network/alltoall_hierarchical.h). Empty (0 ranks) when the nodes are unknown (a placement
  // without gpus_per_node, or an expected layer that SetExpectedNodeTokens has not filled, in
  // models/expected_layer.h): every copy then crosses.
  TrafficMatrix node_tokens;
  // rank_tokens.at(src, dst): distinct tokens of `src` with at least one copy sent to `dst`, the
  // diagonal included (tokens with an expert on their own rank); at most dispatch_tokens.at(src,
  // dst), and not zero where that is not. A token with two experts on one GPU counts once: what
  // crosses once to that GPU under the per-rank deduplicated dispatch (workload.alltoall_algo
  // "per_rank", DeepEP's intranode kernels), whose combine sends the GPU's reduced output back
  // once (the transpose). Empty (0 ranks) for an expected layer that SetExpectedRankTokens has not
  // filled (models/expected_layer.h): every copy then crosses.
  TrafficMatrix rank_tokens;

  uint64_t TotalDropped() const;
};

// `capacity` > 0: a sender sends at most that many token copies to each expert (Megatron-Core's
// expert capacity, computed per rank from its own tokens, with the "position" drop policy: the
// later tokens in the rank's order are the ones dropped); the rest are dropped, not sent and not
// computed. 0: no limit.
LayerWork ExpandLayer(const LayerRouting& routing, const Plan& plan,
                      const ExpertPlacement& placement, uint64_t capacity = 0);

// Megatron-Core's capacity for `tokens` tokens of one rank: ceil(tokens x top_k / experts x
// factor). 0 when factor <= 0 (no dropping).
uint64_t ExpertCapacity(uint64_t tokens, uint32_t top_k, uint32_t experts, double factor);

}  // namespace moesim::models
