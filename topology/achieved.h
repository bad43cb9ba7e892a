// What a link achieves, as a fraction of its line rate: the bandwidth every model prices with.
// Datasheets quote line rates; NCCL, DeepEP and nccl-tests reach less, and moesim predicts what
// they reach. Each fraction names its source; `moesim topo show` prints them.
//
//   const AchievedFraction a = Achieved(LinkClass::kNvLink, cluster.gpu_spec());
//   a.fraction;  // H100: 20.6 / 25 = 0.824 (NCCL's SM90 figure over the datasheet's 25 GB/s)
//
//   NVLink      NCCL's own per-link figure for the architecture (src/graph/topo.h SMxx_NVLINK_BW:
//               SM80 20.0, SM90 20.6, SM100 40.1 GB/s) over the datasheet's per-link rate
//               (25 GB/s for NVLink 3/4, 50 for NVLink 5): what NCCL's graph search plans with,
//               and what nccl-tests' ring all-reduce reaches in one node.
//   InfiniBand  RDMA write payload over what crosses the wire: 4,096-byte MTU packets with LRH (8),
//               BTH (12), ICRC (4) and VCRC (2) bytes of headers and CRCs (InfiniBand Architecture
//               Specification vol. 1, ch. 5 and 9): 4096 / 4122 = 0.9937. The NDR/HDR signalling
//               (PAM4, FEC) is already outside the quoted 400/200 Gb/s.
//   Ethernet    RoCEv2 on Ethernet: the same payload with preamble+SFD (8), Ethernet header (14),
//               FCS (4), inter-frame gap (12), IPv4 (20), UDP (8), BTH (12), ICRC (4):
//               4096 / 4178 = 0.9804 (IEEE 802.3; IBTA RoCEv2 annex A17).
//   PCIe        TLPs of the common 256-byte maximum payload with a 4-DW header (16), LCRC (4),
//               sequence number (2) and framing token (4): 256 / 282 = 0.9078 (PCI Express Base
//               Specification, ch. 2-4; flow-control and ACK DLLPs not counted).
//   InterSocket 1.0: vendors publish no protocol overhead for UPI/xGMI; an assumption.
//
// A calibrated HardwareProfile's all-to-all fit replaces the network model where it has an entry
// (sim/compute/profile_model.h). `line_rate: true` in a cluster file turns the derating off.
#pragma once

#include <string_view>

#include "topology/gpu_specs.h"
#include "topology/graph.h"

namespace moesim::topology {

struct AchievedFraction {
  double fraction = 1.0;    // achieved / line rate, in (0, 1]
  std::string_view source;  // where the fraction comes from, one line
};

// For `link_class` on a node of `gpu` (NVLink depends on the GPU's architecture).
AchievedFraction Achieved(LinkClass link_class, const GpuSpec& gpu);

// Sets every edge's `achieved` rate from its line rate (`bandwidth`), or to the line rate itself
// with `line_rate_only`.
void DerateLinks(Graph& graph, const GpuSpec& gpu, bool line_rate_only);

}  // namespace moesim::topology
