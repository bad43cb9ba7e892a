#include "sim/network/group_comm.h"

#include <algorithm>
#include <bit>
#include <stdexcept>

#include "sim/network/alltoall_hierarchical.h"

namespace moesim::sim {
namespace {

GroupCommTime Run(const NetworkModel& net, const Schedule& schedule) {
  const CollectiveRun run = net.Collective(schedule);
  return {run.total, run.bottleneck_link, run.pipeline_fill};
}

// `compute()`, or the net's memo's answer to the question `key` holds (kind, the group, its
// matrices and options), with the fidelity added.
template <typename Compute>
GroupCommTime Remembered(const NetworkModel& net, MemoKey key, const Compute& compute) {
  if (net.memo() == nullptr) return compute();
  key.Add(static_cast<uint64_t>(net.fidelity())).Add(std::bit_cast<uint64_t>(net.flow_tolerance()));
  return net.memo()->Get(key.Take(), compute);
}

template <typename Compute>
std::optional<GroupCommTime> RememberedRelay(const NetworkModel& net, MemoKey key,
                                             const Compute& compute) {
  // "Does not apply" is remembered as a time of -1 ps, which no collective takes.
  const GroupCommTime t = Remembered(net, std::move(key), [&] {
    return compute().value_or(GroupCommTime{Duration::Picoseconds(-1), {}, {}});
  });
  if (t.time == Duration::Picoseconds(-1)) return std::nullopt;
  return t;
}

GroupCommTime TimeAllToAllV(const NetworkModel& net, const std::vector<uint32_t>& gpus,
                            const models::TrafficMatrix& bytes) {
  if (gpus.size() < 2) return {};
  uint64_t off_diagonal = 0;
  for (uint32_t r = 0; r < bytes.ranks(); ++r) off_diagonal += bytes.SentOffRank(r);
  if (off_diagonal == 0) return {};
  StatusOr<Schedule> schedule = BuildAllToAllV(bytes, CollectiveAlgo::kDirect);
  if (!schedule.ok()) throw std::logic_error(schedule.error().message());
  MapOntoGroup(*schedule, gpus);
  // NCCL's grouped send/recv: a peer on another node gets NCCL's channels for it.
  CapNetPeers(net.cluster(), *schedule);
  return Run(net, *schedule);
}

std::optional<GroupCommTime> TimeHierarchicalAllToAllV(const NetworkModel& net,
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

std::optional<GroupCommTime> TimeDeepEpAllToAllV(const NetworkModel& net,
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

}  // namespace

GroupCommTime GroupAllToAllV(const NetworkModel& net, const std::vector<uint32_t>& gpus,
                             const models::TrafficMatrix& bytes) {
  MemoKey key('V');
  key.Add(gpus).Add(bytes);
  return Remembered(net, std::move(key), [&] { return TimeAllToAllV(net, gpus, bytes); });
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
  MemoKey key('H');
  key.Add(gpus).Add(bytes).Add(node_bytes).Add(reversed ? 1 : 0);
  return RememberedRelay(net, std::move(key), [&] {
    return TimeHierarchicalAllToAllV(net, gpus, bytes, node_bytes, reversed);
  });
}

std::optional<GroupCommTime> GroupDeepEpAllToAllV(const NetworkModel& net,
                                                  const std::vector<uint32_t>& gpus,
                                                  const models::TrafficMatrix& bytes,
                                                  const models::TrafficMatrix& node_bytes,
                                                  uint64_t chunk_bytes, bool reversed) {
  MemoKey key('D');
  key.Add(gpus).Add(bytes).Add(node_bytes).Add(chunk_bytes).Add(reversed ? 1 : 0);
  return RememberedRelay(net, std::move(key), [&] {
    return TimeDeepEpAllToAllV(net, gpus, bytes, node_bytes, chunk_bytes, reversed);
  });
}

GroupCommTime Slowest(const AllToAll& alltoall) {
  GroupCommTime out{Duration(), alltoall.bottleneck_link, Duration()};
  for (const RankCost& r : alltoall.ranks) out.time = std::max(out.time, r.time);
  return out;
}

}  // namespace moesim::sim
