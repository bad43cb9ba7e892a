#include "sim/network/collective_time.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace moesim::sim {
StepLinkKind HopKind(const topology::Cluster& cluster, uint32_t src, uint32_t dst) {
  const topology::Router& router = cluster.router();
  if (router.NodeOf(src) != router.NodeOf(dst)) return StepLinkKind::kNetwork;
  const topology::Graph& g = cluster.graph();
  bool nvlink = true;
  router.ForEachShare(src, dst, [&](topology::Edge e, double) {
    nvlink = nvlink && g[e].link_class == topology::LinkClass::kNvLink;
  });
  return nvlink ? StepLinkKind::kNvLink : StepLinkKind::kPcie;
}

CollectiveTiming TimeCollective(const topology::Cluster& cluster, const Schedule& schedule,
                                uint32_t repeats) {
  const topology::Graph& g = cluster.graph();
  const topology::Router& router = cluster.router();
  std::vector<std::vector<uint32_t>> by_step(schedule.steps);
  for (uint32_t t = 0; t < schedule.transfers.size(); ++t)
    by_step[schedule.transfers[t].step].push_back(t);

  CollectiveTiming timing;
  std::vector<double> load(boost::num_edges(g), 0.0);
  Duration slowest_step;
  for (uint32_t step = 0; step < schedule.steps; ++step) {
    std::fill(load.begin(), load.end(), 0.0);
    for (uint32_t t : by_step[step]) {
      const Transfer& x = schedule.transfers[t];
      router.ForEachShare(x.src, x.dst, [&](topology::Edge e, double share) {
        load[g[e].id] += static_cast<double>(x.bytes) * share;
      });
    }
    Duration busiest;
    std::string busiest_link;
    for (auto [it, end] = boost::edges(g); it != end; ++it) {
      const double bytes = load[g[*it].id];
      if (bytes <= 0) continue;
      const Duration d =
          TransferTime(Bytes{static_cast<uint64_t>(std::ceil(bytes))}, g[*it].achieved);
      if (d > busiest) {
        busiest = d;
        busiest_link = g[boost::source(*it, g)].name + " -> " + g[boost::target(*it, g)].name;
      }
    }
    timing.bandwidth += int64_t{repeats} * busiest;
    if (busiest > slowest_step) {
      slowest_step = busiest;
      timing.bottleneck_link = busiest_link;
    }
  }

  const NcclLatencyModel model{schedule.algo == CollectiveAlgo::kTree};
  std::optional<Duration> best;
  for (NcclProtocol p : kNcclProtocols) {
    Duration latency = model.Base(p);
    for (const auto& [src, dst] : schedule.latency_chain)
      latency += model.Step(HopKind(cluster, src, dst), p);
    const Duration bandwidth = Duration::Picoseconds(static_cast<int64_t>(std::ceil(
        static_cast<double>(timing.bandwidth.picoseconds()) / NcclLatencyModel::Efficiency(p))));
    const Duration total = latency + bandwidth;
    // Ties go to the later protocol in the list (Simple), as NCCL prefers it for large messages.
    if (!best || total <= *best) {
      best = total;
      timing.protocol = p;
      timing.latency = latency;
    }
  }
  timing.total = *best;
  return timing;
}

}  // namespace moesim::sim
