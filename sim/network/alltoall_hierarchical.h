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
// Whole messages (chunk_bytes 0): one transfer per (sender, receiver, phase) carries every piece
// that takes that hop, and waits for the transfers of the phase before that carry any of its
// pieces (Transfer::after): the relay forwards a message once all of it has arrived.
//
// Chunks (chunk_bytes > 0, Rail::kSource only: DeepEP's internode normal kernels, whose relay
// forwards what has arrived while the rest crosses). Each sender's message to a node crosses as
// C = ceil(M / chunk_bytes) transfers of chunk_bytes (the last one the remainder), back to back:
// chunk k + 1 starts when chunk k's last byte has left (Transfer::after_sent), so the C chunks take
// the NIC as long as the whole message. Chunk k covers bytes [k c, min((k + 1) c, M)) of the
// message, and with it the same part of every copy it brings for a GPU of the node:
// floor(F end / M) - floor(F start / M) of the F bytes for that GPU (the parts add up to F). The
// relay forwards, per destination GPU, chunk k of every sender that has one, once those chunks
// have arrived (after), and after its forward of chunk k - 1 has left (after_sent). With C chunks
// of a lone message the last byte arrives after the whole crossing plus one chunk's forward,
// instead of the whole forward:
//
//   whole:    RDMA M / B_net  + route  ->  NVLink M / B_nvl + route
//   chunked:  RDMA M / B_net  + route  ->  NVLink (M / C) / B_nvl + route   (the other chunks'
//             forwards ran while later chunks crossed)
//
// The analytical time (sim/network/alltoall_cost.h ScheduleCosts) lays every transfer on its
// links at once, the relay forwarding as bytes arrive, so it is the same for both; the flow model
// forwards whole messages or chunks, and is never below it. The collective bound
// (sim/network/collective_time.h) does not wait on after_sent (a chunk need not follow the one
// before it), so it stays a lower bound on the flow model's time.
//
//   MOESIM_ASSIGN_OR_RETURN(Schedule dispatch,
//                           BuildHierarchicalAllToAllV(bytes, /*gpus_per_node=*/8, Rail::kSource));
//   Schedule combine = Reversed(dispatch);   // NVLink gather to the relay, then back across once
//   // DeepEP's normal kernels: chunks of 80 tokens of 7,168 B
//   BuildHierarchicalAllToAllV(bytes, 8, Rail::kSource, node_bytes, 80 * 7168);
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
// than its copies to that node's GPUs, and not zero where those are not. `chunk_bytes`: 0 for
// whole messages, else the chunk above (Rail::kSource only). Errors: no whole nodes (ranks not a
// positive multiple of gpus_per_node), `node_bytes` of the wrong shape or out of those bounds, or
// given with Rail::kDestination, chunks with Rail::kDestination.
StatusOr<Schedule> BuildHierarchicalAllToAllV(const models::TrafficMatrix& bytes,
                                              uint32_t gpus_per_node, Rail rail,
                                              const models::TrafficMatrix& node_bytes = {},
                                              uint64_t chunk_bytes = 0);

// The same schedule run backwards: every transfer from its receiver to its sender, waiting for the
// transfers that waited for it (after) and streaming after those that streamed after it
// (after_sent); steps in reverse. A MoE combine is its dispatch reversed:
// in-node gather to the relay (where DeepEP reduces the copies), then one send back across per
// (rank, node); chunked, the relay gathers chunk k, then sends it back while gathering the next
// (the chunks in reverse order).
Schedule Reversed(const Schedule& schedule);

}  // namespace moesim::sim
