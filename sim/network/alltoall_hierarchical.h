// The hierarchical all-to-all(v) for uneven traffic, a MoE layer's dispatch and combine among them,
// as DeepEP's internode kernels and Tutel's 2D all-to-all run it. GPU (a, i) is local index i of
// node a (rank a x G + i, G GPUs per node). A piece of data from (a, i) to (b, j) on another node
// travels on one rail r, in up to three phases:
//
//   1. NVLink   (a, i) -> (a, r)   to the GPU of the rail, inside the source node
//   2. network  (a, r) -> (b, r)   across nodes on that rail (the NIC of local index r)
//   3. NVLink   (b, r) -> (b, j)   to the destination, inside the destination node
//
// Pieces that stay in their node skip the network and go straight, in the first step. The rail:
//
//   Rail::kSource       r = i, DeepEP's internode dispatch: phase 1 is empty; each GPU sends over
//                       its own NIC to the GPU of the same local index on the destination node,
//                       which forwards over NVLink. What one GPU sends to one node crosses the
//                       network once, so a token routed to experts on several GPUs of a node can
//                       cross once and be copied on arrival (`node_bytes`, DeepEP's deduplication).
//                       Steps: 0 = in-node pieces and the network; 1 = the NVLink forward.
//   Rail::kDestination  r = j, Tutel's 2D all-to-all: phase 3 is empty; the node's GPUs first
//                       regroup over NVLink by destination local index, then each sends what its
//                       node has for rail r of every other node in one message. No deduplication
//                       (each destination GPU has its own rail). Steps: 0 = NVLink; 1 = network.
//
// One transfer per (sender, receiver, phase) carries every piece that takes that hop. A transfer
// waits for the transfers of the phase before that carry any of its pieces (Transfer::after), whole
// messages, not chunks: DeepEP pipelines chunks through the relay, so the flow model's time is an
// upper bound there; the analytical time (sim/network/collective_time.h) is a lower bound on the
// flow model's.
//
//   MOESIM_ASSIGN_OR_RETURN(Schedule dispatch,
//                           BuildHierarchicalAllToAllV(bytes, /*gpus_per_node=*/8, Rail::kSource));
//   Schedule combine = Reversed(dispatch);   // NVLink gather to the relay, then back across once
#pragma once

#include <cstdint>
#include <vector>

#include "models/dispatch.h"
#include "proto/status.h"
#include "sim/network/collectives.h"

namespace moesim::sim {

enum class Rail { kSource, kDestination };

// `bytes`: what each rank sends to each rank (copies: a token sent to two GPUs counts twice), rows
// and columns by rank. `node_bytes` (Rail::kSource only; empty: every copy crosses the network):
// node_bytes[rank][node] is what `rank` sends across to `node` once, to be copied there; no more
// than its copies to that node's GPUs, and not zero where those are not. Errors: no whole nodes
// (ranks not a positive multiple of gpus_per_node), `node_bytes` of the wrong shape or out of
// those bounds, or given with Rail::kDestination.
StatusOr<Schedule> BuildHierarchicalAllToAllV(const models::TrafficMatrix& bytes,
                                              uint32_t gpus_per_node, Rail rail,
                                              const models::TrafficMatrix& node_bytes = {});

// The same schedule run backwards: every transfer from its receiver to its sender, waiting for the
// transfers that waited for it; steps in reverse. A MoE combine is its
// dispatch reversed: in-node gather to the relay (where DeepEP reduces the copies), then one send
// back across per (rank, node).
Schedule Reversed(const Schedule& schedule);

}  // namespace moesim::sim
