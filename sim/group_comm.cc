#include "sim/group_comm.h"

#include <stdexcept>

#include "sim/collective_time.h"
#include "sim/flow_model.h"

namespace moesim::sim {
namespace {

// The schedule's ranks become the group's GPUs.
void MapOntoGroup(Schedule& schedule, const std::vector<uint32_t>& gpus) {
  for (Transfer& t : schedule.transfers) {
    t.src = gpus.at(t.src);
    t.dst = gpus.at(t.dst);
  }
  for (auto& [src, dst] : schedule.latency_chain) {
    src = gpus.at(src);
    dst = gpus.at(dst);
  }
}

GroupCommTime Run(const topology::Cluster& cluster, const Schedule& schedule, Fidelity fidelity,
                  uint32_t repeats = 1) {
  const CollectiveTiming t = TimeCollective(cluster, schedule, repeats);
  if (fidelity == Fidelity::kAnalytical) return {t.total, t.bottleneck_link};
  const FlowRun run = RunFlows(cluster, schedule, t.protocol);
  return {run.total, run.bottleneck_link};
}

}  // namespace

GroupCommTime GroupCollective(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus,
                              CollectiveOp op, CollectiveAlgo algo, uint64_t size,
                              Fidelity fidelity) {
  if (gpus.size() < 2 || size == 0) return {};
  const uint32_t n = static_cast<uint32_t>(gpus.size());
  const bool ring_family = op == CollectiveOp::kAllReduce || op == CollectiveOp::kAllGather ||
                           op == CollectiveOp::kReduceScatter;
  if (fidelity == Fidelity::kAnalytical && algo == CollectiveAlgo::kRing && ring_family) {
    // Every step of a ring moves size / n from each rank to the next: the same link loads each
    // time. One step is listed and timed `steps` times over, which is what the full schedule
    // (collectives.h) gives, without its 2n(n-1) transfers (8 M for a ring of 2,048).
    const uint32_t steps = (op == CollectiveOp::kAllReduce ? 2 : 1) * (n - 1);
    Schedule s;
    s.op = op;
    s.algo = algo;
    s.ranks = n;
    s.size = size;
    s.steps = 1;
    for (uint32_t i = 0; i < n; ++i) s.transfers.push_back({i, (i + 1) % n, size / n, 0, {}});
    for (uint32_t h = 0; h < steps; ++h) s.latency_chain.emplace_back(h % n, (h + 1) % n);
    MapOntoGroup(s, gpus);
    return Run(cluster, s, fidelity, steps);
  }
  StatusOr<Schedule> schedule =
      BuildCollective(op, algo, static_cast<uint32_t>(gpus.size()), size, cluster.gpus_per_node());
  // The step model only asks for ops and algorithms that exist; a failure is a programming error.
  if (!schedule.ok()) throw std::logic_error(schedule.error().message());
  MapOntoGroup(*schedule, gpus);
  return Run(cluster, *schedule, fidelity);
}

GroupCommTime GroupAllToAllV(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus,
                             const models::TrafficMatrix& bytes, Fidelity fidelity) {
  if (gpus.size() < 2) return {};
  uint64_t off_diagonal = 0;
  for (uint32_t r = 0; r < bytes.ranks(); ++r) off_diagonal += bytes.SentOffRank(r);
  if (off_diagonal == 0) return {};
  StatusOr<Schedule> schedule = BuildAllToAllV(bytes, CollectiveAlgo::kDirect);
  if (!schedule.ok()) throw std::logic_error(schedule.error().message());
  MapOntoGroup(*schedule, gpus);
  return Run(cluster, *schedule, fidelity);
}

}  // namespace moesim::sim
