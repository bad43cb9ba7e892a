// Collective algorithms as schedules of point-to-point transfers with dependencies. Both fidelities
// run the same schedule, transfer by transfer: the analytical model bounds it (the least time its
// links and dependencies allow), the flow model runs it as flows.
//
//   MOESIM_ASSIGN_OR_RETURN(Schedule s, BuildCollective(CollectiveOp::kAllReduce,
//                                                       CollectiveAlgo::kRing, 8, 1 << 20, 8));
//   s.transfers.size();   // 2 (n-1) steps x n ranks = 112
//
// Sizes follow nccl-tests, so predicted tables lay beside measured ones:
//   alltoall       size = what each rank sends in all; size / n to every rank (itself included)
//   allreduce      size = the buffer every rank reduces
//   allgather      size = the output buffer; each rank contributes size / n
//   reducescatter  size = the input buffer; each rank keeps size / n
//   sendrecv       size = what each rank sends to the next (rank i to i + 1, a ring shift)
// busbw = algbw x factor: alltoall, allgather, reducescatter (n-1)/n; allreduce 2(n-1)/n;
// sendrecv 1.
//
// Algorithms (a user names them with --algo or in a scenario):
//   direct        every pair at once (NCCL's grouped send/recv)                 alltoall
//   pairwise      n-1 rounds, round k: i -> i+k, one round after another          alltoall
//   hierarchical  uniform: Tutel's 2D, over NVLink to the GPU with the           alltoall
//                 destination's local index, then across nodes on that rail;
//                 all-to-allv: DeepEP's, across nodes to the GPU with the
//                 sender's local index, then over NVLink to the destination, what
//                 a rank sends to a node crossing once (sim/network/alltoall_hierarchical.h)
//   ring          n-1 (allgather, reducescatter) or 2(n-1) (allreduce) steps of   allreduce,
//   allgather,
//                 size/n to the next rank                                         reducescatter
//   tree          NCCL's tree: in each node a chain to a head GPU, across        allreduce
//                 nodes a binary tree of the heads (its mirror on odd
//                 channels: NCCL's double binary tree); reduced up, broadcast
//                 down, pipelined in chunks, one channel per GPU of a node
//   nvls          NVLink SHARP in one node: the NVSwitch reduces (multimem        allreduce
//                 ld_reduce) and multicasts (multimem st). Each GPU's link
//                 carries S (n+1)/n each way: S out and S/n back for the
//                 reduce-scatter, S/n out and S back for the all-gather. Listed
//                 as every pair exchanging S (n+1) / (n (n-1)), which loads
//                 each GPU's NVSwitch link exactly so.
//                 Across nodes (NCCL runs it there only with CollNet: switches
//                 that reduce, cluster.fabric.sharp), whole blocks of G >= 2
//                 GPUs a node: in chunks, each node's NVSwitch reduces a chunk
//                 (that NVLS load, / nvls_efficiency), GPU l sends the node's
//                 l-th 1/G into the network and gets the job's sum back through
//                 its NIC (listed as collnet's legs), S/G each way per NIC.
//                 All-gather: each rank multicasts its S/n to the n GPUs,         allgather,
//                 itself included (multimem st): S into every GPU, S/n out.       reducescatter
//                 Reduce-scatter: each rank reduces its S/n from the n GPUs
//                 (multimem ld_reduce): S out of every GPU, S/n in. Listed as
//                 every pair exchanging S / (n-1): S on each GPU's link in its
//                 busier direction (NCCL's tuner: busBw x (n-1)/n, tuning.cc).
//   nvlstree      NCCL's NVLS_TREE, whole nodes of G GPUs on several nodes:       allreduce
//                 in chunks, each node's NVSwitch reduces a chunk (the nvls
//                 load, / nvls_efficiency: the share of NVLink the switch
//                 reaches), GPU l of every node holds the l-th 1/G of it, and
//                 the nodes' GPUs l reduce it up a binary tree over nodes and
//                 broadcast it down, over their own NICs (NCCL: a double
//                 binary tree; one tree here). NIC load S/G each way per leaf.
//   collnet       NCCL's CollNet Direct, on InfiniBand switches that reduce        allreduce
//                 (SHARP; cluster.fabric.sharp), N nodes of G GPUs each (G
//                 from 1 to 8, NCCL's limit): in chunks, each GPU sends a
//                 node's GPU l the l-th 1/G of its chunk (reduce-scatter over
//                 NVLink), GPU l sends that shard into the network and gets the
//                 job's sum of it back through the same NIC, S/G each way on
//                 each NIC (a ring's channels: about 2 S/G), and sends it to
//                 the node's other GPUs (all-gather). Listed as GPU l of node a
//                 sending its shard to GPU l of node a + 1, which loads every
//                 NIC as the switches' reduction does.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "models/dispatch.h"
#include "proto/status.h"
#include "proto/units.h"

