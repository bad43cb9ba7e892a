// What moesim understood of a cluster, in the numbers people check first: devices per kind, links
// per class, per-GPU bandwidth inside and out of the node, bisection bandwidth, diameter.
//
//   pb::TopologySummary s = Summarize(cluster);
//   s.bisection_gbps();   // 1800 for one DGX H100: 4 GPUs x 450 GB/s across the NVSwitch
//
// Bisection: the maximum flow (Boost.Graph push-relabel) from the first half of the GPUs (by index)
// to the second, one direction. With GPUs numbered node by node and nodes filling leaves / rails /
// torus dimensions in order, that is the cut between the two halves of the cluster. Diameter: over
// every GPU pair up to 2,048 GPUs; beyond, from node 0's GPUs to every GPU (exact for the
// vertex-symmetric fabrics moesim builds).
#pragma once

#include "proto/cluster.pb.h"
#include "topology/cluster.h"

namespace moesim::topology {

pb::TopologySummary Summarize(const Cluster& cluster);

// Maximum flow from the GPUs in [0, half) to the GPUs in [half, total), bytes per second.
Rate MaxFlowBetweenHalves(const Cluster& cluster, uint32_t half);

// Graphviz DOT of the whole graph: one node per device, one edge per duplex link, labelled with its
// class and bandwidth; devices grouped per cluster node.
std::string ToDot(const Cluster& cluster);

}  // namespace moesim::topology
