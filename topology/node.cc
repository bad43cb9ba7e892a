#include "topology/node.h"

#include <cmath>
#include <map>
#include <queue>

#include "proto/checked.h"
#include "topology/defaults.h"

namespace moesim::topology {
namespace {

Location Where(const TextFile* file, const std::string& field) {
  return file ? file->Locate(field) : Location{};
}


// A bandwidth or latency a user wrote, in the range every link of a cluster file declares
// (proto/cluster.proto): files were checked as they were read; this covers nodes built in code.
StatusOr<Rate> PositiveGbps(double gbps, const Location& where, const std::string& field) {
  return CheckedGigaPerSecond(gbps, DeclaredRange<pb::LinkSpec>("bandwidth_gbps"), where, field);
}

StatusOr<Duration> LatencyOr(const std::optional<double>& ns, Duration fallback,
                             const Location& where, const std::string& field) {
  if (!ns) return fallback;
  return CheckedNanoseconds(*ns, DeclaredRange<pb::LinkSpec>("latency_ns"), where, field);
}

DeviceKind KindFromProto(pb::DeviceKind kind) {
  switch (kind) {
    case pb::NVSWITCH:
      return DeviceKind::kNvSwitch;
    case pb::PCIE_SWITCH:
      return DeviceKind::kPcieSwitch;
    case pb::CPU:
      return DeviceKind::kCpu;
    case pb::NIC:
      return DeviceKind::kNic;
    case pb::NETWORK_SWITCH:
      return DeviceKind::kNetworkSwitch;
    default:
      return DeviceKind::kGpu;
  }
}

LinkClass ClassFromProto(pb::LinkClass c) {
  switch (c) {
    case pb::PCIE:
      return LinkClass::kPcie;
    case pb::INFINIBAND:
      return LinkClass::kInfiniBand;
    case pb::ETHERNET:
      return LinkClass::kEthernet;
    case pb::INTER_SOCKET:
      return LinkClass::kInterSocket;
    default:
      return LinkClass::kNvLink;
  }
}

StatusOr<NodeTemplate> NodeFromDevices(const pb::NodeSpec& spec, const TextFile* file,
                                       const std::string& field, GpuSpec gpu) {
  NodeTemplate node;
  node.name = spec.name().empty() ? "custom" : spec.name();
  node.gpu = std::move(gpu);
  std::map<std::string, uint32_t> index_of;
  // GPUs first so that GPU order is the order of their `device` entries.
  for (bool gpus : {true, false}) {
    for (int i = 0; i < spec.device_size(); ++i) {
      const pb::DeviceSpec& d = spec.device(i);
      if ((d.kind() == pb::GPU) != gpus) continue;
      const std::string f = field + ".device[" + std::to_string(i) + "]";
      if (d.id().empty()) {
        return InputError(Where(file, f), f + ".id", "\"\"", "every device needs an id",
                          "a name unique in the node");
      }
      if (d.kind() == pb::DEVICE_KIND_UNSPECIFIED || d.kind() == pb::NETWORK_SWITCH) {
        return InputError(Where(file, f + ".kind"), f + ".kind", pb::DeviceKind_Name(d.kind()),
                          "not a device inside a node", "GPU, NVSWITCH, PCIE_SWITCH, CPU, NIC");
      }
      if (!index_of.emplace(d.id(), static_cast<uint32_t>(node.devices.size())).second) {
        return InputError(Where(file, f + ".id"), f + ".id", "\"" + d.id() + "\"",
                          "duplicate device id", "ids unique in the node");
      }
      node.devices.push_back({KindFromProto(d.kind()), d.id()});
    }
  }
  if (node.CountOf(DeviceKind::kGpu) == 0) {
    return InputError(Where(file, field), field + ".device", "", "the node has no GPU",
                      "at least one `device { id: \"gpu0\" kind: GPU }`");
  }
  for (int i = 0; i < spec.link_size(); ++i) {
    const pb::LinkSpec& l = spec.link(i);
    const std::string f = field + ".link[" + std::to_string(i) + "]";
    const std::vector<std::string> ids = [&] {
      std::vector<std::string> out;
      for (const auto& [id, _] : index_of) out.push_back("\"" + id + "\"");
      return out;
    }();
    for (const auto& [end, name] : {std::pair{l.a(), "a"}, std::pair{l.b(), "b"}}) {
      if (!index_of.count(end)) {
        return InputError(Where(file, f + "." + name), f + "." + name, "\"" + end + "\"",
                          "no device with this id", Join(ids));
      }
    }
    if (l.a() == l.b()) {
      return InputError(Where(file, f + ".b"), f + ".b", "\"" + l.b() + "\"",
                        "a link joins two different devices", "another device's id");
    }
    if (l.link_class() == pb::LINK_CLASS_UNSPECIFIED) {
      return InputError(Where(file, f), f + ".link_class", "", "missing",
                        "NVLINK, PCIE, INFINIBAND, ETHERNET, INTER_SOCKET");
    }
    MOESIM_ASSIGN_OR_RETURN(Rate bw,
                            PositiveGbps(l.bandwidth_gbps(), Where(file, f + ".bandwidth_gbps"),
                                         f + ".bandwidth_gbps"));
    MOESIM_ASSIGN_OR_RETURN(
        Duration lat,
        LatencyOr(l.latency_ns(), {}, Where(file, f + ".latency_ns"), f + ".latency_ns"));
    node.links.push_back(
        {index_of[l.a()], index_of[l.b()], Link{ClassFromProto(l.link_class()), bw, lat}});
  }
  if (spec.has_nics()) {
    MOESIM_ASSIGN_OR_RETURN(
        node.nic_bandwidth,
        PositiveGbps(spec.nics().gbit_per_s() / 8, Where(file, field + ".nics.gbit_per_s"),
                     field + ".nics.gbit_per_s"));
    MOESIM_ASSIGN_OR_RETURN(
        node.nic_latency,
        LatencyOr(spec.nics().has_latency_ns() ? std::optional<double>(spec.nics().latency_ns())
                                               : std::nullopt,
                  defaults::kNicHop, Where(file, field + ".nics.latency_ns"),
                  field + ".nics.latency_ns"));
  } else if (node.CountOf(DeviceKind::kNic) > 0) {
    return InputError(Where(file, field), field + ".nics", "",
                      "the node has NIC devices but no line rate", "nics { gbit_per_s: 400 }");
  }
  MOESIM_RETURN_IF_ERROR(CheckNodeConnected(node, Where(file, field)));
  return node;
}

}  // namespace

uint32_t NodeTemplate::CountOf(DeviceKind kind) const {
  uint32_t n = 0;
  for (const DeviceEntry& d : devices) n += d.kind == kind;
  return n;
}

std::vector<uint32_t> NodeTemplate::IndicesOf(DeviceKind kind) const {
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < devices.size(); ++i) {
    if (devices[i].kind == kind) out.push_back(i);
  }
  return out;
}

