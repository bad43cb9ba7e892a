#include "sim/network/collective_time.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

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

NcclLatencyModel LatencyModelFor(CollectiveAlgo algo) {
  return {algo == CollectiveAlgo::kTree, algo == CollectiveAlgo::kNvls};
}

double AlgorithmEfficiency(const topology::Cluster& cluster, CollectiveAlgo algo) {
  if (algo != CollectiveAlgo::kNvls) return 1.0;
  const double e = NvlsEfficiency(cluster.gpu_spec().sm);
  // Callers check CheckNvls first; an NVLS schedule on a GPU without it is a programming error.
  if (e <= 0) throw std::logic_error("NVLS on " + cluster.gpu_spec().name + ", which has none");
  return e;
}

Status CheckNvls(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus) {
  const topology::GpuSpec& gpu = cluster.gpu_spec();
  const std::string valid =
      "--algo ring or tree; nvls on one node of Hopper or newer GPUs behind NVSwitch";
  if (NvlsEfficiency(gpu.sm) <= 0) {
    return InputError({}, "--algo", "nvls",
                      gpu.name + " has no NVLink SHARP (NVLS needs Hopper or newer)", valid);
  }
  const topology::Router& router = cluster.router();
  bool switch_found = false;
  const topology::Graph& g = cluster.graph();
  for (auto [it, end] = boost::vertices(g); it != end; ++it)
    switch_found = switch_found || g[*it].kind == topology::DeviceKind::kNvSwitch;
  if (!switch_found) {
    return InputError({}, "--algo", "nvls", "the node has no NVSwitch to reduce in", valid);
  }
  for (uint32_t gpu_id : gpus) {
    if (router.NodeOf(gpu_id) != router.NodeOf(gpus.front())) {
      return InputError({}, "--algo", "nvls",
                        "the GPUs span nodes (NCCL's NVLS tree across nodes is not modelled)",
                        valid);
    }
  }
  return Status::Ok();
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

  const NcclLatencyModel model = LatencyModelFor(schedule.algo);
  const double algo_efficiency = AlgorithmEfficiency(cluster, schedule.algo);
  std::optional<Duration> best;
  for (NcclProtocol p : kNcclProtocols) {
    if (!model.Allows(p)) continue;
    Duration latency = model.Base(p);
    for (const auto& [src, dst] : schedule.latency_chain)
      latency += model.Step(HopKind(cluster, src, dst), p);
    const Duration bandwidth = Duration::Picoseconds(
        static_cast<int64_t>(std::ceil(static_cast<double>(timing.bandwidth.picoseconds()) /
                                       (NcclLatencyModel::Efficiency(p) * algo_efficiency))));
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
