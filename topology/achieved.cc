#include "topology/achieved.h"

#include <cmath>

namespace moesim::topology {

AchievedFraction Achieved(LinkClass link_class, const GpuSpec& gpu) {
  switch (link_class) {
    case LinkClass::kNvLink: {
      if (gpu.nvlink_links == 0 || gpu.nvlink.per_second() == 0 ||
          gpu.nccl_nvlink_per_link.per_second() == 0) {
        return {1.0, "no NCCL figure for this GPU's NVLink: line rate"};
      }
      const double per_link = gpu.nvlink.giga() / gpu.nvlink_links;
      return {gpu.nccl_nvlink_per_link.giga() / per_link,
              "NCCL src/graph/topo.h SMxx_NVLINK_BW over the datasheet's per-link rate"};
    }
    case LinkClass::kInfiniBand:
      return {4096.0 / 4122.0, "IB RDMA: 4 KiB MTU payload over LRH+BTH+ICRC+VCRC (26 B)"};
    case LinkClass::kEthernet:
      return {4096.0 / 4178.0, "RoCEv2: 4 KiB payload over Ethernet+IP+UDP+BTH framing (82 B)"};
    case LinkClass::kPcie:
      return {256.0 / 282.0, "PCIe: 256 B max payload over 4-DW TLP header, LCRC, seq, framing"};
    case LinkClass::kInterSocket:
      return {1.0, "UPI/xGMI: no published overhead (assumption: line rate)"};
  }
  return {1.0, "line rate"};
}

void DerateLinks(Graph& graph, const GpuSpec& gpu, bool line_rate_only) {
  for (auto [it, end] = boost::edges(graph); it != end; ++it) {
    Link& link = graph[*it];
    const double fraction = line_rate_only ? 1.0 : Achieved(link.link_class, gpu).fraction;
    link.achieved = Rate::PerSecond(static_cast<uint64_t>(
        std::llround(static_cast<double>(link.bandwidth.per_second()) * fraction)));
  }
}

}  // namespace moesim::topology
