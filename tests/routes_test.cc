#include "topology/routes.h"

#include <catch2/catch.hpp>
#include <functional>
#include <limits>
#include <map>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "topology/cluster.h"

// The router builds a node's routes towards each destination GPU for every source at once. These
// tests hold it to the per-pair search it replaced, written out again here as the reference: for
// every ordered GPU pair of a node, the same paths in the same order with the same weights, bit
// for bit (the order and the weights feed floating-point sums downstream).
namespace moesim::topology {
namespace {

struct RoutesRefStep {
  uint32_t to, step;  // step = 2*link + (1 if b -> a)
  LinkClass link_class;
};

// The old search: a breadth-first search from `to`, then a depth-first walk from `from` taking
// each vertex's steps that go one hop closer, in link order; at most `limit` paths.
std::vector<std::vector<uint32_t>> RoutesRefPaths(
    const std::vector<std::vector<RoutesRefStep>>& adj, uint32_t from, uint32_t to,
    const std::function<bool(const RoutesRefStep&)>& use, size_t limit) {
  std::vector<int> dist(adj.size(), -1);
  std::queue<uint32_t> q;
  dist[to] = 0;
  q.push(to);
  while (!q.empty()) {
    const uint32_t v = q.front();
    q.pop();
    for (const auto& s : adj[v]) {
      if (use(s) && dist[s.to] < 0) {
        dist[s.to] = dist[v] + 1;
        q.push(s.to);
      }
    }
  }
  std::vector<std::vector<uint32_t>> out;
  if (dist[from] < 0) return out;
  std::vector<uint32_t> path;
  std::function<void(uint32_t)> walk = [&](uint32_t v) {
    if (out.size() >= limit) return;
    if (v == to) {
      out.push_back(path);
      return;
    }
    for (const auto& s : adj[v]) {
      if (use(s) && dist[s.to] == dist[v] - 1) {
        path.push_back(s.step);
        walk(s.to);
        path.pop_back();
      }
    }
  };
  walk(from);
  return out;
}

// What ForEachShare visited, or what the reference expects it to: (edge id, share) in order.
using RoutesShares = std::vector<std::pair<uint32_t, double>>;

// The reference's shares from local GPU a to local GPU b of node 0: every fewest-hop NVLink path
// weighted by its narrowest link, else every fewest-hop PCIe path (not through a NIC) equally.
RoutesShares RoutesRefShares(const Cluster& c, const std::vector<uint32_t>& step_edge, uint32_t a,
                             uint32_t b) {
  const NodeTemplate& node = c.node();
  std::vector<std::vector<RoutesRefStep>> adj(node.devices.size());
  for (uint32_t l = 0; l < node.links.size(); ++l) {
    const auto& e = node.links[l];
    adj[e.a].push_back({e.b, 2 * l, e.link.link_class});
    adj[e.b].push_back({e.a, 2 * l + 1, e.link.link_class});
  }
  const std::vector<uint32_t> gpus = node.IndicesOf(DeviceKind::kGpu);
  auto nvlink = [](const RoutesRefStep& s) { return s.link_class == LinkClass::kNvLink; };
  auto host_only = [&](const RoutesRefStep& s) {
    return s.link_class != LinkClass::kNvLink && node.devices[s.to].kind != DeviceKind::kNic;
  };
  auto paths = RoutesRefPaths(adj, gpus[a], gpus[b], nvlink, 64);
  const bool over_nvlink = !paths.empty();
  if (!over_nvlink) paths = RoutesRefPaths(adj, gpus[a], gpus[b], host_only, 64);
  std::vector<double> weights;
  double total = 0;
  for (const auto& steps : paths) {
    double weight = 1;
    if (over_nvlink) {
      uint64_t narrowest = std::numeric_limits<uint64_t>::max();
      for (uint32_t s : steps) {
        narrowest = std::min(narrowest, node.links[s / 2].link.bandwidth.per_second());
      }
      weight = static_cast<double>(narrowest);
    }
    total += weight;
    weights.push_back(weight);
  }
  RoutesShares out;
  for (size_t p = 0; p < paths.size(); ++p) {
    for (uint32_t s : paths[p]) out.emplace_back(step_edge[s], weights[p] / total);
  }
  return out;
}

// Template step -> graph edge id in node 0. Parallel links between two devices are added in link
// order, and a vertex keeps its out-edges in the order they were added.
std::vector<uint32_t> RoutesStepEdges(const Cluster& c) {
  const Graph& g = c.graph();
  const auto& vertices = c.node_vertices(0);
  std::map<std::pair<Vertex, Vertex>, std::vector<uint32_t>> parallel;
  for (const auto& l : c.node().links) {
    for (const auto& [from, to] : {std::pair{l.a, l.b}, std::pair{l.b, l.a}}) {
      auto& ids = parallel[{vertices[from], vertices[to]}];
      if (!ids.empty()) continue;
      for (auto [it, end] = boost::out_edges(vertices[from], g); it != end; ++it) {
        if (boost::target(*it, g) == vertices[to]) ids.push_back(g[*it].id);
      }
    }
  }
  std::map<std::pair<Vertex, Vertex>, size_t> used;
  std::vector<uint32_t> out;
  for (const auto& l : c.node().links) {
    for (const auto& [from, to] : {std::pair{l.a, l.b}, std::pair{l.b, l.a}}) {
      const std::pair key{vertices[from], vertices[to]};
      out.push_back(parallel[key][used[key]++]);
    }
  }
  return out;
}

StatusOr<Cluster> RoutesBuild(const std::string& text) {
  pb::Cluster spec;
  auto file = TextFile::ParseString(text, "routes.pbtxt", &spec);
  if (!file.ok()) return file.error();
  return BuildCluster(spec, &*file);
}

// Checks every ordered pair of node 0's GPUs against the reference; returns the pairs checked
// and the most paths one pair spreads over.
std::pair<uint32_t, uint64_t> RoutesCheckNode(const Cluster& c) {
  const Router& r = c.router();
  const std::vector<uint32_t> step_edge = RoutesStepEdges(c);
  uint32_t pairs = 0;
  uint64_t most_paths = 0;
  for (uint32_t a = 0; a < c.gpus_per_node(); ++a) {
    for (uint32_t b = 0; b < c.gpus_per_node(); ++b) {
      if (a == b) continue;
      RoutesShares got;
      r.ForEachShare(a, b, [&](Edge e, double share) { got.emplace_back(c.graph()[e].id, share); });
      const RoutesShares want = RoutesRefShares(c, step_edge, a, b);
      INFO("gpu" << a << " -> gpu" << b);
      REQUIRE(got == want);  // exact: same links, same order, same doubles
      most_paths = std::max(most_paths, r.PathCount(a, b));
      ++pairs;
    }
  }
  return {pairs, most_paths};
}

// Four GPUs on two NVSwitch planes of unequal width; gpu0 has two parallel links to plane 0,
// gpu3 is on plane 0 only. PCIe: one switch per pair of GPUs, one CPU.
constexpr const char* kRoutesPlanes = R"(node {
  name: "planes"
  gpu: "h100-sxm"
  device { id: "g0" kind: GPU }
  device { id: "g1" kind: GPU }
  device { id: "g2" kind: GPU }
  device { id: "g3" kind: GPU }
  device { id: "p0" kind: NVSWITCH }
  device { id: "p1" kind: NVSWITCH }
  device { id: "s0" kind: PCIE_SWITCH }
  device { id: "s1" kind: PCIE_SWITCH }
  device { id: "cpu" kind: CPU }
  link { a: "g0" b: "p0" link_class: NVLINK bandwidth_gbps: 100 latency_ns: 500 }
  link { a: "g0" b: "p0" link_class: NVLINK bandwidth_gbps: 100 latency_ns: 500 }
  link { a: "g0" b: "p1" link_class: NVLINK bandwidth_gbps: 50 latency_ns: 500 }
  link { a: "g1" b: "p0" link_class: NVLINK bandwidth_gbps: 200 latency_ns: 500 }
  link { a: "g1" b: "p1" link_class: NVLINK bandwidth_gbps: 50 latency_ns: 500 }
  link { a: "g2" b: "p1" link_class: NVLINK bandwidth_gbps: 50 latency_ns: 500 }
  link { a: "g2" b: "p0" link_class: NVLINK bandwidth_gbps: 150 latency_ns: 500 }
  link { a: "g3" b: "p0" link_class: NVLINK bandwidth_gbps: 200 latency_ns: 500 }
  link { a: "g0" b: "s0" link_class: PCIE bandwidth_gbps: 32 latency_ns: 200 }
  link { a: "g1" b: "s0" link_class: PCIE bandwidth_gbps: 32 latency_ns: 200 }
  link { a: "g2" b: "s1" link_class: PCIE bandwidth_gbps: 32 latency_ns: 200 }
  link { a: "g3" b: "s1" link_class: PCIE bandwidth_gbps: 32 latency_ns: 200 }
  link { a: "s0" b: "cpu" link_class: PCIE bandwidth_gbps: 32 latency_ns: 200 }
  link { a: "s1" b: "cpu" link_class: PCIE bandwidth_gbps: 32 latency_ns: 200 }
}
)";

