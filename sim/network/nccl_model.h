// NCCL's own latency model (src/graph/tuning.cc, NCCL 2.2x: baseLat and hwLat, Simple / LL /
// LL128), so predictions for small messages show the per-call and per-step overheads that
// nccl-tests measures.
//
//   time(protocol) = base(protocol) + sum over steps of step_latency(link kind, protocol)
//                    + bandwidth time / efficiency(protocol)
// and, as NCCL's tuner does, the protocol with the smallest time is chosen.
//
// Constants (microseconds), from NCCL's tuning.cc for the Ring algorithm (Tree in parentheses):
//   base           LL 6.6 (6.8)   LL128 14.0 (14.0)   Simple 8.4 (8.4)
//   step, NVLink   LL 0.6 (0.6)   LL128 1.9 (1.25)    Simple 3.4 (4.0)
//   step, PCIe     LL 1.0 (1.0)   LL128 2.5 (1.9)     Simple 5.7 (4.0)
//   step, network  LL 2.7 (5.0)   LL128 4.0 (8.5)     Simple 14.0 (14.0)
// Bandwidth efficiency: LL carries 8 bytes of data per 16 on the wire (0.5); LL128 120 of 128
// (0.9375, NCCL's tuner uses 0.92); Simple 1. In a ring or a tree, LL's bus bandwidth is also held
// under NCCL's llMaxBw (NcclLlMaxBusGbps below; collective_time.cc applies it as a lower one).
//
// Two refinements NCCL's tuner makes for a ring that spans nodes (tuning.cc):
//   net overhead   every intra-node step of such a ring costs at least the network's post
//                  overhead, 1 us (x 3 for Simple): getNetOverhead's Intel figure, as cluster files
//                  name no CPU vendor (AMD's is 2 us);
//   ring plateau   an all-reduce's Simple latency, base and steps, x 1.4 (x 1.9 before Ampere)
//                  once every rank's share of every channel is 64 bytes or more
//                  (ncclTopoGetAlgoTime: "Plateau effect of ring"; with NCCL's 64 channels at
//                  most, MAXCHANNELS, as moesim does not build NCCL's channel count).
//
// NVLS (NVLink SHARP, the NVSwitch reducing and multicasting): Simple only, no base latency and
// one NVLink "step" of 25 us (tuning.cc hwLatencies[NVLINK][NVLS]); its bandwidth is derated by
// NCCL's nvlsEfficiency, 0.85 on Hopper and 0.74 on Blackwell (tuning.cc), and unavailable
// before Hopper. Across nodes, where NCCL runs it only with CollNet (the switches reduce), a
// network hop of 18 us (hwLatencies[NET][NVLS]) follows. NVLS_TREE (NVLS in each node, a tree
// across nodes): Simple only, no base latency,
// 25 us a hop in the node and 20.9 us a network hop (hwLatencies[NET][NVLS_TREE][Simple]).
//
// CollNet Direct (the network's switches reduce: SHARP): Simple only, no base latency, 3.7 us a
// hop in the node (hwLatencies[NVLINK] and [PCI][COLLNET_DIRECT][Simple]) and 31 us a network hop
// (hwLatencies[NET]; with one GPU a node NCCL takes the Tree's 14 us, "latencies are fully
// exposed"), and 0.4 us of "arity serialization" per other GPU of the node each way, charged here
// as a base: 2 x (ppn - 1) x 0.4 us (tuning.cc, NCCL_ALGO_COLLNET_DIRECT).
#pragma once

#include <array>
#include <string_view>

#include "proto/units.h"

