// An all-to-all's cost per rank on a cluster, from its traffic (sim/moe/moe_layer.h times a MoE
// layer's dispatch and combine with these): the analytical model (bytes laid on every route's
// links, each link drained at its bandwidth) or the flow model (sim/network/flow_model.h), for a
// direct all-to-all(v) of a traffic matrix or for a schedule with relays
// (sim/network/alltoall_hierarchical.h).
//
//   AllToAll a = AllToAllCosts(cluster, layer.dispatch_tokens, token_bytes);
//   a.ranks[r].time;  a.bottleneck_link;  a.busiest;
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "models/traffic_matrix.h"
#include "proto/units.h"
#include "sim/network/collectives.h"
#include "sim/network/flow_model.h"
#include "topology/cluster.h"

namespace moesim::sim {

// One rank's share of a phase.
struct RankCost {
  Duration time;
  Bytes bytes;
  uint64_t flops = 0;
  const char* bound = "none";
};

// An all-to-all, per rank. Every pair's bytes are laid on the links of its route (split as the
// route splits them); each link takes its load over its bandwidth. A rank finishes when the busiest
// link any of its transfers (sent or received) crosses is drained, plus the longest latency of
// those routes. On one NVSwitch this is the larger of a GPU's sent and received bytes over its
// NVLink bandwidth.
struct AllToAll {
  std::vector<RankCost> ranks;
  std::string bottleneck_link;                // empty when nothing crosses a link
  std::map<std::string, double> class_bytes;  // link class -> bytes over links of that class
  std::vector<std::pair<topology::Edge, double>> busiest;  // (link, bytes), most loaded first
};

// The analytical model of the direct all-to-all(v) of `tokens` (token_bytes each).
AllToAll AllToAllCosts(const topology::Cluster& cluster, const models::TrafficMatrix& tokens,
                       Bytes token_bytes);
// The same all-to-all on the flow model: each rank's time is when the last flow it sends or
// receives is done.
AllToAll AllToAllFlows(const topology::Cluster& cluster, const models::TrafficMatrix& tokens,
                       Bytes token_bytes, FlowOptions options = {});
// A schedule with relays (the hierarchical all-to-all) at the analytical fidelity; see the .cc.
AllToAll ScheduleCosts(const topology::Cluster& cluster, const Schedule& schedule);
// The same schedule on the flow model.
AllToAll ScheduleFlows(const topology::Cluster& cluster, const Schedule& schedule,
                       FlowOptions options = {});

}  // namespace moesim::sim
