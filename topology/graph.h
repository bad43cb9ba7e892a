// The cluster as a Boost.Graph graph: devices are vertices, each link direction is its own edge
// with its own bandwidth and latency (so asymmetric links and per-direction contention can be
// modelled).
//
//   Graph g;
//   auto gpu = AddDevice(g, {DeviceKind::kGpu, "node0/gpu0", 0, 0});
//   auto sw = AddDevice(g, {DeviceKind::kNvSwitch, "node0/nvswitch0", 0, 0});
//   AddDuplexLink(g, gpu, sw, {LinkClass::kNvLink, Rate::GigaPerSecond(450),
//   Duration::Nanoseconds(500)});
//
// A Graph is a plain value: build it once, then read it from any number of threads.
#pragma once

#include <boost/graph/adjacency_list.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proto/units.h"

namespace moesim::topology {

enum class DeviceKind { kGpu, kNvSwitch, kPcieSwitch, kCpu, kNic, kNetworkSwitch };
inline constexpr int kDeviceKinds = 6;
std::string_view ToString(DeviceKind kind);

// Link classes are what calibration tunes separately (each gets its own latency and bandwidth fit).
enum class LinkClass { kNvLink, kPcie, kInfiniBand, kEthernet, kInterSocket };
inline constexpr int kLinkClasses = 5;
std::string_view ToString(LinkClass link_class);

struct Device {
  DeviceKind kind = DeviceKind::kGpu;
  std::string name;    // unique in the cluster, e.g. "node3/gpu5", "spine2"
  uint32_t index = 0;  // position among the cluster's devices of the same kind, from 0
  // The node the device sits in; network switches belong to none.
  std::optional<uint32_t> node;
  // Network switches: 1 = first tier (leaf, rail switch, torus router), 2 = spine / aggregation,
  // 3 = core. 0 for devices inside nodes.
  uint32_t tier = 0;
};

// One direction of a physical connection.
struct Link {
  LinkClass link_class = LinkClass::kNvLink;
  // Line rate: bytes per second in this direction, as the datasheet quotes it.
  Rate bandwidth;
  Duration latency;  // time for the first byte to cross, this direction
  // Physical links bundled in this edge (an H100's 18 NVLinks to 4 NVSwitch chips are 4 edges of
  // 5, 5, 4 and 4; a preset's single NVSwitch vertex gets one edge of 18).
  uint32_t count = 1;
  // Position among the cluster graph's edges (0 .. num_edges-1), for per-link arrays; set when the
  // cluster is built.
  uint32_t id = 0;
  // What the link achieves (bandwidth x topology/achieved.h's fraction for its class): what every
  // network model prices with. Set when the cluster is built (BuildCluster); equal to `bandwidth`
  // with the cluster's `line_rate: true`.
  Rate achieved = Rate();
};

using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, Device, Link>;
using Vertex = boost::graph_traits<Graph>::vertex_descriptor;
using Edge = boost::graph_traits<Graph>::edge_descriptor;

Vertex AddDevice(Graph& graph, Device device);
// Adds a -> b and b -> a, both with `link`.
void AddDuplexLink(Graph& graph, Vertex a, Vertex b, const Link& link);

// Sum of the bandwidth of the links leaving (injection) or entering (ejection) a vertex, optionally
// only those of one class.
Rate InjectionBandwidth(const Graph& graph, Vertex v, std::optional<LinkClass> only = {});
Rate EjectionBandwidth(const Graph& graph, Vertex v, std::optional<LinkClass> only = {});

}  // namespace moesim::topology
