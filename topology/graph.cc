#include "topology/graph.h"

namespace moesim::topology {

std::string_view ToString(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::kGpu:
      return "gpu";
    case DeviceKind::kNvSwitch:
      return "nvswitch";
    case DeviceKind::kPcieSwitch:
      return "pcie-switch";
    case DeviceKind::kCpu:
      return "cpu";
    case DeviceKind::kNic:
      return "nic";
    case DeviceKind::kNetworkSwitch:
      return "network-switch";
  }
  return "?";
}

std::string_view ToString(LinkClass link_class) {
  switch (link_class) {
    case LinkClass::kNvLink:
      return "nvlink";
    case LinkClass::kPcie:
      return "pcie";
    case LinkClass::kInfiniBand:
      return "infiniband";
    case LinkClass::kEthernet:
      return "ethernet";
    case LinkClass::kInterSocket:
      return "inter-socket";
  }
  return "?";
}

Vertex AddDevice(Graph& graph, Device device) {
  return boost::add_vertex(std::move(device), graph);
}

void AddDuplexLink(Graph& graph, Vertex a, Vertex b, const Link& link) {
  boost::add_edge(a, b, link, graph);
  boost::add_edge(b, a, link, graph);
}

Rate InjectionBandwidth(const Graph& graph, Vertex v, std::optional<LinkClass> only) {
  Rate total;
  for (auto [it, end] = boost::out_edges(v, graph); it != end; ++it) {
    if (!only || graph[*it].link_class == *only) total = total + graph[*it].bandwidth;
  }
  return total;
}

Rate EjectionBandwidth(const Graph& graph, Vertex v, std::optional<LinkClass> only) {
  Rate total;
  for (auto [it, end] = boost::in_edges(v, graph); it != end; ++it) {
    if (!only || graph[*it].link_class == *only) total = total + graph[*it].bandwidth;
  }
  return total;
}

}  // namespace moesim::topology
