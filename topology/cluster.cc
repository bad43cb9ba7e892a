#include "topology/cluster.h"

#include <filesystem>

#include "proto/host_memory.h"
#include "topology/achieved.h"
#include "topology/fabric.h"
#include "topology/nccl_xml.h"
#include "topology/presets.h"

namespace moesim::topology {
namespace {

Location Where(const TextFile* file, std::string_view field) {
  return file ? file->Locate(field) : Location{};
}

StatusOr<NodeTemplate> ResolveNode(const pb::Cluster& spec, const TextFile* file,
                                   std::string* description) {
  const int given = !spec.node_preset().empty() + spec.has_node() + !spec.nccl_topology().empty();
  if (given != 1) {
    return InputError(Where(file, "cluster"), "cluster", "",
                      given == 0 ? "no node given" : "more than one node given",
                      "exactly one of node_preset: \"NAME\" (" + Join(NodePresetNames()) +
                          "), node { ... }, nccl_topology: \"FILE.xml\"");
  }
  if (!spec.node_preset().empty()) {
    MOESIM_ASSIGN_OR_RETURN(NodePreset preset,
                            FindNodePreset(spec.node_preset(), Where(file, "cluster.node_preset")));
    *description = preset.shape.name;
    if (!spec.gpu().empty()) {
      return InputError(Where(file, "cluster.gpu"), "cluster.gpu", "\"" + spec.gpu() + "\"",
                        "a preset fixes its GPU model", "leave gpu out, or use node { gpu: ... }");
    }
    return NodeFromShape(preset.shape, Where(file, "cluster.node_preset"));
  }
  if (spec.has_node()) {
    MOESIM_ASSIGN_OR_RETURN(NodeTemplate node, NodeFromSpec(spec.node(), file, "cluster.node"));
    *description = node.name;
    return node;
  }
  std::filesystem::path path = spec.nccl_topology();
  if (path.is_relative() && file != nullptr) {
    path = std::filesystem::path(file->path()).parent_path() / path;
  }
  *description = path.string();
  if (!spec.gpu().empty()) {
    if (auto gpu = FindGpu(spec.gpu(), Where(file, "cluster.gpu")); !gpu.ok()) return gpu.error();
  }
  return NodeFromNcclXml(path.string(), spec.gpu());
}

// "major.minor" (a patch after it is allowed: "2.28.9"), as major x 100 + minor, 2.19 or later;
// an error names `field`.
StatusOr<uint32_t> ParseNcclVersion(const std::string& text, const Location& where,
                                    const std::string& field) {
  uint32_t major = 0, minor = 0;
  size_t i = 0;
  const auto number = [&](uint32_t& out) {
    const size_t start = i;
    while (i < text.size() && i - start < 4 && text[i] >= '0' && text[i] <= '9')
      out = out * 10 + static_cast<uint32_t>(text[i++] - '0');
    return i > start;
  };
  bool ok = number(major) && i < text.size() && text[i++] == '.' && number(minor);
  if (ok && i < text.size()) {
    uint32_t patch = 0;
    ok = text[i++] == '.' && number(patch) && i == text.size();
  }
  if (!ok || minor > 99) {
    return InputError(where, field, "\"" + text + "\"", "is not an NCCL release as major.minor",
                      "a release such as \"2.28\" or \"2.28.9\"");
  }
  const uint32_t version = major * 100 + minor;
  if (version < kEarliestNcclVersion) {
    return InputError(where, field, "\"" + text + "\"",
                      "is older than moesim models (NCCL 2.19's send/recv channels over the "
                      "network)",
                      "\"2.19\" or later");
  }
  return version;
}

}  // namespace

double EstimateClusterBytes(uint32_t nodes, const NodeTemplate& node) {
  constexpr double kBytesPerElement = 505;  // measured, cluster.h
  return kBytesPerElement * nodes *
         (static_cast<double>(node.devices.size()) + 2.0 * static_cast<double>(node.links.size()));
}

StatusOr<Cluster> BuildCluster(const pb::Cluster& spec, const TextFile* file) {
  Cluster cluster;
  MOESIM_ASSIGN_OR_RETURN(cluster.node_, ResolveNode(spec, file, &cluster.description_));
  const NodeTemplate& node = cluster.node_;

  const uint32_t nodes = spec.has_nodes() ? spec.nodes() : 1;
  if (nodes < 1) {
    return InputError(Where(file, "cluster.nodes"), "cluster.nodes", "0", "a cluster has nodes",
                      "an integer >= 1");
  }
  cluster.nodes_ = nodes;
  const uint32_t per_node = node.CountOf(DeviceKind::kGpu);
  const uint32_t total = nodes * per_node;
  const uint32_t used = spec.has_gpus() ? spec.gpus() : total;
  if (used < 1 || used > total) {
    return InputError(Where(file, "cluster.gpus"), "cluster.gpus", std::to_string(used),
                      "more GPUs than the cluster has, or none",
                      "1 to " + std::to_string(total) + " (" + std::to_string(nodes) + " x " +
                          std::to_string(per_node) + " GPUs of " + cluster.description_ + ")");
  }
  cluster.used_gpus_ = used;
  // Before the copies: what they would take against what the machine has.
  MOESIM_RETURN_IF_ERROR(CheckFitsInMemory(EstimateClusterBytes(nodes, node),
                                           "the graph of " + std::to_string(nodes) + " nodes",
                                           "use fewer cluster.nodes", AvailableHostBytes()));

  // Copy the node template `nodes` times. Devices are named "node<n>/<id>" and numbered per kind
  // across the cluster; GPU i of node n is GPU n * per_node + i.
  cluster.graph_ = std::make_unique<Graph>();
  Graph& g = *cluster.graph_;
  std::vector<uint32_t> next_index(kDeviceKinds, 0);
  std::vector<std::vector<Edge>> node_edges(nodes);
  cluster.node_vertices_.resize(nodes);
  FabricInputs fabric;
  fabric.nodes = nodes;
  fabric.nic_bandwidth = node.nic_bandwidth;
  fabric.nic_latency = node.nic_latency;
  fabric.nics.resize(nodes);
  for (uint32_t n = 0; n < nodes; ++n) {
    auto& vertices = cluster.node_vertices_[n];
    for (const auto& d : node.devices) {
      const uint32_t index = next_index[static_cast<int>(d.kind)]++;
      vertices.push_back(
          AddDevice(g, Device{d.kind, "node" + std::to_string(n) + "/" + d.id, index, n, 0}));
      if (d.kind == DeviceKind::kGpu) cluster.gpu_vertices_.push_back(vertices.back());
      if (d.kind == DeviceKind::kNic) fabric.nics[n].push_back(vertices.back());
    }
    for (const auto& l : node.links) {
      node_edges[n].push_back(boost::add_edge(vertices[l.a], vertices[l.b], l.link, g).first);
      node_edges[n].push_back(boost::add_edge(vertices[l.b], vertices[l.a], l.link, g).first);
    }
  }
  if (nodes > 1 || spec.has_fabric()) {
    MOESIM_RETURN_IF_ERROR(AddFabric(g, spec.fabric(), fabric, file, "cluster.fabric"));
  }
  cluster.net_latency_ = Duration::Nanoseconds(spec.fabric().net_latency_ns());
  if (spec.fabric().sharp() && spec.fabric().ethernet()) {
    return InputError(Where(file, "cluster.fabric.sharp"), "cluster.fabric.sharp", "true",
                      "SHARP reduces in InfiniBand switches, and this fabric is Ethernet",
                      "sharp: false, or an InfiniBand fabric (no ethernet: true)");
  }
  cluster.sharp_ = spec.fabric().sharp();
  if (!spec.nccl_version().empty()) {
    MOESIM_ASSIGN_OR_RETURN(
        cluster.nccl_version_,
        ParseNcclVersion(spec.nccl_version(), Where(file, "cluster.nccl_version"),
                         "cluster.nccl_version"));
  }
  // Every model prices links at what they achieve (topology/achieved.h), not their line rate.
  DerateLinks(g, node.gpu, spec.line_rate());
  uint32_t edge_id = 0;
  for (auto [it, end] = boost::edges(g); it != end; ++it) g[*it].id = edge_id++;
  cluster.router_ =
      std::make_unique<Router>(g, node, cluster.node_vertices_, std::move(node_edges));
  if (auto pair = cluster.router_->FindUnreachable()) {
    return InputError(
        Where(file, "cluster"), "cluster", cluster.description_,
        "gpu" + std::to_string(pair->first) + " cannot reach gpu" + std::to_string(pair->second),
        "a topology in which every GPU reaches every other");
  }
  return cluster;
}

Status SetNcclVersionArgument(Cluster& cluster, const std::string& nccl_version) {
  if (nccl_version.empty()) return Status::Ok();
  MOESIM_ASSIGN_OR_RETURN(const uint32_t version,
                          ParseNcclVersion(nccl_version, {}, "--nccl-version"));
  cluster.set_nccl_version(version);
  return Status::Ok();
}

StatusOr<Cluster> LoadClusterArgument(const std::string& preset_or_file, const std::string& gpu) {
  pb::Cluster spec;
  const std::filesystem::path path(preset_or_file);
  if (path.extension() == ".xml") {
    spec.set_nccl_topology(preset_or_file);
    spec.set_gpu(gpu);
    return BuildCluster(spec);
  }
  if (path.extension() == ".pbtxt") {
    MOESIM_ASSIGN_OR_RETURN(TextFile file, TextFile::Parse(preset_or_file, &spec));
    // The file is a Cluster message: its fields are what a scenario writes under `cluster`.
    file.set_root_field("cluster");
    if (!gpu.empty()) spec.set_gpu(gpu);
    return BuildCluster(spec, &file);
  }
  spec.set_node_preset(preset_or_file);
  return BuildCluster(spec);
}

}  // namespace moesim::topology