StatusOr<NodeTemplate> NodeFromShape(const NodeShape& shape, const Location& where) {
  MOESIM_ASSIGN_OR_RETURN(GpuSpec gpu, FindGpu(shape.gpu, where));
  if (shape.gpus == 0) {
    return InputError(where, "gpus", "0", "a node needs GPUs", "an integer >= 1");
  }
  const uint32_t switches = shape.pcie_switches == 0 ? shape.gpus : shape.pcie_switches;
  const uint32_t cpus = shape.cpus == 0 ? 1 : shape.cpus;
  if (switches > shape.gpus || cpus > switches) {
    return InputError(where, "pcie",
                      std::to_string(switches) + " switches, " + std::to_string(cpus) + " cpus",
                      "more PCIe switches than GPUs, or more CPUs than switches",
                      "1 <= cpus <= switches <= gpus");
  }
  NodeTemplate node;
  node.name = shape.name;
  node.gpu = std::move(gpu);
  node.nic_bandwidth = shape.nic_bandwidth;
  node.nic_latency = shape.nic_latency;
  auto add = [&](DeviceKind kind, std::string id) {
    node.devices.push_back({kind, std::move(id)});
    return static_cast<uint32_t>(node.devices.size() - 1);
  };
  std::vector<uint32_t> gpus, pcie, cpu, nics;
  for (uint32_t i = 0; i < shape.gpus; ++i)
    gpus.push_back(add(DeviceKind::kGpu, "gpu" + std::to_string(i)));
  if (shape.nvlink_bandwidth.per_second() > 0) {
    const uint32_t sw = add(DeviceKind::kNvSwitch, "nvswitch");
    for (uint32_t g : gpus) {
      node.links.push_back({g, sw,
                            Link{LinkClass::kNvLink, shape.nvlink_bandwidth, shape.nvlink_latency,
                                 shape.nvlink_links}});
    }
  }
  for (uint32_t i = 0; i < cpus; ++i)
    cpu.push_back(add(DeviceKind::kCpu, "cpu" + std::to_string(i)));
  const Link pcie_link{LinkClass::kPcie, shape.pcie_bandwidth, shape.pcie_latency};
  for (uint32_t i = 0; i < switches; ++i) {
    pcie.push_back(add(DeviceKind::kPcieSwitch, "pcie" + std::to_string(i)));
    node.links.push_back({pcie.back(), cpu[i * cpus / switches], pcie_link});
  }
  for (uint32_t i = 0; i < shape.gpus; ++i) {
    node.links.push_back({gpus[i], pcie[i * switches / shape.gpus], pcie_link});
  }
  for (uint32_t i = 0; i < shape.nics; ++i) {
    nics.push_back(add(DeviceKind::kNic, "nic" + std::to_string(i)));
    node.links.push_back({nics.back(), pcie[i * switches / shape.nics], pcie_link});
  }
  for (uint32_t i = 0; i + 1 < cpus; i += 2) {
    node.links.push_back(
        {cpu[i], cpu[i + 1],
         Link{LinkClass::kInterSocket, shape.inter_socket_bandwidth, shape.inter_socket_latency}});
  }
  return node;
}

