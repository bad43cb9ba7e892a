// The analytical (closed-form) time of a collective schedule on a cluster: a lower bound on the
// flow model's time (sim/network/flow_model.h) for every schedule, exact where the schedule leaves
// no choice of how to share a link (a ring, a uniform all-to-all on one switch).
//
//   CollectiveTiming t = TimeCollective(cluster, schedule);
//   t.total   // e.g. ring all-reduce: base + 2(n-1) x (step latency + S/n / B)
//
// It charges what the flow model must pay whatever rates max-min fairness gives, transfer by
// transfer in the schedule's dependency order, with NCCL's latency model
// (sim/network/nccl_model.h) for the protocol its tuner picks:
//   - the collective starts after NCCL's per-call base latency; a transfer starts after the
//     transfers it waits for, plus the step latency of its hop (NVLink, PCIe or network);
//   - a transfer takes at least its bytes over the narrowest link of its route (x its share there);
//   - the transfers a transfer waits for, or that wait for it, which share a link drain through it
//     one after another at best;
//   - every link drains all that crosses it, no earlier than it arrives and no later than the work
//     that waits behind it allows (sim/network/link_bound.h);
// and total = the largest of these. Link capacities are scaled by the protocol's efficiency (and
// by NVLS's, for NVLS).
//
// Why not "each step takes its busiest link, steps one after another": the flow model has no
// barrier between a schedule's steps, only its dependencies. A pipelined tree all-reduce sends a
// chunk up one edge while an earlier chunk goes down another, each link at its own pace, and a
// pairwise all-to-all's ranks run ahead of a slow round on another rank; summing each step's
// busiest link charged both as if every step waited for the slowest link of the one before
// (a tree on 2 nodes: 1.6 x the flow time).
#pragma once

#include <string>
#include <vector>

#include "proto/status.h"
#include "sim/network/collectives.h"
#include "sim/network/nccl_model.h"
#include "topology/cluster.h"

