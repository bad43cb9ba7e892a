// Collectives over one group of GPUs (a TP, DP, EP or pipeline group of a plan), asked of a
// NetworkModel (sim/network/network_model.h), so that one choice of fidelity serves the whole run.
// A schedule is built for ranks 0..n-1 (sim/network/collectives.h) and its ranks are mapped onto
// the group's GPUs, so a DP ring over GPUs {0, 8, 16, 24} crosses the network and a TP group
// inside one node stays on NVLink.
//
//   net.GroupCollective({0, 8, 16, 24}, CollectiveOp::kAllReduce, CollectiveAlgo::kRing, 1 << 30);
//   GroupAllToAllV(net, plan.EpGroup(0), dispatch_bytes).time;
//
// MoE dispatch and combine go through the same path as an all-to-allv (Megatron-Core's all-to-all
// token dispatcher calls NCCL), so every collective of a step is timed alike.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/dispatch.h"
#include "proto/units.h"
#include "sim/network/collectives.h"
#include "sim/network/network_model.h"
#include "topology/cluster.h"

namespace moesim::sim {

// An all-to-allv over `gpus`: bytes.at(i, j) from gpus[i] to gpus[j] (the diagonal stays local).
GroupCommTime GroupAllToAllV(const NetworkModel& net, const std::vector<uint32_t>& gpus,
                             const models::TrafficMatrix& bytes);

// The same all-to-allv as DeepEP's internode dispatch runs it (sim/network/alltoall_hierarchical.h,
// Rail::kSource: once across the network per destination node, then NVLink), or, with
// `reversed`, its combine. The group must span several nodes with the same number G of its GPUs
// on each, listed node by node: index a * G + i is the group's i-th GPU on its a-th node. Else
// nullopt (nothing to relay, or no rails to relay on), and the caller keeps the direct exchange.
// `node_bytes` (optional, as there): node_bytes.at(i, a), what gpus[i] sends to node a once.
std::optional<GroupCommTime> GroupHierarchicalAllToAllV(const NetworkModel& net,
                                                        const std::vector<uint32_t>& gpus,
                                                        const models::TrafficMatrix& bytes,
                                                        const models::TrafficMatrix& node_bytes,
                                                        bool reversed);
// DeepEP's internode normal kernels over `gpus` (alltoall_algo "deepep_normal"): the relay above
// in chunks of `chunk_bytes` (sim/network/alltoall_hierarchical.h), timed as DeepEP's own kernels,
// not NCCL's: NetworkModel::RelayedAllToAll (the analytical model with every transfer on its links
// at once, or the flow model), no NCCL latency model; the slowest GPU's time. nullopt where the
// relay does not apply, as above.
std::optional<GroupCommTime> GroupDeepEpAllToAllV(const NetworkModel& net,
                                                  const std::vector<uint32_t>& gpus,
                                                  const models::TrafficMatrix& bytes,
                                                  const models::TrafficMatrix& node_bytes,
                                                  uint64_t chunk_bytes, bool reversed);
// The slowest GPU of an all-to-all and its busiest link.
GroupCommTime Slowest(const AllToAll& alltoall);
// G for `gpus` as GroupHierarchicalAllToAllV needs it, or 0 where it does not apply.
uint32_t GroupGpusPerNode(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus);
// Whether the relay can deduplicate by node for `gpus`: it applies (above) and the group fills
// whole nodes (G = the cluster's GPUs per node), so a token's nodes as a routing counts them
// (models::LayerWork::node_tokens, node = rank / GPUs per node) are the group's.
bool GroupFillsNodes(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus);

}  // namespace moesim::sim
