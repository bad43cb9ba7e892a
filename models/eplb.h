// DeepSeek's Expert Parallelism Load Balancer (EPLB), ported from the reference implementation
// github.com/deepseek-ai/EPLB, eplb.py (rebalance_experts and its helpers), function by function.
//
// Given each layer's measured load per logical expert, EPLB chooses num_replicas physical experts
// (every logical expert once, the hottest ones again) and packs them onto GPUs, num_replicas/gpus
// per GPU, so that the heaviest GPU carries as little as it can (a greedy heuristic, not optimal):
// - hierarchical policy, when the nodes divide the expert groups: pack the groups onto nodes
//   (balanced_packing), replicate the hottest experts inside each node (replicate_experts), then
//   pack each node's replicas onto its GPUs (balanced_packing). Replicas never leave their node,
//   which suits DeepSeek-V3's group-limited routing;
// - global policy otherwise: the same with one group and one node.
//
//   // The example of EPLB's README: 2 layers, 12 experts, 16 replicas, 4 groups, 2 nodes, 8 GPUs.
//   EplbResult r = RebalanceExperts({{90, 132, 40, ...}, {20, 107, ...}}, 16, 4, 2, 8);
//   r.phy2log[0];   // {5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1}
//                   // GPU g holds slots 2g and 2g + 1
//
// Arithmetic and ties, as the reference does them (the reference runs on CPU, in float32):
// - loads are float32, and so are group sums, per-replica loads (load / replica count) and the
//   running pack sums, each computed in the reference's order, except the group sums (torch may
//   add a group in another order): exact, and so identical, while loads are integers whose group
//   sums stay below 2^24; beyond, a group sum may round differently and decide a near-tie;
// - items are packed heaviest first; equal loads keep their index order (a stable sort). The
//   reference calls torch.sort, which is not documented stable, so a torch build could order ties
//   differently and pack them elsewhere. The README example has such a tie (layer 1: expert 9 and
//   both replicas of expert 8 carry 86 each on node 0) and is reproduced exactly;
// - a pack is chosen as the lightest with room, the lowest index among equals (Python's min);
// - the expert to replicate next is the one with the highest load per replica, the lowest index
//   among equals (torch.max(dim) returns the first maximum).
//
// Plain functions; no state, safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proto/status.h"

namespace moesim::models {

// Loads, index [layer][expert] (or [row][item]), in float32 as the reference computes them.
using LoadMatrix = std::vector<std::vector<float>>;
using IndexMatrix = std::vector<std::vector<uint32_t>>;

// balanced_packing: items of each row into num_packs packs of exactly n/num_packs items each,
// heaviest item first into the lightest pack with room. pack_index[row][item],
// rank_in_pack[row][item] (the item's position in its pack, in packing order). Requires num_packs
// to divide n.
struct Packing {
  IndexMatrix pack_index;
  IndexMatrix rank_in_pack;
};
Packing BalancedPacking(const LoadMatrix& weight, uint32_t num_packs);

// replicate_experts: num_phy physical experts from each row's num_log logical ones, adding one
// replica at a time to the expert of highest load per replica. phy2log[row][p] (the first num_log
// are the logical experts themselves), rank[row][p] (which replica of its expert p is, from 0),
// logcnt[row][e] (replicas of e). Requires num_phy >= num_log.
struct Replication {
  IndexMatrix phy2log;
  IndexMatrix rank;
  IndexMatrix logcnt;
};
Replication ReplicateExperts(const LoadMatrix& weight, uint32_t num_phy);

struct EplbResult {
  // phy2log[layer][p]: the logical expert in physical slot p; GPU g holds slots
  // [g * num_replicas/num_gpus, (g+1) * num_replicas/num_gpus).
  IndexMatrix phy2log;
  // log2phy[layer][e]: the physical slots holding expert e, by replica rank (the reference pads
  // this to the largest count with -1; here each list has exactly logcnt[layer][e] entries).
  std::vector<std::vector<std::vector<uint32_t>>> log2phy;
  IndexMatrix logcnt;
  bool hierarchical = false;  // which policy rebalance_experts chose
};

// rebalance_experts_hierarchical with the reference's sizes (its asserts become Errors below).
EplbResult RebalanceExpertsHierarchical(const LoadMatrix& weight, uint32_t num_physical_experts,
                                        uint32_t num_groups, uint32_t num_nodes, uint32_t num_gpus);

// rebalance_experts: hierarchical when num_nodes divides num_groups, global otherwise. Checks
// what the reference asserts: every layer has the same experts, num_replicas >= experts and a
// multiple of num_gpus, num_nodes divides num_gpus, and (hierarchical) num_groups divides the
// experts. Errors name the parameter and what is valid.
StatusOr<EplbResult> RebalanceExperts(const LoadMatrix& weight, uint32_t num_replicas,
                                      uint32_t num_groups, uint32_t num_nodes, uint32_t num_gpus);

}  // namespace moesim::models
