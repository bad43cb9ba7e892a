// Which links become constraints of the flow model's max-min problem (sim/network/flow_model.h):
// the network model's half of turning routes into a sharing problem, before any flow starts. Every
// link a schedule's routes cross limits the rates of the flows on it, but two kinds of link need no
// constraint of their own, and leaving them out gives exactly the same max-min rates (the feasible
// rates are the same, and the max-min fair point of a feasible set is unique) for less solver work:
//
//   grouped  links that carry exactly the same transfers with the same shares (the 4 NVSwitch
//            planes a GPU stripes over, the spine uplinks of a leaf under ECMP, the PCIe link, NIC
//            and switch port that carry one GPU's traffic out of its node) are one constraint but
//            for capacity: only the narrowest of each such group becomes a resource.
//   implied  a link r whose every transfer also crosses some kept link, when those links cannot
//            carry more than r can (below). On a non-blocking rail-optimized fabric the leaf
//            uplinks and downlinks are implied by the NICs: a flow across nodes then has 2
//            constraints instead of 4 (results/flow_bench.md).
//
// IMPLIED, THE MATHS. Constraint r is sum_v a_rv x_v <= c_r (a_rv the share of flow v on r). Give
// each transfer v on r a kept link q(v) of its route, and let M_q be the largest a_rv / a_qv over
// the transfers given q. Then, since every rate is >= 0 and each q's own constraint holds,
//
//     sum_v a_rv x_v  =  sum_q sum_{v: q(v)=q} (a_rv / a_qv) a_qv x_v  <=  sum_q M_q c_q,
//
// so when sum_q M_q c_q <= c_r, r can never be exceeded while the others hold: it is redundant.
// Two choices of q(v) are tried, each transfer's first other link on its route (the sender's side)
// and its last (the receiver's side). Example: a leaf of 32 NICs at 50 GB/s with 32 uplinks of
// 50 GB/s, every flow on one uplink with share 1/32: an uplink's constraint is sum x_v / 32 <= 50
// GB/s, and the 32 sending NICs give sum_q M_q c_q = 32 x (1/32) x 50 = 50 GB/s <= 50: implied. At
// 2:1 oversubscription (25 GB/s uplinks) the same sum is 50 > 25: kept. The comparison allows a
// relative 1e-12 for rounding in the sum; a link kept out on that margin could be exceeded by at
// most that fraction, far below the solver's own rounding (maxmin.h holds rates to 1e-9). A link
// that is part of another's cover is never itself left out (links are decided in id order), so
// every transfer keeps at least one constraint.
//
//   const FlowLinks links = PlanFlowLinks(cluster, schedule);
//   links.resource[edge_id];   // the edge whose capacity stands for it, or kNotConstrained
//   links.uses[links.use_first[t]];   // transfer t's first constraint: (edge, share)
//
// Routes are walked here, before any flow starts, twice per transfer (grouping needs every
// transfer first); the links of a switch-fabric leg, dozens under ECMP, are walked once per leg.
// Deterministic: decided from the schedule's transfers in order, with no hashing of addresses.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "sim/network/collectives.h"
#include "topology/cluster.h"

namespace moesim::sim {

struct FlowLinks {
  static constexpr uint32_t kNotConstrained = UINT32_MAX;
  // Per edge id: the edge (of its group, the narrowest; lowest id among equals) whose capacity
  // becomes the solver resource for it; kNotConstrained when no transfer crosses it or its
  // constraint is implied.
  std::vector<uint32_t> resource;
  // Per transfer t, its constraints as (edge standing for each, share):
  // uses[use_first[t], use_first[t + 1]), by edge id. None for a transfer of no bytes.
  std::vector<uint32_t> use_first;
  std::vector<std::pair<uint32_t, double>> uses;
  // Per edge id: the bytes all the schedule's transfers put on it (shares of their bytes).
  std::vector<double> link_bytes;
  uint32_t constraints = 0;  // edges that stand for themselves (resources the solver may get)
  uint32_t grouped = 0;      // edges folded into another edge's constraint
  uint32_t implied = 0;      // constraints left out as implied by others
};

FlowLinks PlanFlowLinks(const topology::Cluster& cluster, const Schedule& schedule);

}  // namespace moesim::sim
