#include "sim/group_comm.h"

#include <stdexcept>

#include "sim/alltoall_hierarchical.h"
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

uint32_t GroupGpusPerNode(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus) {
  const uint32_t per_node = cluster.gpus_per_node();
  if (per_node == 0 || gpus.empty()) return 0;
  // G = the members on the first member's node; every block of G must then share one node, and
  // no node may come back later.
  const uint32_t first = gpus.front() / per_node;
  uint32_t g = 0;
  while (g < gpus.size() && gpus[g] / per_node == first) ++g;
  if (g == gpus.size() || gpus.size() % g != 0) return 0;  // one node, or uneven nodes
  std::vector<bool> seen(cluster.total_gpus() / per_node + 1, false);
  for (size_t a = 0; a < gpus.size() / g; ++a) {
    const uint32_t node = gpus[a * g] / per_node;
    if (seen.at(node)) return 0;
    seen[node] = true;
    for (size_t i = 0; i < g; ++i)
      if (gpus[a * g + i] / per_node != node) return 0;
  }
  return g;
}

bool GroupFillsNodes(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus) {
  return GroupGpusPerNode(cluster, gpus) == cluster.gpus_per_node();
}

std::optional<GroupCommTime> GroupHierarchicalAllToAllV(const topology::Cluster& cluster,
                                                        const std::vector<uint32_t>& gpus,
                                                        const models::TrafficMatrix& bytes,
                                                        const models::TrafficMatrix& node_bytes,
                                                        bool reversed, Fidelity fidelity) {
  const uint32_t g = GroupGpusPerNode(cluster, gpus);
  if (g == 0) return std::nullopt;
  StatusOr<Schedule> schedule = BuildHierarchicalAllToAllV(bytes, g, Rail::kSource, node_bytes);
  // The shape was checked above, and node_bytes come from the same routing as bytes.
  if (!schedule.ok()) throw std::logic_error(schedule.error().message());
  Schedule s = reversed ? Reversed(*schedule) : *std::move(schedule);
  MapOntoGroup(s, gpus);
  return Run(cluster, s, fidelity);
}

}  // namespace moesim::sim
