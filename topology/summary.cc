#include "topology/summary.h"

#include <algorithm>
#include <boost/graph/graphviz.hpp>
#include <boost/graph/push_relabel_max_flow.hpp>
#include <boost/graph/subgraph.hpp>
#include <map>
#include <sstream>
#include <string>

namespace moesim::topology {
namespace {

using FlowTraits = boost::adjacency_list_traits<boost::vecS, boost::vecS, boost::directedS>;
using FlowGraph = boost::adjacency_list<
    boost::vecS, boost::vecS, boost::directedS, boost::no_property,
    boost::property<
        boost::edge_capacity_t, int64_t,
        boost::property<boost::edge_residual_capacity_t, int64_t,
                        boost::property<boost::edge_reverse_t, FlowTraits::edge_descriptor>>>>;

void AddArc(FlowGraph& f, uint64_t a, uint64_t b, int64_t capacity) {
  auto cap = boost::get(boost::edge_capacity, f);
  auto rev = boost::get(boost::edge_reverse, f);
  const auto e = boost::add_edge(a, b, f).first;
  const auto r = boost::add_edge(b, a, f).first;
  cap[e] = capacity;
  cap[r] = 0;
  rev[e] = r;
  rev[r] = e;
}

// Graphviz attributes (name -> value) of a vertex, an edge, or a whole (sub)graph, as
// boost::write_graphviz prints subgraphs: it reads them from these properties.
using DotAttributes = std::map<std::string, std::string>;
using DotGraph = boost::subgraph<boost::adjacency_list<
    boost::vecS, boost::vecS, boost::undirectedS,
    boost::property<boost::vertex_attribute_t, DotAttributes>,
    boost::property<boost::edge_index_t, int,
                    boost::property<boost::edge_attribute_t, DotAttributes>>,
    boost::property<boost::graph_name_t, std::string,
                    boost::property<boost::graph_graph_attribute_t, DotAttributes,
                                    boost::property<boost::graph_vertex_attribute_t, DotAttributes,
                                                    boost::property<boost::graph_edge_attribute_t,
                                                                    DotAttributes>>>>>>;

const char* Shape(DeviceKind k) {
  switch (k) {
    case DeviceKind::kGpu:
      return "box";
    case DeviceKind::kNvSwitch:
      return "hexagon";
    case DeviceKind::kPcieSwitch:
      return "diamond";
    case DeviceKind::kCpu:
      return "component";
    case DeviceKind::kNic:
      return "cds";
    case DeviceKind::kNetworkSwitch:
      return "doubleoctagon";
  }
  return "ellipse";
}

}  // namespace

Rate MaxFlowBetweenHalves(const Cluster& cluster, uint32_t half) {
  const Graph& g = cluster.graph();
  const uint64_t n = boost::num_vertices(g);
  FlowGraph f(n + 2);
  const uint64_t source = n, sink = n + 1;
  int64_t total = 1;
  for (auto [it, end] = boost::edges(g); it != end; ++it) {
    const int64_t c = static_cast<int64_t>(g[*it].bandwidth.per_second());
    AddArc(f, boost::source(*it, g), boost::target(*it, g), c);
    total += c;
  }
  for (uint32_t i = 0; i < cluster.total_gpus(); ++i) {
    if (i < half)
      AddArc(f, source, cluster.gpu_vertex(i), total);
    else
      AddArc(f, cluster.gpu_vertex(i), sink, total);
  }
  return Rate::PerSecond(static_cast<uint64_t>(boost::push_relabel_max_flow(f, source, sink)));
}

pb::TopologySummary Summarize(const Cluster& cluster) {
  const Graph& g = cluster.graph();
  pb::TopologySummary s;
  s.set_description(cluster.description());
  s.set_sharp(cluster.sharp());
  s.set_nccl_version(std::to_string(cluster.nccl_version() / 100) + "." +
                     std::to_string(cluster.nccl_version() % 100));
  s.set_gpu(cluster.gpu_spec().name);
  s.set_nodes(cluster.nodes());
  s.set_gpus(cluster.total_gpus());
  s.set_gpus_per_node(cluster.gpus_per_node());
  for (auto [it, end] = boost::vertices(g); it != end; ++it) {
    ++(*s.mutable_devices())[std::string(ToString(g[*it].kind))];
  }
  std::map<std::string, uint32_t> directed;
  for (auto [it, end] = boost::edges(g); it != end; ++it)
    ++directed[std::string(ToString(g[*it].link_class))];
  for (const auto& [name, count] : directed) (*s.mutable_links())[name] = count / 2;
  for (auto [it, end] = boost::edges(g); it != end; ++it) {
    const Link& l = g[*it];
    if (l.bandwidth.per_second() == 0) continue;
    (*s.mutable_achieved_fraction())[std::string(ToString(l.link_class))] =
        static_cast<double>(l.achieved.per_second()) /
        static_cast<double>(l.bandwidth.per_second());
  }

  // Per GPU inside the node: its NVLink, else its links (PCIe).
  const Vertex gpu0 = cluster.gpu_vertex(0);
  Rate intra = InjectionBandwidth(g, gpu0, LinkClass::kNvLink);
  if (intra.per_second() == 0) intra = InjectionBandwidth(g, gpu0);
  s.set_intra_node_gbps(intra.giga());
  uint32_t nvlinks = 0;
  for (auto [it, end] = boost::out_edges(gpu0, g); it != end; ++it) {
    if (g[*it].link_class == LinkClass::kNvLink) nvlinks += g[*it].count;
  }
  s.set_nvlinks_per_gpu(nvlinks);
  // Per GPU out of the node: the node's NIC bandwidth shared by its GPUs, capped by the GPU's path.
  const uint32_t nics = cluster.node().CountOf(DeviceKind::kNic);
  double inter = cluster.node().nic_bandwidth.giga() * nics / cluster.gpus_per_node();
  if (nics > 0) inter = std::min(inter, InjectionBandwidth(g, gpu0, LinkClass::kPcie).giga());
  s.set_inter_node_gbps(inter);
  s.set_bisection_gbps(MaxFlowBetweenHalves(cluster, cluster.total_gpus() / 2).giga());

  const Router& router = cluster.router();
  const uint32_t total = cluster.total_gpus();
  const uint32_t sources = total <= 2048 ? total : cluster.gpus_per_node();
  uint32_t diameter = 0;
  for (uint32_t a = 0; a < sources; ++a) {
    for (uint32_t b = 0; b < total; ++b) diameter = std::max(diameter, router.Hops(a, b));
  }
  s.set_diameter_hops(diameter);
  for (const std::string& w : cluster.warnings()) s.add_warnings(w);
  return s;
}

std::string ToDot(const Cluster& cluster) {
  const Graph& g = cluster.graph();
  // Boost writes a subgraph<> as DOT with one "subgraph" block per child, which is how each
  // cluster node becomes a Graphviz cluster. Vertices keep the cluster graph's numbers.
  DotGraph dot(boost::num_vertices(g));
  boost::get_property(dot, boost::graph_name) = "cluster";
  boost::get_property(dot, boost::graph_graph_attribute) = {{"overlap", "false"},
                                                            {"splines", "true"}};
  boost::get_property(dot, boost::graph_vertex_attribute) = {{"fontsize", "10"}};
  for (auto [it, end] = boost::vertices(g); it != end; ++it) {
    boost::put(boost::vertex_attribute, dot, *it,
               DotAttributes{{"label", g[*it].name}, {"shape", Shape(g[*it].kind)}});
  }
  for (uint32_t n = 0; n < cluster.nodes(); ++n) {
    DotGraph& node = dot.create_subgraph();
    boost::get_property(node, boost::graph_name) = "cluster_node" + std::to_string(n);
    boost::get_property(node,
                        boost::graph_graph_attribute) = {{"label", "node" + std::to_string(n)}};
    for (Vertex v : cluster.node_vertices(n)) boost::add_vertex(v, node);
  }
  // One edge per duplex link: a -- b for a < b (links are added in both directions).
  for (auto [it, end] = boost::edges(g); it != end; ++it) {
    const Vertex a = boost::source(*it, g), b = boost::target(*it, g);
    if (a > b) continue;
    std::ostringstream label;
    label << ToString(g[*it].link_class) << " " << g[*it].bandwidth.giga() << " GB/s";
    const auto e = boost::add_edge(a, b, dot).first;
    boost::put(boost::edge_attribute, dot, e, DotAttributes{{"label", label.str()}});
  }
  std::ostringstream out;
  out << "// moesim topo dot: " << cluster.description() << ", " << cluster.nodes() << " node(s)\n";
  boost::write_graphviz(out, dot);
  return out.str();
}

}  // namespace moesim::topology
