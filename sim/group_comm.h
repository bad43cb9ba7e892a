// Collectives over one group of GPUs (a TP, DP, EP or pipeline group of a plan), timed at either
// fidelity. A schedule is built for ranks 0..n-1 (sim/collectives.h) and its ranks are mapped onto
// the group's GPUs, so a DP ring over GPUs {0, 8, 16, 24} crosses the network and a TP group inside
// one node stays on NVLink.
//
//   GroupCollective(cluster, {0, 8, 16, 24}, CollectiveOp::kAllReduce, CollectiveAlgo::kRing,
//                   /*size=*/1 << 30, Fidelity::kAnalytical).time;
//
// The analytical time is TimeCollective's (NCCL's latency model and protocol choice, the busiest
// link per step); the flow time runs the same schedule on the flow model with the protocol NCCL's
// tuner chose. MoE dispatch and combine go through the same path as an all-to-allv (Megatron-Core's
// all-to-all token dispatcher calls NCCL), so every collective of a step is timed alike.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/dispatch.h"
#include "proto/units.h"
#include "sim/collectives.h"
#include "sim/moe_layer.h"
#include "topology/cluster.h"

namespace moesim::sim {

struct GroupCommTime {
  Duration time;
  std::string bottleneck_link;  // empty when nothing crossed a link
};

// A group of one GPU, or size 0, costs nothing. `gpus` must be distinct GPUs of `cluster`.
GroupCommTime GroupCollective(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus,
                              CollectiveOp op, CollectiveAlgo algo, uint64_t size,
                              Fidelity fidelity);

// An all-to-allv over `gpus`: bytes.at(i, j) from gpus[i] to gpus[j] (the diagonal stays local).
GroupCommTime GroupAllToAllV(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus,
                             const models::TrafficMatrix& bytes, Fidelity fidelity);

// The same all-to-allv as DeepEP's internode dispatch runs it (sim/alltoall_hierarchical.h,
// Rail::kSource: once across the network per destination node, then NVLink), or, with
// `reversed`, its combine. The group must span several nodes with the same number G of its GPUs
// on each, listed node by node: index a * G + i is the group's i-th GPU on its a-th node. Else
// nullopt (nothing to relay, or no rails to relay on), and the caller keeps the direct exchange.
// `node_bytes` (optional, as there): node_bytes.at(i, a), what gpus[i] sends to node a once.
std::optional<GroupCommTime> GroupHierarchicalAllToAllV(const topology::Cluster& cluster,
                                                        const std::vector<uint32_t>& gpus,
                                                        const models::TrafficMatrix& bytes,
                                                        const models::TrafficMatrix& node_bytes,
                                                        bool reversed, Fidelity fidelity);
// G for `gpus` as GroupHierarchicalAllToAllV needs it, or 0 where it does not apply.
uint32_t GroupGpusPerNode(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus);
// Whether the relay can deduplicate by node for `gpus`: it applies (above) and the group fills
// whole nodes (G = the cluster's GPUs per node), so a token's nodes as a routing counts them
// (models::LayerWork::node_tokens, node = rank / GPUs per node) are the group's.
bool GroupFillsNodes(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus);

}  // namespace moesim::sim
