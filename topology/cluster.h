// A cluster ready to simulate on: the graph of every device and link, the GPU model, and the GPUs the
// job uses (rank r runs on GPU r). Built from a scenario's `cluster { ... }` block.
//
//   MOESIM_ASSIGN_OR_RETURN(Cluster c, BuildCluster(scenario.cluster(), &file));
//   c.gpus();                       // 8
//   c.Route(0, 3);                  // gpu0 -> nvswitch -> gpu3
//
// Immutable once built; safe to read from several threads.
#pragma once

#include <cstdint>
#include <vector>

#include "proto/cluster.pb.h"
#include "proto/status.h"
#include "proto/text_file.h"
#include "topology/gpu_specs.h"
#include "topology/graph.h"
#include "topology/presets.h"

namespace moesim::topology {

class Cluster {
 public:
  const Graph& graph() const { return graph_; }
  const NodePreset& node() const { return node_; }
  const GpuSpec& gpu_spec() const { return gpu_spec_; }
  uint32_t nodes() const { return nodes_; }
  // GPUs the job uses (ranks 0 .. gpus()-1).
  uint32_t gpus() const { return static_cast<uint32_t>(gpu_vertices_.size()); }
  uint32_t gpus_per_node() const { return node_.gpus_per_node; }

  Vertex gpu_vertex(uint32_t rank) const { return gpu_vertices_.at(rank); }
  // The links traffic from GPU `src` to GPU `dst` crosses, in order (fewest hops). Empty if src == dst.
  std::vector<Edge> Route(uint32_t src, uint32_t dst) const;
  // Sum of the latencies along Route(src, dst).
  Duration RouteLatency(uint32_t src, uint32_t dst) const;

 private:
  friend StatusOr<Cluster> BuildCluster(const pb::Cluster&, const TextFile*);
  Graph graph_;
  NodePreset node_;
  GpuSpec gpu_spec_;
  uint32_t nodes_ = 1;
  std::vector<Vertex> gpu_vertices_;
};

// Builds the cluster a scenario describes. `file`, when given, places errors at the field's line.
StatusOr<Cluster> BuildCluster(const pb::Cluster& spec, const TextFile* file = nullptr);

}  // namespace moesim::topology
