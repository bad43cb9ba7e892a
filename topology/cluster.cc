#include "topology/cluster.h"

#include <boost/graph/breadth_first_search.hpp>

#include <algorithm>

namespace moesim::topology {
namespace {

Location Where(const TextFile* file, std::string_view field) {
  return file ? file->Locate(field) : Location{};
}

}  // namespace

StatusOr<Cluster> BuildCluster(const pb::Cluster& spec, const TextFile* file) {
  // An absent node_preset is located at the enclosing `cluster` block (Locate falls back to it).
  MOESIM_ASSIGN_OR_RETURN(NodePreset preset,
                          FindNodePreset(spec.node_preset(), Where(file, "cluster.node_preset")));
  MOESIM_ASSIGN_OR_RETURN(GpuSpec gpu, FindGpu(preset.gpu));

  const uint32_t nodes = spec.has_nodes() ? spec.nodes() : 1;
  if (nodes != 1) {
    return InputError(Where(file, "cluster.nodes"), "cluster.nodes", std::to_string(nodes),
                      "this version simulates one node (fabrics between nodes are not built yet)",
                      "1");
  }
  const uint32_t total = nodes * preset.gpus_per_node;
  const uint32_t used = spec.has_gpus() ? spec.gpus() : total;
  if (used < 1 || used > total) {
    return InputError(Where(file, "cluster.gpus"), "cluster.gpus", std::to_string(used),
                      "more GPUs than the cluster has, or none",
                      "1 to " + std::to_string(total) + " (" + std::to_string(nodes) + " x " +
                          preset.name + ")");
  }

  Cluster cluster;
  cluster.node_ = preset;
  cluster.gpu_spec_ = std::move(gpu);
  cluster.nodes_ = nodes;
  for (uint32_t n = 0; n < nodes; ++n) {
    AddNode(cluster.graph_, preset, n, n * preset.gpus_per_node);
  }
  std::vector<Vertex> gpus(total);
  for (auto [it, end] = boost::vertices(cluster.graph_); it != end; ++it) {
    const Device& d = cluster.graph_[*it];
    if (d.kind == DeviceKind::kGpu) gpus.at(d.index) = *it;
  }
  gpus.resize(used);
  cluster.gpu_vertices_ = std::move(gpus);
  return cluster;
}

std::vector<Edge> Cluster::Route(uint32_t src, uint32_t dst) const {
  const Vertex from = gpu_vertex(src);
  const Vertex to = gpu_vertex(dst);
  if (from == to) return {};
  // Breadth-first search from `from`, recording the edge each vertex was reached by (the edge, not
  // the predecessor vertex, so that parallel links stay distinguishable).
  std::vector<std::optional<Edge>> reached_by(boost::num_vertices(graph_));
  struct EdgeRecorder : boost::default_bfs_visitor {
    std::vector<std::optional<Edge>>* by;
    void tree_edge(Edge e, const Graph& g) const { (*by)[boost::target(e, g)] = e; }
  } visitor;
  visitor.by = &reached_by;
  boost::breadth_first_search(graph_, from, boost::visitor(visitor));

  std::vector<Edge> path;
  for (Vertex v = to; v != from;) {
    const std::optional<Edge>& e = reached_by[v];
    if (!e) return {};  // unreachable; BuildCluster only makes connected graphs
    path.push_back(*e);
    v = boost::source(*e, graph_);
  }
  std::reverse(path.begin(), path.end());
  return path;
}

Duration Cluster::RouteLatency(uint32_t src, uint32_t dst) const {
  Duration total;
  for (const Edge& e : Route(src, dst)) total += graph_[e].latency;
  return total;
}

}  // namespace moesim::topology