namespace moesim::sim {

enum class NcclProtocol { kLL, kLL128, kSimple };
inline constexpr std::array<NcclProtocol, 3> kNcclProtocols = {
    NcclProtocol::kLL, NcclProtocol::kLL128, NcclProtocol::kSimple};
std::string_view ToString(NcclProtocol p);

// What a step's slowest route crosses: NVLink inside a node, PCIe inside a node without NVLink, the
// network between nodes.
enum class StepLinkKind { kNvLink, kPcie, kNetwork };

struct NcclLatencyModel {
  bool tree = false;       // the Tree rows above instead of the Ring ones
  bool nvls = false;       // NVLS: Simple only, base 0, NVLink step 25 us, network 18 us
  bool nvls_tree = false;  // NVLS_TREE: Simple only, base 0, NVLink step 25 us, network 20.9 us
  // The net transport's own latency (topology::Cluster::net_latency, what an NCCL net plugin
  // reports): NCCL adds it to every network step, twice for Simple (the flush; tuning.cc).
  Duration net_latency;
  bool ring_across_nodes = false;  // a ring spanning nodes: intra-node steps >= the net overhead
  double ring_plateau = 1.0;       // x base and steps for Simple (the ring plateau above)
  // CollNet Direct over nodes of `local_ranks` GPUs each: Simple only, base 2 (ppn - 1) 0.4 us,
  // a hop in the node 3.7 us, a network hop 31 us (14 us with one GPU a node).
  bool collnet = false;
  uint32_t local_ranks = 1;
  Duration Base(NcclProtocol p) const;
  Duration Step(StepLinkKind kind, NcclProtocol p) const;
  // Fraction of link bandwidth the protocol delivers as data.
  static double Efficiency(NcclProtocol p);
  // Whether NCCL's tuner considers protocol `p` for this algorithm (NVLS: Simple only).
  bool Allows(NcclProtocol p) const {
    return !(nvls || nvls_tree || collnet) || p == NcclProtocol::kSimple;
  }
};

// NCCL's ceiling on the LL protocol's bus bandwidth, GB/s, whatever the links give (tuning.cc
// llMaxBws, applied to Ring/LL and Tree/LL: busBw = min(llMaxBw, busBw x 0.5)): LL moves 8 bytes a
// store with a flag, so the GPU's threads, not the links, bound it. One node: by architecture,
// Volta 39.0, Ampere 87.7, Hopper 141.0, Blackwell 282.0 (`sm` x 10 below 80, 80, 90, 100 and up).
// Across nodes NCCL picks the row by CPU vendor; cluster files do not name one, so Intel's row:
// 39.0 on 2 nodes, 20.4 on more.
double NcclLlMaxBusGbps(uint32_t sm, uint32_t nodes);

// NCCL's ring plateau factor (above) for an all-reduce of `bytes` over `ranks` ranks on `nodes`
// nodes of GPUs of compute capability `sm` x 10: 1.4 (1.9 before Ampere) across nodes once
// bytes / (64 x ranks) >= 64, else 1.
double NcclRingPlateau(uint32_t sm, uint32_t nodes, uint32_t ranks, uint64_t bytes);

// NCCL's correction of a tree all-reduce's bandwidth at medium sizes (tuning.cc
// treeCorrectionFactor, "trees are not perfectly sticking to the model for medium sizes"): a
// factor per protocol and power of two of `bytes` / 64, from 64 B up, 1 past the table (Tree: its
// first 23 columns, to 256 MiB; NVLS_TREE: 24, on Blackwell and x86 only, as moesim assumes x86).
// `nvls_tree` picks NVLS_TREE's reach; `sm` the GPUs' compute capability x 10.
double NcclTreeCorrection(NcclProtocol p, uint64_t bytes, bool nvls_tree = false, uint32_t sm = 90);

// NCCL's nvlsEfficiency for GPUs of compute capability `sm` x 10: 0.85 (90, Hopper), 0.74 (100,
// Blackwell); 0 where NVLS does not exist (before Hopper).
double NvlsEfficiency(uint32_t sm);

// NCCL's tuner's share of the bus bandwidth a CollNet Direct all-reduce reaches on GPUs of
// compute capability `sm` x 10: 0.85 from Hopper on (tuning.cc: `if (minCompCap >= 90) busBw *=
// .85`), else 1. Its other CollNet factor, for fewer NICs than GPUs (ppn / nChannels), moesim's
// links already charge: the GPUs that share a NIC share its bandwidth.
double CollNetEfficiency(uint32_t sm);

// NCCL's NVLS channels (transport/nvls.cc ncclNvlsTuning, NCCL 2.28): 16 on Hopper (also NCCL
// 2.18's NCCL_NVLS_NCHANNELS default); on Blackwell 24 in one node, 32 across nodes.
uint32_t NcclNvlsChannels(uint32_t sm, uint32_t nodes);

// NCCL's chunk for a single-node NVLS collective of `bytes` run as `concurrent_ops` = channels x
// heads (enqueue.cc calcCollChunking, NVLS branch; the same in NCCL 2.18): 128 KiB (its
// nvlsChunkSize), then 64 KiB if bytes < 64 x ops x chunk, 32 KiB if bytes < 8 x ops x chunk,
// 16 KiB if bytes < 2 x ops x chunk, each test against the chunk the one before left.
uint64_t NcclNvlsChunk(uint64_t bytes, uint64_t concurrent_ops);

// NCCL's chunk for an NVLS_TREE all-reduce of `bytes` over `nodes` nodes run as `concurrent_ops` =
// channels x heads (enqueue.cc calcCollChunking, NVLS_TREE branch, with transport/nvls.cc's
// defaults off Blackwell: 128 KiB, its tree maximum 64 KiB from 4 nodes): then 64 KiB if bytes <
// 4 x ops x chunk, 32 KiB if bytes < ops x chunk (NCCL's rules above 128 KiB do not bind then).
// Blackwell's own NVLSTree tuning (ncclNvlsTreeSm100Tuning, by NIC speed and GPUs per node) is
// not followed.
uint64_t NcclNvlsTreeChunk(uint64_t bytes, uint64_t concurrent_ops, uint32_t nodes);

// NCCL's tuner takes 92 % of a tree's bus bandwidth for an all-reduce (tuning.cc: `if (a ==
// NCCL_ALGO_TREE && coll == ncclFuncAllReduce) busBw = std::min(busBw*.92, ...)`), every protocol.
inline constexpr double kNcclTreeEfficiency = 0.92;

// What one of NCCL's channels carries of a send/recv to a rank on another node: 14 GB/s, NCCL's
// P2P_PER_CHANNEL_NET_BW (src/graph/paths.cc, NCCL 2.29), by which it gives a network peer enough
// channels to fill its NIC. (Measured, one channel: 17.2 GB/s between B200 nodes, 15.2 between
// H100 nodes; two: 34.2. README, "Accuracy".)
inline constexpr double kNcclP2pChannelNetGbps = 14;

// NCCL's p2p channels of a communicator (comm->p2pnChannels): its collective channels rounded up to
// a power of two, at most 64 (MAXCHANNELS). moesim takes the collective channels as NCCL's ring
// search finds them across nodes, one per NIC the communicator's GPUs use on a node, doubled
// (ncclTopoPostset), as NCCL logs them on 8-GPU, 8-NIC H100 nodes: "16 coll channels".
uint32_t NcclP2pChannels(uint32_t nics_used_per_node);

// How many of those channels carry a send/recv to one rank on another node (ncclTopoGetNchannels,
// then ncclTopoComputeP2pChannels, src/graph/paths.cc), for `ranks` in the communicator, its
// `p2p_channels`, and a NIC of `nic_gbps` per GPU (moesim routes a GPU through one NIC). By NCCL
// release (`nccl_version`, major x 100 + minor):
//   2.29 on  c = max(1, ceil(floor(nic_gbps) / 14)), halved while c x ceil(ranks / 8) >
//            p2p_channels (NCCL_MAX_DEV_WORK_P2P_PER_BATCH: 8 peers a channel's batch);
//   2.19-28  c = 2, halved while c x ranks > 4 x p2p_channels, at least 1 (the NICs the GPU needs);
// both rounded up to a power of two and at most p2p_channels.
uint32_t NcclP2pChannelsPerNetPeer(uint32_t nccl_version, double nic_gbps, uint32_t ranks,
                                   uint32_t p2p_channels);

}  // namespace moesim::sim
