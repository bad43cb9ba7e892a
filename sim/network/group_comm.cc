#include "sim/network/group_comm.h"

#include <algorithm>
#include <stdexcept>

#include "sim/network/alltoall_hierarchical.h"

namespace moesim::sim {
namespace {

GroupCommTime Run(const NetworkModel& net, const Schedule& schedule) {
  const CollectiveRun run = net.Collective(schedule);
  return {run.total, run.bottleneck_link};
}

}  // namespace

GroupCommTime GroupAllToAllV(const NetworkModel& net, const std::vector<uint32_t>& gpus,
                             const models::TrafficMatrix& bytes) {
  if (gpus.size() < 2) return {};
  uint64_t off_diagonal = 0;
  for (uint32_t r = 0; r < bytes.ranks(); ++r) off_diagonal += bytes.SentOffRank(r);
  if (off_diagonal == 0) return {};
  StatusOr<Schedule> schedule = BuildAllToAllV(bytes, CollectiveAlgo::kDirect);
  if (!schedule.ok()) throw std::logic_error(schedule.error().message());
  MapOntoGroup(*schedule, gpus);
  return Run(net, *schedule);
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

std::optional<GroupCommTime> GroupHierarchicalAllToAllV(const NetworkModel& net,
                                                        const std::vector<uint32_t>& gpus,
                                                        const models::TrafficMatrix& bytes,
                                                        const models::TrafficMatrix& node_bytes,
                                                        bool reversed) {
  const uint32_t g = GroupGpusPerNode(net.cluster(), gpus);
  if (g == 0) return std::nullopt;
  StatusOr<Schedule> schedule = BuildHierarchicalAllToAllV(bytes, g, Rail::kSource, node_bytes);
  // The shape was checked above, and node_bytes come from the same routing as bytes.
  if (!schedule.ok()) throw std::logic_error(schedule.error().message());
  Schedule s = reversed ? Reversed(*schedule) : *std::move(schedule);
  MapOntoGroup(s, gpus);
  return Run(net, s);
}

GroupCommTime Slowest(const AllToAll& alltoall) {
  GroupCommTime out{Duration(), alltoall.bottleneck_link};
  for (const RankCost& r : alltoall.ranks) out.time = std::max(out.time, r.time);
  return out;
}

std::optional<GroupCommTime> GroupDeepEpAllToAllV(const NetworkModel& net,
                                                  const std::vector<uint32_t>& gpus,
                                                  const models::TrafficMatrix& bytes,
                                                  const models::TrafficMatrix& node_bytes,
                                                  uint64_t chunk_bytes, bool reversed) {
  const uint32_t g = GroupGpusPerNode(net.cluster(), gpus);
  if (g == 0) return std::nullopt;
  StatusOr<Schedule> schedule =
      BuildHierarchicalAllToAllV(bytes, g, Rail::kSource, node_bytes, chunk_bytes);
  // As GroupHierarchicalAllToAllV: the shape was checked, the node bytes fit the copies.
  if (!schedule.ok()) throw std::logic_error(schedule.error().message());
  Schedule s = reversed ? Reversed(*schedule) : *std::move(schedule);
  MapOntoGroup(s, gpus);
  s.ranks = net.cluster().total_gpus();  // RelayedAllToAll's ranks are the cluster's GPUs
  return Slowest(net.RelayedAllToAll(s));
}

}  // namespace moesim::sim
