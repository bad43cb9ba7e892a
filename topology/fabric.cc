#include "topology/fabric.h"

#include <cmath>

#include "topology/defaults.h"

namespace moesim::topology {
namespace {

struct Builder {
  Graph& graph;
  const FabricInputs& in;
  const TextFile* file;
  std::string field;
  LinkClass link_class;
  Duration switch_latency;
  uint32_t switches = 0;

  Location Where(const std::string& f) const { return file ? file->Locate(f) : Location{}; }

  Vertex Switch(const std::string& name, uint32_t tier) {
    Device d{DeviceKind::kNetworkSwitch, name, switches++, std::nullopt, tier};
    return AddDevice(graph, std::move(d));
  }
  void NicLink(Vertex nic, Vertex sw) {
    AddDuplexLink(graph, nic, sw, Link{link_class, in.nic_bandwidth, in.nic_latency});
  }
  void SwitchLink(Vertex a, Vertex b, Rate bandwidth) {
    AddDuplexLink(graph, a, b, Link{link_class, bandwidth, switch_latency});
  }
  uint32_t NicsPerNode() const {
    return in.nics.empty() ? 0 : static_cast<uint32_t>(in.nics[0].size());
  }

  StatusOr<double> Ratio(bool has, double value, const std::string& f) const {
    if (!has) return 1.0;
    if (!(value >= 1) || !std::isfinite(value)) {
      return InputError(Where(f), f, std::to_string(value), "an oversubscription ratio is >= 1",
                        "1 (non-blocking), 2 (2:1), ...");
    }
    return value;
  }
  Status Divides(uint32_t part, uint32_t whole, const std::string& f,
                 const std::string& what) const {
    if (part == 0 || whole % part != 0) {
      return InputError(Where(f), f, std::to_string(part), "does not divide the " + what,
                        "a divisor of " + std::to_string(whole));
    }
    return Status::Ok();
  }
};

Status SingleSwitch(Builder& b) {
  const Vertex sw = b.Switch("switch", 1);
  for (const auto& node : b.in.nics) {
    for (Vertex nic : node) b.NicLink(nic, sw);
  }
  return Status::Ok();
}

// Every `lower` switch connects to every `upper` one; each lower switch's uplinks together carry
// `down_bandwidth / ratio`.
void Bipartite(Builder& b, const std::vector<Vertex>& lower, const std::vector<Vertex>& upper,
               Rate down_bandwidth, double ratio) {
  const double per_link = static_cast<double>(down_bandwidth.per_second()) / ratio / upper.size();
  const Rate bw = Rate::PerSecond(static_cast<uint64_t>(std::llround(per_link)));
  for (Vertex l : lower) {
    for (Vertex u : upper) b.SwitchLink(l, u, bw);
  }
}

uint32_t UplinkPorts(uint32_t down_ports, double ratio) {
  return std::max<uint32_t>(1, static_cast<uint32_t>(std::ceil(down_ports / ratio)));
}

Status RailOptimized(Builder& b, const pb::RailOptimized& spec) {
  const std::string f = b.field + ".rail_optimized";
  const uint32_t group = spec.nodes_per_group() == 0 ? b.in.nodes : spec.nodes_per_group();
  MOESIM_RETURN_IF_ERROR(b.Divides(group, b.in.nodes, f + ".nodes_per_group", "nodes"));
  MOESIM_ASSIGN_OR_RETURN(double ratio, b.Ratio(spec.has_oversubscription(),
                                                spec.oversubscription(), f + ".oversubscription"));
  const uint32_t rails = b.NicsPerNode();
  std::vector<Vertex> leaves;
  for (uint32_t g = 0; g * group < b.in.nodes; ++g) {
    for (uint32_t r = 0; r < rails; ++r) {
      const Vertex leaf = b.Switch("group" + std::to_string(g) + "/rail" + std::to_string(r), 1);
      for (uint32_t n = g * group; n < (g + 1) * group; ++n) b.NicLink(b.in.nics[n][r], leaf);
      leaves.push_back(leaf);
    }
  }
  // One group and no ratio asked for: rails still need spines to reach each other (cross-rail
  // traffic), so spines are built whenever there is more than one rail switch.
  if (leaves.size() <= 1) return Status::Ok();
  const uint32_t spines = spec.spines() != 0 ? spec.spines() : UplinkPorts(group, ratio);
  std::vector<Vertex> spine;
  for (uint32_t s = 0; s < spines; ++s) spine.push_back(b.Switch("spine" + std::to_string(s), 2));
  Bipartite(b, leaves, spine, Rate::PerSecond(b.in.nic_bandwidth.per_second() * group), ratio);
  return Status::Ok();
}

Status FatTree(Builder& b, const pb::FatTree& spec) {
  const std::string f = b.field + ".fat_tree";
  if (spec.tiers() != 2 && spec.tiers() != 3) {
    return InputError(b.Where(f + ".tiers"), f + ".tiers", std::to_string(spec.tiers()),
                      "unsupported number of tiers", "2 (leaf-spine) or 3 (leaf-aggregation-core)");
  }
  MOESIM_RETURN_IF_ERROR(
      b.Divides(spec.nodes_per_leaf(), b.in.nodes, f + ".nodes_per_leaf", "nodes"));
  MOESIM_ASSIGN_OR_RETURN(double ratio, b.Ratio(spec.has_oversubscription(),
                                                spec.oversubscription(), f + ".oversubscription"));
  const uint32_t per_leaf = spec.nodes_per_leaf();
  const uint32_t leaf_count = b.in.nodes / per_leaf;
  const uint32_t down_ports = per_leaf * b.NicsPerNode();
  const Rate leaf_down = Rate::PerSecond(b.in.nic_bandwidth.per_second() * down_ports);
  std::vector<Vertex> leaves;
  for (uint32_t l = 0; l < leaf_count; ++l) {
    leaves.push_back(b.Switch("leaf" + std::to_string(l), 1));
    for (uint32_t n = l * per_leaf; n < (l + 1) * per_leaf; ++n) {
      for (Vertex nic : b.in.nics[n]) b.NicLink(nic, leaves.back());
    }
  }
  const uint32_t spines = spec.spines() != 0 ? spec.spines() : UplinkPorts(down_ports, ratio);
  if (spec.tiers() == 2) {
    if (leaf_count <= 1) return Status::Ok();
    std::vector<Vertex> spine;
    for (uint32_t s = 0; s < spines; ++s) spine.push_back(b.Switch("spine" + std::to_string(s), 2));
    Bipartite(b, leaves, spine, leaf_down, ratio);
    return Status::Ok();
  }
  // Three tiers: pods of leaves_per_pod leaves, each with `spines` aggregation switches.
  MOESIM_RETURN_IF_ERROR(b.Divides(spec.leaves_per_pod(), leaf_count, f + ".leaves_per_pod",
                                   std::to_string(leaf_count) + " leaves"));
  MOESIM_ASSIGN_OR_RETURN(double core_ratio,
                          b.Ratio(spec.has_core_oversubscription(), spec.core_oversubscription(),
                                  f + ".core_oversubscription"));
  const uint32_t pods = leaf_count / spec.leaves_per_pod();
  const uint32_t cores = spec.cores() != 0 ? spec.cores() : spines;
  std::vector<Vertex> aggs_all;
  for (uint32_t p = 0; p < pods; ++p) {
    std::vector<Vertex> pod_leaves(leaves.begin() + p * spec.leaves_per_pod(),
                                   leaves.begin() + (p + 1) * spec.leaves_per_pod());
    std::vector<Vertex> aggs;
    for (uint32_t a = 0; a < spines; ++a) {
      aggs.push_back(b.Switch("pod" + std::to_string(p) + "/agg" + std::to_string(a), 2));
    }
    Bipartite(b, pod_leaves, aggs, leaf_down, ratio);
    aggs_all.insert(aggs_all.end(), aggs.begin(), aggs.end());
  }
  if (pods <= 1) return Status::Ok();
  // An aggregation switch's downlinks carry what its pod's leaves send up to it.
  const double agg_down =
      static_cast<double>(leaf_down.per_second()) / ratio / spines * spec.leaves_per_pod();
  std::vector<Vertex> core;
  for (uint32_t c = 0; c < cores; ++c) core.push_back(b.Switch("core" + std::to_string(c), 3));
  Bipartite(b, aggs_all, core, Rate::PerSecond(static_cast<uint64_t>(std::llround(agg_down))),
            core_ratio);
  return Status::Ok();
}

Status Torus(Builder& b, const pb::Torus& spec) {
  const std::string f = b.field + ".torus";
  uint64_t product = 1;
  for (uint32_t d : spec.dims()) product *= d;
  if (spec.dims_size() < 2 || spec.dims_size() > 3 || product != b.in.nodes ||
      std::find(spec.dims().begin(), spec.dims().end(), 0u) != spec.dims().end()) {
    return InputError(
        b.Where(f + ".dims"), f + ".dims",
        std::to_string(spec.dims_size()) + " dims, product " + std::to_string(product),
        "a torus has 2 or 3 dimensions whose sizes multiply to the node count",
        "dims whose product is " + std::to_string(b.in.nodes));
  }
  const uint32_t ndims = static_cast<uint32_t>(spec.dims_size());
  Rate link = Rate::PerSecond(b.in.nic_bandwidth.per_second() * b.NicsPerNode() / (2 * ndims));
  if (spec.has_link_bandwidth_gbps()) {
    if (!(spec.link_bandwidth_gbps() > 0)) {
      return InputError(b.Where(f + ".link_bandwidth_gbps"), f + ".link_bandwidth_gbps",
                        std::to_string(spec.link_bandwidth_gbps()), "a bandwidth must be positive",
                        "GB/s per direction, > 0");
    }
    link = Rate::GigaPerSecond(spec.link_bandwidth_gbps());
  }
  std::vector<Vertex> routers;
  for (uint32_t n = 0; n < b.in.nodes; ++n) {
    routers.push_back(b.Switch("router" + std::to_string(n), 1));
    for (Vertex nic : b.in.nics[n]) b.NicLink(nic, routers.back());
  }
  // Node n's coordinates: first dimension fastest. Link each node to its + neighbour in every
  // dimension (wrap-around); a dimension of size 2 gets one link, not two parallel ones.
  uint32_t stride = 1;
  for (uint32_t d = 0; d < ndims; ++d) {
    const uint32_t size = spec.dims(static_cast<int>(d));
    for (uint32_t n = 0; n < b.in.nodes; ++n) {
      const uint32_t c = (n / stride) % size;
      if (size == 1 || (size == 2 && c == 1)) continue;
      const uint32_t next = n - c * stride + ((c + 1) % size) * stride;
      b.SwitchLink(routers[n], routers[next], link);
    }
    stride *= size;
  }
  return Status::Ok();
}

}  // namespace

Status AddFabric(Graph& graph, const pb::Fabric& spec, const FabricInputs& in, const TextFile* file,
                 const std::string& field) {
  Builder b{graph,
            in,
            file,
            field,
            spec.ethernet() ? LinkClass::kEthernet : LinkClass::kInfiniBand,
            defaults::kSwitchHop};
  if (spec.has_switch_latency_ns()) {
    if (!(spec.switch_latency_ns() >= 0)) {
      return InputError(b.Where(field + ".switch_latency_ns"), field + ".switch_latency_ns",
                        std::to_string(spec.switch_latency_ns()), "a latency cannot be negative",
                        "nanoseconds, >= 0");
    }
    b.switch_latency = Duration::Picoseconds(std::llround(spec.switch_latency_ns() * 1000));
  }
  if (b.NicsPerNode() == 0) {
    return InputError(b.Where(field), field, "", "the nodes have no NICs to connect",
                      "a node with NICs (a preset, `nics { ... }`, or NICs in the NCCL XML)");
  }
  switch (spec.topology_case()) {
    case pb::Fabric::kSingleSwitch:
      return SingleSwitch(b);
    case pb::Fabric::kRailOptimized:
      return RailOptimized(b, spec.rail_optimized());
    case pb::Fabric::kFatTree:
      return FatTree(b, spec.fat_tree());
    case pb::Fabric::kTorus:
      return Torus(b, spec.torus());
    case pb::Fabric::TOPOLOGY_NOT_SET:
      break;
  }
  return InputError(b.Where(field), field, "", "missing: several nodes need a fabric",
                    "fabric { single_switch {} }, rail_optimized { ... }, fat_tree { ... }, "
                    "torus { ... }");
}

}  // namespace moesim::topology