StatusOr<NodeTemplate> NodeFromSpec(const pb::NodeSpec& spec, const TextFile* file,
                                    const std::string& field) {
  if (spec.gpu().empty()) {
    return InputError(Where(file, field), field + ".gpu", "", "missing", [] {
      std::vector<std::string> names;
      for (const GpuSpec& g : KnownGpus()) names.push_back(g.name);
      return Join(names);
    }());
  }
  MOESIM_ASSIGN_OR_RETURN(GpuSpec gpu, FindGpu(spec.gpu(), Where(file, field + ".gpu")));
  const bool by_devices = spec.device_size() > 0 || spec.link_size() > 0;
  if (by_devices) {
    if (spec.gpus() != 0 || spec.has_nvlink() || spec.has_pcie()) {
      return InputError(Where(file, field), field, "",
                        "a node is given either by shape (gpus, nvlink, pcie) or device by device "
                        "(device, link), not both",
                        "one of the two forms");
    }
    return NodeFromDevices(spec, file, field, std::move(gpu));
  }

  NodeShape shape;
  shape.name = spec.name().empty() ? "custom" : spec.name();
  shape.gpu = spec.gpu();
  shape.gpus = spec.gpus();
  if (shape.gpus == 0) {
    return InputError(Where(file, field + ".gpus"), field + ".gpus", "0", "missing or zero",
                      "the GPUs in the node, >= 1 (or list them as `device` entries)");
  }
  auto opt = [](bool has, double v) { return has ? std::optional<double>(v) : std::nullopt; };
  if (spec.has_nvlink()) {
    const std::string f = field + ".nvlink";
    MOESIM_ASSIGN_OR_RETURN(shape.nvlink_bandwidth, PositiveGbps(spec.nvlink().bandwidth_gbps(),
                                                                 Where(file, f + ".bandwidth_gbps"),
                                                                 f + ".bandwidth_gbps"));
    MOESIM_ASSIGN_OR_RETURN(
        shape.nvlink_latency,
        LatencyOr(opt(spec.nvlink().has_latency_ns(), spec.nvlink().latency_ns()),
                  defaults::kNvLinkHop, Where(file, f + ".latency_ns"), f + ".latency_ns"));
  }
  const pb::PcieSpec& p = spec.pcie();
  const std::string pf = field + ".pcie";
  shape.pcie_switches = p.switches();
  shape.cpus = p.cpus();
  shape.pcie_bandwidth = defaults::kPcieGen5x16;
  if (p.has_bandwidth_gbps()) {
    MOESIM_ASSIGN_OR_RETURN(shape.pcie_bandwidth,
                            PositiveGbps(p.bandwidth_gbps(), Where(file, pf + ".bandwidth_gbps"),
                                         pf + ".bandwidth_gbps"));
  }
  MOESIM_ASSIGN_OR_RETURN(shape.pcie_latency,
                          LatencyOr(opt(p.has_latency_ns(), p.latency_ns()), defaults::kPcieHop,
                                    Where(file, pf + ".latency_ns"), pf + ".latency_ns"));
  shape.inter_socket_bandwidth = defaults::kInterSocket;
  if (p.has_inter_socket_bandwidth_gbps()) {
    MOESIM_ASSIGN_OR_RETURN(shape.inter_socket_bandwidth,
                            PositiveGbps(p.inter_socket_bandwidth_gbps(),
                                         Where(file, pf + ".inter_socket_bandwidth_gbps"),
                                         pf + ".inter_socket_bandwidth_gbps"));
  }
  shape.inter_socket_latency = defaults::kInterSocketHop;
  if (spec.has_nics()) {
    const std::string f = field + ".nics";
    shape.nics = spec.nics().count();
    if (shape.nics == 0) {
      return InputError(Where(file, f + ".count"), f + ".count", "0", "missing or zero",
                        "NICs in the node, >= 1 (or leave out `nics` for none)");
    }
    MOESIM_ASSIGN_OR_RETURN(shape.nic_bandwidth,
                            PositiveGbps(spec.nics().gbit_per_s() / 8,
                                         Where(file, f + ".gbit_per_s"), f + ".gbit_per_s"));
    MOESIM_ASSIGN_OR_RETURN(
        shape.nic_latency,
        LatencyOr(opt(spec.nics().has_latency_ns(), spec.nics().latency_ns()), defaults::kNicHop,
                  Where(file, f + ".latency_ns"), f + ".latency_ns"));
  }
  return NodeFromShape(shape, Where(file, field));
}

