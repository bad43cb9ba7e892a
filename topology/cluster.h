// A cluster ready to simulate on: the graph of every device and link, the node it is made of, the
// GPUs the job uses (rank r runs on GPU r), and the routes between them. Built from a scenario's
// `cluster { ... }` block (or a topology file, or a preset name).
//
//   MOESIM_ASSIGN_OR_RETURN(Cluster c, BuildCluster(scenario.cluster(), &file));
//   c.gpus();                       // 8
//   c.router().Hops(0, 3);          // 2: gpu0 -> nvswitch -> gpu3
//
// Immutable once built; safe to read from several threads. Move-only (the router points into the
// graph).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proto/cluster.pb.h"
#include "proto/status.h"
#include "proto/text_file.h"
#include "proto/units.h"
#include "topology/gpu_specs.h"
#include "topology/graph.h"
#include "topology/node.h"
#include "topology/routes.h"

namespace moesim::topology {

// NCCL releases as major x 100 + minor: the latest, which moesim models, and the earliest a cluster
// may name (cluster.nccl_version).
inline constexpr uint32_t kLatestNcclVersion = 229;
inline constexpr uint32_t kEarliestNcclVersion = 219;

class Cluster {
 public:
  Cluster(Cluster&&) = default;
  Cluster& operator=(Cluster&&) = default;

  const Graph& graph() const { return *graph_; }
  const NodeTemplate& node() const { return node_; }
  const GpuSpec& gpu_spec() const { return node_.gpu; }
  // What the cluster was built from: "dgx-h100", "custom", or the XML file's path.
  const std::string& description() const { return description_; }
  uint32_t nodes() const { return nodes_; }
  uint32_t gpus_per_node() const { return node_.CountOf(DeviceKind::kGpu); }
  // GPUs the job uses (ranks 0 .. gpus()-1) and GPUs the cluster has.
  uint32_t gpus() const { return used_gpus_; }
  uint32_t total_gpus() const { return nodes_ * gpus_per_node(); }
  const Router& router() const { return *router_; }
  // The network transport's latency per crossing (cluster.fabric.net_latency_ns; 0: none beyond
  // NCCL's own network step latencies).
  Duration net_latency() const { return net_latency_; }
  // Whether the switches reduce for NCCL's CollNet (cluster.fabric.sharp: NVIDIA SHARP on
  // InfiniBand, NCCL_COLLNET_ENABLE=1).
  bool sharp() const { return sharp_; }
  // The NCCL release the jobs run (cluster.nccl_version) as major x 100 + minor: 229 for "2.29",
  // the default.
  uint32_t nccl_version() const { return nccl_version_; }
  // What a command's --nccl-version makes it (SetNcclVersionArgument): major x 100 + minor, from
  // kEarliestNcclVersion.
  void set_nccl_version(uint32_t version) { nccl_version_ = version; }
  // A transfer's route latency from GPU src to GPU dst without NCCL's latency model (the MoE
  // layer's all-to-alls, DeepEP's kernels): its links' (Router::Latency), and the transport's
  // net_latency() when it crosses the network.
  Duration RouteLatency(uint32_t src, uint32_t dst) const {
    const Duration links = router_->Latency(src, dst);
    return router_->NodeOf(src) == router_->NodeOf(dst) ? links : links + net_latency_;
  }
  // Assumptions an importer made, for the user to see.
  const std::vector<std::string>& warnings() const { return node_.warnings; }

  Vertex gpu_vertex(uint32_t gpu) const { return gpu_vertices_.at(gpu); }
  // The vertices of node n's devices, in the node template's order.
  const std::vector<Vertex>& node_vertices(uint32_t n) const { return node_vertices_.at(n); }

 private:
  friend StatusOr<Cluster> BuildCluster(const pb::Cluster&, const TextFile*);
  Cluster() = default;

  std::unique_ptr<Graph> graph_;  // on the heap so the router's reference survives moves
  NodeTemplate node_;
  std::string description_;
  uint32_t nodes_ = 1;
  uint32_t used_gpus_ = 0;
  Duration net_latency_;
  bool sharp_ = false;
  uint32_t nccl_version_ = kLatestNcclVersion;
  std::vector<Vertex> gpu_vertices_;
  std::vector<std::vector<Vertex>> node_vertices_;
  std::unique_ptr<Router> router_;
};

// Bytes the graph, routes and fabric of `nodes` copies of `node` take, estimated before BuildCluster
// makes them (it refuses past 90% of MemAvailable, proto/host_memory.h): 505 bytes per device and
// per direction of a link of the node template, measured: `moesim topo show` of HGX H800 nodes on
// a rail fabric peaks at 50.8 MB for 1,024 nodes and 336.9 MB for 8,192, 40,865 B per node more,
// over the template's 23 devices and 2 x 29 links = 81 elements.
double EstimateClusterBytes(uint32_t nodes, const NodeTemplate& node);

// Builds the cluster a scenario describes. `file`, when given, places errors at the field's line
// and resolves a relative `nccl_topology` path against the file's folder.
StatusOr<Cluster> BuildCluster(const pb::Cluster& spec, const TextFile* file = nullptr);

// `moesim topo` accepts a preset name, a cluster .pbtxt (a moesim.pb.Cluster message) or an NCCL
// topology .xml (one node); this turns any of them into a Cluster. `gpu`, when not empty, names the
// GPU model (for an XML that does not say).
StatusOr<Cluster> LoadClusterArgument(const std::string& preset_or_file, const std::string& gpu);

// A command's --nccl-version ("2.28", a patch allowed; empty: leave the cluster's): the NCCL
// release whose rules the cluster's collectives follow, over a preset's or file's. A release moesim
// does not model is an error naming --nccl-version and what is valid.
Status SetNcclVersionArgument(Cluster& cluster, const std::string& nccl_version);

}  // namespace moesim::topology
