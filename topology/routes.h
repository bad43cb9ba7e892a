// Routes: which links traffic from one GPU to another crosses, as NCCL and the fabric send it.
//
//   inside a node   over NVLink when both GPUs have it: every fewest-hop NVLink path, traffic split
//   in
//                   proportion to each path's bottleneck (a GPU stripes over all its NVSwitches);
//                   otherwise the fewest-hop PCIe path (through CPUs if need be)
//   across nodes    GPU -> its nearest NIC over PCIe (GPU-direct RDMA; the NIC with the fewest PCIe
//                   hops, ties spread evenly over GPUs, as NCCL pairs GPUs with NICs), then the
//                   fabric's fewest-hop paths to the NIC nearest the destination GPU, split evenly
//                   at every switch among the next hops that stay shortest (ECMP), then PCIe to the
//                   GPU
//
// Everything per pair is composed from pieces computed once when the Router is built (per-node
// paths, per-GPU NIC uplinks, per-destination-switch distance tables), so a query costs its path's
// length. A node's paths are found towards each destination GPU for every source at once, so
// building them is linear in the GPU pairs they serve (a 1,024-GPU NVLink node: 0.1 s). Immutable
// after construction; safe to query from several threads.
//
//   router.ForEachShare(0, 9, [&](Edge e, double share) { load[e] += share * bytes; });
//   router.SamplePath(0, 9, /*flow=*/42, &path);   // one concrete path, as ECMP hashing picks it
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "topology/graph.h"
#include "topology/node.h"

namespace moesim::topology {

class Router {
 public:
  // `node_vertices[n][i]` is the vertex of the node template's device i in node n;
  // `node_edges[n][2*l]` and `[2*l+1]` the edges of template link l in node n, a -> b and b -> a.
  Router(const Graph& graph, const NodeTemplate& node,
         const std::vector<std::vector<Vertex>>& node_vertices,
         std::vector<std::vector<Edge>> node_edges);

  uint32_t gpus() const { return static_cast<uint32_t>(gpu_node_.size()); }
  uint32_t NodeOf(uint32_t gpu) const { return gpu_node_[gpu]; }

  // Every link traffic from `src` to `dst` crosses, with the fraction of that traffic on it
  // (fractions over the links of one hop sum to 1). Nothing for src == dst.
  void ForEachShare(uint32_t src, uint32_t dst,
                    const std::function<void(Edge, double)>& visit) const;
  // ForEachShare cut in two, for callers that lay many transfers on links (the analytical
  // all-to-all): the links of the route outside the switch fabric (NVLink, PCIe, NIC cables) are
  // appended to `out` as (link id, share), in ForEachShare's order; when the route also crosses
  // switch-to-switch links, the first-tier switches where it enters and leaves them are returned,
  // and ForEachFabricShare(leg) visits those links, the same for every route between the two
  // switches. Together they visit what ForEachShare visits, with the same shares.
  struct FabricLeg {
    Vertex from, to;
  };
  std::optional<FabricLeg> AppendLocalShares(uint32_t src, uint32_t dst,
                                             std::vector<std::pair<uint32_t, double>>* out) const;
  void ForEachFabricShare(FabricLeg leg, const std::function<void(Edge, double)>& visit) const;
  // The edge whose id (Link::id) is `id`, as AppendLocalShares names links.
  Edge EdgeWithId(uint32_t id) const { return edge_by_id_[id]; }
  // One concrete path: `flow` picks among equal-cost choices deterministically (ECMP hashing).
  void SamplePath(uint32_t src, uint32_t dst, uint64_t flow, std::vector<Edge>* path) const;
  // Links crossed (every path of a route has the same count).
  uint32_t Hops(uint32_t src, uint32_t dst) const;
  // Number of distinct paths the route spreads over.
  uint64_t PathCount(uint32_t src, uint32_t dst) const;
  // What one transfer from src to dst can reach alone: min over links of bandwidth / share.
  Rate Bottleneck(uint32_t src, uint32_t dst) const;
  // Latency of the route: the sum over its links (every path has as many links; the largest sum).
  Duration Latency(uint32_t src, uint32_t dst) const;

  // True when every GPU can reach every other; otherwise the first pair that cannot.
  std::optional<std::pair<uint32_t, uint32_t>> FindUnreachable() const;

 private:
  // A path inside the node template: its steps are local_steps_[first_step, + step_count), each
  // a link as 2*link + (1 if traversed b -> a); weight is its share of the pair's traffic.
  struct LocalPath {
    size_t first_step = 0;
    uint32_t step_count = 0;
    double weight = 0;
  };
  // The paths of one pair of local GPUs: local_paths_[first, + count).
  struct PairPaths {
    size_t first = 0, count = 0;
  };
  std::span<const LocalPath> PathsBetween(uint32_t a, uint32_t b) const {
    const PairPaths& p = intra_[size_t{a} * gpus_per_node_ + b];
    return {local_paths_.data() + p.first, p.count};
  }
  std::span<const uint32_t> StepsOf(const LocalPath& p) const {
    return {local_steps_.data() + p.first_step, p.step_count};
  }
  Edge EdgeOf(uint32_t node, uint32_t step) const { return node_edges_[node][step]; }
  void FabricShares(Vertex from_switch, Vertex to_switch, double share,
                    const std::function<void(Edge, double)>& visit) const;
  uint32_t FabricHops(Vertex from_switch, Vertex to_switch) const;

  const Graph& graph_;
  uint32_t gpus_per_node_ = 0;
  std::vector<uint32_t> gpu_node_;
  // [node][step] -> the graph edge of that template link direction.
  std::vector<std::vector<Edge>> node_edges_;
  // [a * gpus_per_node + b] -> the weighted paths from local GPU a to local GPU b, stored flat
  // (one allocation for all pairs, not one per pair: a 1,024-GPU node has a million pairs).
  std::vector<PairPaths> intra_;
  std::vector<LocalPath> local_paths_;
  std::vector<uint32_t> local_steps_;
  // Per local GPU: steps up to its NIC, and that NIC's template index (none if the node has no
  // NIC).
  std::vector<std::vector<uint32_t>> up_;
  std::vector<std::optional<uint32_t>> nic_of_;
  // [node][local NIC number] -> NIC -> first switch edge and back, if the NIC is cabled.
  std::vector<std::vector<std::optional<Edge>>> nic_up_, nic_down_;
  // Template device index -> local NIC number.
  std::vector<std::optional<uint32_t>> nic_number_;
  // Network switches: vertex -> slot; dist_to_[slot of a first-tier switch][slot of any switch] is
  // the fewest hops from that switch to the first-tier one (kUnreachable if none).
  static constexpr uint16_t kUnreachable = 0xffff;
  std::vector<std::optional<uint32_t>> switch_slot_;
  std::vector<std::vector<uint16_t>> dist_to_;
  // Next hops towards each first-tier switch, precomputed so a query never scans a switch's ports:
  // for destination slot t and switch slot v, the ids of the edges v -> w that stay shortest are
  // next_edge_[t][next_offset_[t][v] .. next_offset_[t][v + 1]).
  std::vector<std::vector<uint32_t>> next_offset_, next_edge_;
  std::vector<Edge> edge_by_id_;
  // The next hops from switch `v` towards first-tier switch `to`.
  std::span<const uint32_t> NextHops(Vertex v, Vertex to) const {
    const uint32_t t = *switch_slot_[to], s = *switch_slot_[v];
    const auto& offsets = next_offset_[t];
    return {next_edge_[t].data() + offsets[s], offsets[s + 1] - offsets[s]};
  }
};

}  // namespace moesim::topology
