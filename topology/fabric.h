// The network between nodes: switches and links added to the cluster graph around the nodes' NICs.
//
//   single_switch    every NIC on one switch
//   rail_optimized   NIC r of each node in a group on rail switch (group, r); rail switches on
//   spines fat_tree         2 tiers: nodes on leaves, leaves on every spine;
//                    3 tiers: leaves on every aggregation switch of their pod, aggregation on every
//                    core
//   torus            one router per node (its NICs feed it), routers on a 2D/3D wrap-around grid
//
// Uplink bandwidth follows the oversubscription ratio: a switch's uplinks together carry its
// downlinks' bandwidth divided by the ratio, split evenly over its uplinks. Each network switch
// gets a tier (1 = the switch NICs plug into).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proto/cluster.pb.h"
#include "proto/status.h"
#include "proto/text_file.h"
#include "topology/graph.h"

namespace moesim::topology {

struct FabricInputs {
  uint32_t nodes = 0;
  // nics[node][r]: the NIC vertices of each node, in NIC order (r = rail).
  std::vector<std::vector<Vertex>> nics;
  Rate nic_bandwidth;    // per NIC per direction
  Duration nic_latency;  // NIC <-> first switch
};

// Adds the fabric `spec` describes. Errors (sizes that do not divide the nodes, a ratio below 1...)
// are located under `field` in `file`.
Status AddFabric(Graph& graph, const pb::Fabric& spec, const FabricInputs& in, const TextFile* file,
                 const std::string& field);

}  // namespace moesim::topology
