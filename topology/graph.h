// The cluster as a Boost.Graph graph: devices are vertices, each link direction is its own edge with
// its own bandwidth and latency (so asymmetric links and per-direction contention can be modelled).
//
//   Graph g;
//   auto gpu = AddDevice(g, {DeviceKind::kGpu, "gpu0", 0});
//   auto sw = AddDevice(g, {DeviceKind::kNvSwitch, "nvswitch0", 0});
//   AddDuplexLink(g, gpu, sw, {LinkClass::kNvLink, Rate::GigaPerSecond(450), Duration::Nanoseconds(500)});
//
// A Graph is a plain value: build it once, then read it from any number of threads.
#pragma once

#include <boost/graph/adjacency_list.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "proto/units.h"

namespace moesim::topology {

enum class DeviceKind { kGpu, kNvSwitch };
std::string_view ToString(DeviceKind kind);

// Link classes are what calibration tunes separately (each gets its own latency and bandwidth fit).
enum class LinkClass { kNvLink, kPcie, kInfiniBand, kEthernet };
std::string_view ToString(LinkClass link_class);

struct Device {
  DeviceKind kind = DeviceKind::kGpu;
  std::string name;
  uint32_t index = 0;  // position among devices of the same kind, from 0
};

// One direction of a physical connection.
struct Link {
  LinkClass link_class = LinkClass::kNvLink;
  Rate bandwidth;    // bytes per second in this direction
  Duration latency;  // time for the first byte to cross, this direction
};

using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, Device, Link>;
using Vertex = boost::graph_traits<Graph>::vertex_descriptor;
using Edge = boost::graph_traits<Graph>::edge_descriptor;

Vertex AddDevice(Graph& graph, Device device);
// Adds a -> b and b -> a, both with `link`.
void AddDuplexLink(Graph& graph, Vertex a, Vertex b, const Link& link);

// Sum of the bandwidth of the links leaving (injection) or entering (ejection) a vertex.
Rate InjectionBandwidth(const Graph& graph, Vertex v);
Rate EjectionBandwidth(const Graph& graph, Vertex v);

}  // namespace moesim::topology