Status CheckNodeConnected(const NodeTemplate& node, const Location& where) {
  std::vector<std::vector<uint32_t>> adjacent(node.devices.size());
  for (const auto& l : node.links) {
    adjacent[l.a].push_back(l.b);
    adjacent[l.b].push_back(l.a);
  }
  const std::vector<uint32_t> gpus = node.IndicesOf(DeviceKind::kGpu);
  std::vector<bool> seen(node.devices.size(), false);
  std::queue<uint32_t> frontier;
  frontier.push(gpus.front());
  seen[gpus.front()] = true;
  while (!frontier.empty()) {
    const uint32_t v = frontier.front();
    frontier.pop();
    for (uint32_t w : adjacent[v]) {
      if (!seen[w]) {
        seen[w] = true;
        frontier.push(w);
      }
    }
  }
  for (uint32_t i = 0; i < node.devices.size(); ++i) {
    const auto& d = node.devices[i];
    if (!seen[i] && (d.kind == DeviceKind::kGpu || d.kind == DeviceKind::kNic)) {
      return InputError(where, "node " + node.name, d.id,
                        std::string(ToString(d.kind)) + " " + d.id + " cannot reach " +
                            node.devices[gpus.front()].id,
                        "links that connect every GPU and NIC");
    }
  }
  return Status::Ok();
}

}  // namespace moesim::topology