namespace moesim::sim {

enum class CollectiveOp { kAllToAll, kAllReduce, kAllGather, kReduceScatter, kSendRecv };
enum class CollectiveAlgo {
  kDirect,
  kPairwise,
  kHierarchical,
  kRing,
  kTree,
  kNvls,
  kNvlsTree,
  kCollNet
};

std::string_view ToString(CollectiveOp op);
std::string_view ToString(CollectiveAlgo algo);
StatusOr<CollectiveOp> ParseCollectiveOp(std::string_view name);
StatusOr<CollectiveAlgo> ParseCollectiveAlgo(std::string_view name);
// Whether `algo` implements `op` (the table above); else an error for --algo listing those that do.
Status CheckAlgorithm(CollectiveOp op, CollectiveAlgo algo);
// NCCL's usual choice: direct for alltoall, ring otherwise.
CollectiveAlgo DefaultAlgo(CollectiveOp op);
// busbw / algbw, as nccl-tests computes it.
double BusBandwidthFactor(CollectiveOp op, uint32_t ranks);

struct Transfer {
  uint32_t src = 0, dst = 0;
  uint64_t bytes = 0;
  // The algorithm's step, what runs together in it. Neither model waits on steps: only `after`
  // orders transfers.
  uint32_t step = 0;
  // Transfers (indices into Schedule::transfers) that must complete before this one starts.
  std::vector<uint32_t> after;
  // Transfers whose last byte must have left their sender before this one starts, without waiting
  // for it to arrive (a route's latency) or for a new NCCL step: the next chunk of a stream one
  // sender sends back to back (sim/network/alltoall_hierarchical.h, chunk-pipelined relays).
  std::vector<uint32_t> after_sent;
  // A later chunk of a pipelined stream on the same hop: it starts as soon as what it waits for is
  // through, without a step latency of its own (NCCL's latency model charges a hop once a call,
  // not once a chunk). Only with `after`.
  bool streamed = false;
  // Its `after_sent` waits also pay a step latency of an intra-node hop of its sender's node
  // (PaceKind, sim/network/collective_time.h): NCCL's per-step cost, which the bytes of the step
  // before do not hide, while the network's latency is paid only by a hop that crosses it (a
  // ring's steps, collectives.cc).
  bool paced = false;
  // The most this transfer moves per second whatever its links leave it (0: no such limit): NCCL's
  // channels for a send/recv to a rank on another node (CapNetPeers, sim/network/network_model.h).
  // Both models hold a transfer to it, at the protocol's efficiency as a link (the cap is what
  // Simple carries).
  Rate rate_cap = Rate();
};

struct Schedule {
  CollectiveOp op = CollectiveOp::kAllToAll;
  CollectiveAlgo algo = CollectiveAlgo::kDirect;
  uint32_t ranks = 0;
  uint64_t size = 0;  // nccl-tests size, bytes
  uint32_t steps = 0;
  std::vector<Transfer> transfers;  // dependencies (after, after_sent) point to earlier transfers

  // Appends a transfer (raising `steps` to cover its step) and returns its index.
  uint32_t Add(uint32_t src, uint32_t dst, uint64_t bytes, uint32_t step,
               std::vector<uint32_t> after = {}) {
    transfers.push_back({src, dst, bytes, step, std::move(after), {}});
    steps = std::max(steps, step + 1);
    return static_cast<uint32_t>(transfers.size() - 1);
  }
};

// A requested size rounded as nccl-tests rounds it: whole floats (4 B), and for the ops that split
// the buffer over ranks (alltoall, allgather, reducescatter) whole floats per rank; at least one
// such unit. NcclTestsSize(kAllGather, 8, 1000) == 992.
uint64_t NcclTestsSize(CollectiveOp op, uint32_t ranks, uint64_t requested);

// Errors: an algorithm that does not implement the op, fewer than 2 ranks, hierarchical with ranks
// not a multiple of gpus_per_node, nvlstree not on 2 or more whole nodes of 2 or more GPUs,
// collnet not on 2 or more nodes of `gpus_per_node` ranks each (the caller checks the fabric,
// CheckCollNet in collective_time.h).
//
// `ring_channels`: NCCL's channels for a ring that spans nodes, as its graph search builds them
// (src/graph/search.cc, rings.cc): the ranks are listed node by node, `ring_channels` on each
// node, and channel c visits each node's ranks rotated by c, so it enters a node at its c-th rank
// and leaves from the one before: every rank's NIC carries one channel each way, and a multi-node
// ring uses all the node's NICs instead of one. Each channel carries 1/ring_channels of the data.
// 1 (or a count that does not divide `ranks`): one ring, 0 -> 1 -> ... -> n-1. A tree runs as many
// channels, each rotating the chain in every node of `gpus_per_node` consecutive ranks (0: one
// node).
//
// `nvls_efficiency` (nvlstree only): the share of NVLink bandwidth the NVSwitch's reduction
// reaches (NvlsEfficiency of the GPUs, sim/network/nccl_model.h); the in-node bytes are divided by
// it, so the network legs run at their full rate (NCCL's tuner derates only the NVLS part).
// `nvls_channels` (nvlstree only): NCCL's NVLS channels (NcclNvlsChannels), whose loops the
// chunks follow.
StatusOr<Schedule> BuildCollective(CollectiveOp op, CollectiveAlgo algo, uint32_t ranks,
                                   uint64_t size, uint32_t gpus_per_node,
                                   uint32_t ring_channels = 1, double nvls_efficiency = 1.0,
                                   uint32_t nvls_channels = 16);

// Channel `channel`'s ring of BuildCollective: position p holds rank
// p / channels * channels + (p % channels + channel) % channels (identity with one channel).
std::vector<uint32_t> RingOrder(uint32_t ranks, uint32_t channels, uint32_t channel);

// An uneven all-to-all (all-to-allv): bytes[i][j] from rank i to rank j, as nccl-tests'
// alltoallv_perf takes it, or a MoE layer's dispatch. Direct, pairwise or hierarchical; the last
// needs `gpus_per_node` (whole nodes) and may take `node_bytes`, what each rank sends across to
// each node once (a MoE dispatch's distinct tokens; see BuildHierarchicalAllToAllV).
StatusOr<Schedule> BuildAllToAllV(const models::TrafficMatrix& bytes, CollectiveAlgo algo,
                                  uint32_t gpus_per_node = 0,
                                  const models::TrafficMatrix& node_bytes = {});

}  // namespace moesim::sim