// A hybrid cube-mesh (as DGX-1 had): direct NVLinks only, each GPU linked to four others; a pair
// without a link goes through another GPU, over every such GPU.
std::string RoutesCubeMesh() {
  std::string text = "node { name: \"cube-mesh\" gpu: \"a100-sxm\"\n";
  for (int g = 0; g < 8; ++g) text += " device { id: \"g" + std::to_string(g) + "\" kind: GPU }\n";
  text += " device { id: \"cpu\" kind: CPU }\n";
  const std::pair<int, int> nv[] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}, {4, 5}, {4, 6},
                                    {4, 7}, {5, 6}, {5, 7}, {6, 7}, {0, 4}, {1, 5}, {2, 6}, {3, 7}};
  for (const auto& [a, b] : nv) {
    text += " link { a: \"g" + std::to_string(a) + "\" b: \"g" + std::to_string(b) +
            "\" link_class: NVLINK bandwidth_gbps: 25 latency_ns: 500 }\n";
  }
  for (int g = 0; g < 8; ++g) {
    text += " link { a: \"g" + std::to_string(g) +
            "\" b: \"cpu\" link_class: PCIE bandwidth_gbps: 16 latency_ns: 200 }\n";
  }
  return text + "}\n";
}

}  // namespace

TEST_CASE("Routes inside a node equal the per-pair search's, bit for bit") {
  SECTION("one NVSwitch: dgx-h100, hgx-h800, gb200-nvl72, a 2-node custom node") {
    for (const char* text :
         {"node_preset: \"dgx-h100\"", "node_preset: \"hgx-h800\"", "node_preset: \"gb200-nvl72\"",
          "node { name: \"n\" gpu: \"h200-sxm\" gpus: 4 nvlink { bandwidth_gbps: 300 } pcie { "
          "switches: 2 } nics { count: 2 gbit_per_s: 200 } } nodes: 2 fabric { single_switch {} "
          "}"}) {
      INFO(text);
      auto c = RoutesBuild(text);
      REQUIRE(c.ok());
      // n GPUs: n (n - 1) ordered pairs, each over gpu -> nvswitch -> gpu, one path.
      const auto [pairs, most] = RoutesCheckNode(*c);
      CHECK(pairs == c->gpus_per_node() * (c->gpus_per_node() - 1));
      CHECK(most == 1);
      CHECK(c->router().Hops(0, 1) == 2);
    }
  }
  SECTION("two NVSwitch planes, parallel links, a GPU on one plane") {
    auto c = RoutesBuild(kRoutesPlanes);
    REQUIRE(c.ok());
    CHECK(RoutesCheckNode(*c).second == 3);
    // g0 -> g1: over p0 by either of g0's two 100 GB/s links (narrowest 100 each: achieved
    // bandwidth is the same fraction of each, so the weights are 100 : 100 : 50 of the achieved
    // rates), over p1 at 50: shares 0.4, 0.4, 0.2.
    double on_p1 = 0;
    const Vertex p1 = c->node_vertices(0)[5];
    c->router().ForEachShare(0, 1, [&](Edge e, double share) {
      if (boost::source(e, c->graph()) == p1) on_p1 += share;
    });
    CHECK(on_p1 == Approx(0.2));
    // g3 is only on p0: one path to everyone.
    CHECK(c->router().PathCount(3, 0) == 2);  // g0's two parallel links into p0
    CHECK(c->router().PathCount(3, 2) == 1);
  }
  SECTION("a cube mesh: direct NVLinks, two hops through either of two GPUs") {
    auto c = RoutesBuild(RoutesCubeMesh());
    REQUIRE(c.ok());
    // g0 -> g5: no link; g0 -> g1 -> g5 and g0 -> g4 -> g5, equally wide: 2 paths, 2 hops.
    CHECK(RoutesCheckNode(*c).second == 2);
    CHECK(c->router().PathCount(0, 5) == 2);
    CHECK(c->router().Hops(0, 5) == 2);
  }
  SECTION("no NVLink: PCIe through switches, CPUs and the inter-socket link") {
    auto c = RoutesBuild("node_preset: \"pcie-8gpu\"");
    REQUIRE(c.ok());
    RoutesCheckNode(*c);
    // gpu0 and gpu1 share PCIe switch 0: gpu0 -> pcie0 -> gpu1.
    CHECK(c->router().Hops(0, 1) == 2);
  }
}

TEST_CASE("Routes: a GPU's leg to its NIC is the first fewest-hop PCIe path") {
  // dgx-h100: GPU i and NIC i share PCIe switch i / 2; GPU 0's NIC is NIC 0, two hops away
  // (gpu0 -> pcie0 -> nic0), then nic0 -> the switch. Across two nodes: 2 + 1 + 1 + 2 = 6 hops.
  auto c = RoutesBuild("node_preset: \"dgx-h100\" nodes: 2 fabric { single_switch {} }");
  REQUIRE(c.ok());
  const Router& r = c->router();
  CHECK(r.Hops(0, 8) == 6);
  std::vector<Edge> path;
  r.SamplePath(0, 8, 0, &path);
  REQUIRE(path.size() == 6);
  const Graph& g = c->graph();
  CHECK(g[boost::target(path[0], g)].kind == DeviceKind::kPcieSwitch);
  CHECK(g[boost::target(path[1], g)].kind == DeviceKind::kNic);
  CHECK(g[boost::target(path[1], g)].name == "node0/nic0");
  CHECK(g[boost::target(path[2], g)].kind == DeviceKind::kNetworkSwitch);
}

}  // namespace moesim::topology