namespace moesim::sim {

struct CollectiveTiming {
  Duration total;
  Duration latency;  // the same bound for a schedule of empty transfers: base + step latencies
  // What the bytes add at full link bandwidth, before the protocol's and the algorithm's
  // efficiency: total - latency with the Simple protocol at efficiency 1.
  Duration bandwidth;
  NcclProtocol protocol = NcclProtocol::kSimple;
  // The share of link bandwidth the chosen protocol delivers: its efficiency x the algorithm's
  // (NVLS), lowered to NCCL's llMaxBw for LL. The flow model runs at the same.
  double efficiency = 1.0;
  std::string bottleneck_link;  // the link whose drain bounds the total the most
  // No link but a transfer's rate_cap (NCCL's channels to a network peer) set the total;
  // bottleneck_link then says so.
  bool capped = false;
  // NVLS only: what its kernels' pipeline adds before the last loop is out (NvlsPipelineFill),
  // included in total.
  Duration pipeline_fill;
};

CollectiveTiming TimeCollective(const topology::Cluster& cluster, const Schedule& schedule);

// The nodes `gpus` sit on (each counted once).
uint32_t NodesSpanned(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus);

// NCCL's single-node NVLS kernels (src/device/all_reduce.h, all_gather.h, reduce_scatter.h, not
// registered buffers, as nccl-tests runs them) move each channel's share in loops of one chunk per
// head, nHeads = the GPUs, through a pipeline of warp groups, each loop behind the one before:
// an all-reduce's scatter into the heads' buffers, the NVSwitch's reduce-and-multicast, the gather
// out (3 stages); an all-gather's multicast and gather, a reduce-scatter's scatter and reduce (2).
// L loops take L + stages - 1 loop times, so beyond the bytes at the NVLS rate (`bytes_time`) the
// pipeline adds
//
//   fill = (stages - 1) x bytes_time x min(1, loop / size),  loop = channels x heads x chunk
//
// with NCCL's channels (NcclNvlsChannels) and chunk for the size (NcclNvlsChunk), each stage
// taken as fast as the whole (they share the NVLink ports, so this is the fill's upper end). On 8
// H100 (16 channels, 128 ops): 16 MiB runs in 32 KiB chunks, loops of 4 MiB, fill = 2 x 1/4 of
// the bytes' time; 1 GiB in 128 KiB chunks, fill = 2/64 of it. Zero for any other algorithm.
Duration NvlsPipelineFill(const topology::Cluster& cluster, const Schedule& schedule,
                          Duration bytes_time);

// A ring of `steps` identical steps given once: `step` lists one step's transfers (no
// dependencies), channel by channel, each channel's hops in ring order (hop p into the sender of
// hop p + 1); step k's transfer from rank i waits for step k - 1's transfer into i to arrive and
// its own to have left, as collectives.h's Ring() builds them (a ring of 2,048 without its 8 M
// transfers):
//
//   total = base + max(the longest chain of `steps` transfers through those waits, each adding
//                      its hop's step latency where it waits for an arrival and its bytes over
//                      its narrowest link,
//                      max over links (least step latency there + steps x its bytes / bandwidth))
//
// Equal to TimeCollective of the full ring when no link carries two of a step's transfers (a ring
// over NVSwitch or over one GPU a node); otherwise no more than it, so still a lower bound. The
// chains are worked exactly (hops x steps) up to `exact_work` ranks x steps; past it, or for a step
// not listed so, the two chains every ring has: a rank sending all its steps, and a chunk going
// `steps` consecutive hops (exact when every hop drains alike, a lower bound otherwise).
inline constexpr uint64_t kRingChainWork = uint64_t{1} << 26;
CollectiveTiming TimeRing(const topology::Cluster& cluster, const Schedule& step, uint32_t steps,
                          uint64_t exact_work = kRingChainWork);
// TimeRing at `protocol` and `efficiency` with each transfer's time on the wire given (`wire`,
// one per transfer of `step`: the flow model's, beside the step's others) in place of its drain
// alone in the chains; the links' drains as TimeRing's. No shorter than TimeRing at that protocol
// where no wire time is shorter than its transfer's drain alone.
CollectiveTiming TimeRingOnWire(const topology::Cluster& cluster, const Schedule& step,
                                uint32_t steps, NcclProtocol protocol, double efficiency,
                                const std::vector<Duration>& wire);

// NCCL's latency model for the schedule's algorithm (Tree rows for tree, NVLS for nvls, NVLS_TREE
// for nvlstree, CollNet Direct for collnet, Ring otherwise), with the cluster's network transport
// latency, and for a ring spanning nodes NCCL's net overhead and, for an all-reduce, its ring
// plateau (nccl_model.h).
NcclLatencyModel LatencyModelFor(const topology::Cluster& cluster, const Schedule& schedule);
// What an algorithm reaches of the links' bandwidth beyond the protocol's efficiency: NCCL's
// nvlsEfficiency for the cluster's GPUs with NVLS; 0.92 for a tree (NCCL's tuner derates a tree
// all-reduce so, tuning.cc: busBw * .92); CollNetEfficiency (0.85 from Hopper on) for collnet;
// else 1 (NVLS across nodes too: its schedule's in-node bytes carry nvlsEfficiency, its NICs run
// at their rate).
double AlgorithmEfficiency(const topology::Cluster& cluster, const Schedule& schedule);
// Whether NVLS can run `op` on `gpus`: Hopper or newer, an NVSwitch, one node; or, for an
// all-reduce, 2 or more GPUs on each of several nodes alike where the fabric's switches reduce
// (cluster.fabric.sharp: NCCL runs NVLS across nodes only with CollNet). Else an error for --algo.
Status CheckNvls(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus,
                 CollectiveOp op = CollectiveOp::kAllReduce);
// Whether NVLS_TREE can run on `gpus`: Hopper or newer, NVSwitch, 2 or more whole nodes.
Status CheckNvlsTree(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus);
// Whether CollNet Direct can run on `gpus`: switches that reduce (cluster.fabric.sharp), NVSwitch
// nodes (tuning.cc disables it elsewhere), 2 or more nodes with as many GPUs on each, at most 8
// (NCCL_MAX_DIRECT_ARITY + 1, enqueue.cc).
Status CheckCollNet(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus);

// The all-reduce algorithms NCCL's tuner weighs on `gpus` (the fastest per size wins): the ring;
// the tree across nodes only (in one node moesim pipelines a chain's chunks under its hops'
// latencies, where NCCL's tuner adds size / bandwidth to the latency, so the tree would win sizes
// NCCL gives the ring); NVLS on one NVSwitch node of Hopper or newer, NVLSTree across such
// nodes; CollNet Direct where CheckCollNet allows it (NCCL weighs it once NCCL_COLLNET_ENABLE=1,
// which cluster.fabric.sharp stands for). `described`, when given, says which in words ("ring or
// nvls").
std::vector<CollectiveAlgo> TunerAllReduceAlgorithms(const topology::Cluster& cluster,
                                                     const std::vector<uint32_t>& gpus,
                                                     std::string* described = nullptr);

// The algorithms NCCL's tuner weighs for `op` on `gpus`, the fastest per size winning:
// TunerAllReduceAlgorithms for an all-reduce; for an all-gather or a reduce-scatter the ring, and
// NVLS on one NVSwitch node of Hopper or newer (across nodes NCCL runs NVLS for them only with
// CollNet, tuning.cc, which moesim does not model); the op's DefaultAlgo otherwise.
std::vector<CollectiveAlgo> TunerAlgorithms(const topology::Cluster& cluster,
                                            const std::vector<uint32_t>& gpus, CollectiveOp op,
                                            std::string* described = nullptr);

// What a hop from `src` to `dst` crosses, for NCCL's step latency: the network between nodes;
// NVLink when every link of the route is NVLink; PCIe otherwise.
StepLinkKind HopKind(const topology::Cluster& cluster, uint32_t src, uint32_t dst);
// The kind of an intra-node hop from `gpu` (to the first other GPU of its node), which paces a
// Transfer::paced transfer's steps; NVLink on a node of one GPU (no such hop).
StepLinkKind PaceKind(const topology::Cluster& cluster, uint32_t gpu);

}  // namespace moesim::sim
