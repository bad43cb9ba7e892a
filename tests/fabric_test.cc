// Every fabric and preset: GPU count, per-GPU bandwidth inside and out of the node, bisection
// bandwidth and typical hop counts, each hand-computed below.
#include "topology/fabric.h"

#include <catch2/catch.hpp>

#include "test_paths.h"
#include "topology/cluster.h"
#include "topology/summary.h"

namespace moesim::topology {
namespace {

Cluster Load(const std::string& name) {
  auto c = LoadClusterArgument(testing::SourcePath("scenarios/clusters/" + name), "");
  if (!c.ok()) FAIL(c.error().message());
  return std::move(c).value();
}

Cluster Preset(const std::string& name) {
  auto c = LoadClusterArgument(name, "");
  if (!c.ok()) FAIL(c.error().message());
  return std::move(c).value();
}

}  // namespace

TEST_CASE("Node presets: GPUs and per-GPU bandwidth from their datasheets") {
  struct Expect {
    const char* preset;
    uint32_t gpus;
    double nvlink_gbps, nic_gbps, bisection_gbps;
    uint32_t nvlinks, diameter;
  };
  // Bisection of one node: half the GPUs' NVLink (4 x per-GPU NVLink; 36 x 900 for NVL72), plus the
  // 40 GB/s inter-socket link where the two halves sit on different CPUs (GPUs 0-3 on CPU 0's PCIe
  // switches, 4-7 on CPU 1's). NVL72's halves are 18 whole dual-socket trays each: no such link.
  // pcie-8gpu has no NVLink: only the inter-socket link joins the halves.
  const std::vector<Expect> presets = {
      {"dgx-a100", 8, 300, 25, 4 * 300 + 40, 12, 2},
      {"dgx-h100", 8, 450, 50, 4 * 450 + 40, 18, 2},
      {"dgx-h200", 8, 450, 50, 4 * 450 + 40, 18, 2},
      {"hgx-h800", 8, 200, 50, 4 * 200 + 40, 8, 2},
      {"gb200-nvl72", 72, 900, 50, 36 * 900, 18, 2},
      // 4 NICs of 50 GB/s for 8 GPUs: 25 each. GPU to GPU over PCIe: up to 5 hops
      // (gpu, switch, cpu, cpu, switch, gpu).
      {"pcie-8gpu", 8, 63, 25, 40, 0, 5},
  };
  for (const Expect& e : presets) {
    INFO(e.preset);
    const pb::TopologySummary s = Summarize(Preset(e.preset));
    CHECK(s.gpus() == e.gpus);
    CHECK(s.intra_node_gbps() == Approx(e.nvlink_gbps));
    CHECK(s.inter_node_gbps() == Approx(e.nic_gbps));
    CHECK(s.bisection_gbps() == Approx(e.bisection_gbps));
    CHECK(s.nvlinks_per_gpu() == e.nvlinks);
    CHECK(s.diameter_hops() == e.diameter);
  }
}

TEST_CASE("Rail-optimized: GPU i reaches GPU i of another node through one rail switch") {
  const Cluster c = Load("hgx-h800-rail.pbtxt");
  const pb::TopologySummary s = Summarize(c);
  CHECK(s.gpus() == 256);
  CHECK(s.intra_node_gbps() == Approx(200));  // H800 NVLink
  // 8 rail switches + 32 spines (a rail switch has 32 node ports, non-blocking: 32 uplinks).
  CHECK(s.devices().at("network-switch") == 40);
  CHECK(s.inter_node_gbps() == Approx(50));
  // Nodes 0-15 to nodes 16-31: every GPU's 50 GB/s NIC, 128 x 50 = 6400 GB/s.
  CHECK(s.bisection_gbps() == Approx(6400));
  const Router& r = c.router();
  // Same rail: gpu -> pcie -> nic -> rail -> nic -> pcie -> gpu = 6 links, one path.
  CHECK(r.Hops(0, 8) == 6);
  CHECK(r.PathCount(0, 8) == 1);
  // Across rails: + rail -> spine -> rail = 8 links, over any of the 32 spines.
  CHECK(r.Hops(0, 9) == 8);
  CHECK(r.PathCount(0, 9) == 32);
  CHECK(s.diameter_hops() == 8);
  // Inside a node: NVLink, 2 hops.
  CHECK(r.Hops(0, 1) == 2);
}

TEST_CASE("Two-tier fat tree at 2:1: half the injection bandwidth crosses the bisection") {
  const Cluster c = Load("dgx-h100-fat-tree-2to1.pbtxt");
  const pb::TopologySummary s = Summarize(c);
  CHECK(s.gpus() == 128);
  CHECK(s.intra_node_gbps() == Approx(450));
  CHECK(s.inter_node_gbps() == Approx(50));  // its NIC; the oversubscription shows in the bisection
  // 4 leaves; each has 32 ports x 50 GB/s = 1600 GB/s down, 800 up over 32 / 2 = 16 spines.
  CHECK(s.devices().at("network-switch") == 4 + 16);
  // Leaves 0-1 (nodes 0-7) to leaves 2-3: their uplinks, 2 x 800 = 1600 GB/s, where the GPUs of
  // the half could inject 64 x 50 = 3200.
  CHECK(s.bisection_gbps() == Approx(1600));
  const Router& r = c.router();
  CHECK(r.Hops(0, 8) == 6);   // node 1, same leaf
  CHECK(r.Hops(0, 32) == 8);  // node 4, next leaf: up to a spine and down
  CHECK(r.PathCount(0, 32) == 16);
  // ECMP: a transfer from gpu0 to gpu32 spreads over the 16 spines, 1/16 on each uplink.
  int uplinks = 0;
  r.ForEachShare(0, 32, [&](Edge e, double share) {
    const Graph& g = c.graph();
    if (g[boost::source(e, g)].tier == 1 && g[boost::target(e, g)].tier == 2) {
      ++uplinks;
      CHECK(share == Approx(1.0 / 16));
    }
  });
  CHECK(uplinks == 16);
}

TEST_CASE("Three-tier fat tree: leaf, aggregation, core") {
  const Cluster c = Load("dgx-h100-fat-tree-3tier.pbtxt");
  const pb::TopologySummary s = Summarize(c);
  CHECK(s.gpus() == 128);
  CHECK(s.intra_node_gbps() == Approx(450));
  CHECK(s.inter_node_gbps() == Approx(50));
  // 8 leaves, 4 pods x 16 aggregation switches, 16 cores.
  CHECK(s.devices().at("network-switch") == 8 + 64 + 16);
  // Non-blocking: pods 0-1 to pods 2-3 carry every GPU's 50 GB/s: 64 x 50 = 3200.
  CHECK(s.bisection_gbps() == Approx(3200));
  const Router& r = c.router();
  // Node 2 sits on leaf 1 of pod 0 (2 nodes per leaf, 2 leaves per pod): leaf, aggregation, leaf.
  CHECK(r.Hops(0, 16) == 8);
  CHECK(r.Hops(0, 127) == 10);  // other pod: leaf, agg, core, agg, leaf
  // 16 aggregation switches up x 16 cores x 16 aggregation switches down.
  CHECK(r.PathCount(0, 127) == 16 * 16 * 16);
  CHECK(s.diameter_hops() == 10);
}

TEST_CASE("Single switch: every NIC one hop from every other") {
  const Cluster c = Load("dgx-a100-single-switch.pbtxt");
  const pb::TopologySummary s = Summarize(c);
  CHECK(s.gpus() == 32);
  CHECK(s.intra_node_gbps() == Approx(300));
  CHECK(s.inter_node_gbps() == Approx(25));  // HDR 200 Gb/s
  CHECK(s.devices().at("network-switch") == 1);
  // Nodes 0-1 to 2-3: 16 HDR NICs of 25 GB/s.
  CHECK(s.bisection_gbps() == Approx(400));
  CHECK(c.router().Hops(0, 31) == 6);
  CHECK(s.diameter_hops() == 6);
}

TEST_CASE("Torus 4 x 4: routers on a wrap-around grid") {
  const Cluster c = Load("dgx-h100-torus-4x4.pbtxt");
  const pb::TopologySummary s = Summarize(c);
  CHECK(s.gpus() == 128);
  CHECK(s.intra_node_gbps() == Approx(450));
  CHECK(s.inter_node_gbps() == Approx(50));
  CHECK(s.devices().at("network-switch") == 16);
  // 2 dims x 16 routers = 32 router links (each node linked to its + neighbour per dimension),
  // + 128 NIC links.
  CHECK(s.links().at("infiniband") == 32 + 128);
  // Nodes 0-7 are rows y = 0, 1 (node = x + 4y); the cut to rows 2, 3 crosses the links y1-y2 and
  // the wrap-around y3-y0: 2 x 4 links of 8 x 50 / (2 x 2) = 100 GB/s = 800 GB/s.
  CHECK(s.bisection_gbps() == Approx(800));
  const Router& r = c.router();
  // Node 10 is (x 2, y 2): 2 + 2 router hops, + 3 links each end.
  CHECK(r.Hops(0, 80) == 10);
  // Distance 2 each way in a ring of 4: both directions shortest in x and in y, and any order:
  // 2 x 2 x C(4, 2) = 24 paths.
  CHECK(r.PathCount(0, 80) == 24);
  CHECK(s.diameter_hops() == 10);
}

TEST_CASE("Torus 2 x 2 x 2: three dimensions, one link per neighbour pair") {
  const Cluster c = Load("dgx-h100-torus-2x2x2.pbtxt");
  const pb::TopologySummary s = Summarize(c);
  CHECK(s.gpus() == 64);
  CHECK(s.devices().at("network-switch") == 8);
  // 3 dims x 8 routers / 2 (a dimension of 2 links each pair once) = 12 router links + 64 NIC
  // links.
  CHECK(s.links().at("infiniband") == 12 + 64);
  // Nodes 0-3 (z = 0) to nodes 4-7 (z = 1): 4 links of 400 / 6 = 66.7 GB/s = 266.7 GB/s.
  CHECK(s.bisection_gbps() == Approx(4 * 400.0 / 6));
  const Router& r = c.router();
  // Node 7 = (1, 1, 1): 3 router hops, + 3 links at each end; any of the 3! orders of dimensions.
  CHECK(r.Hops(0, 56) == 9);
  CHECK(r.PathCount(0, 56) == 6);
  CHECK(s.diameter_hops() == 9);
}

TEST_CASE("A custom node by shape, two of them on a switch") {
  const Cluster c = Load("custom-node.pbtxt");
  const pb::TopologySummary s = Summarize(c);
  CHECK(s.gpus() == 8);
  CHECK(s.gpu() == "h200-sxm");
  CHECK(s.intra_node_gbps() == Approx(300));
  // 2 NICs of 200 Gb/s = 25 GB/s for 4 GPUs: 12.5 each; node 0 to node 1: 2 x 25 = 50.
  CHECK(s.inter_node_gbps() == Approx(12.5));
  CHECK(s.bisection_gbps() == Approx(50));
}

TEST_CASE("Fabric errors: located, with what is valid") {
  // Figures outside their declared range (proto/range.proto) stop at the parse; the rest are
  // the fabric's own checks.
  auto parse = [](const std::string& text) -> StatusOr<Cluster> {
    pb::Cluster spec;
    auto file = TextFile::ParseString(text, "c.pbtxt", &spec);
    if (!file.ok()) return file.error();
    file->set_root_field("cluster");
    return BuildCluster(spec, &*file);
  };
  auto uneven = parse(
      "node_preset: \"dgx-h100\"\nnodes: 6\nfabric { fat_tree { tiers: 2 nodes_per_leaf: 4 } }\n");
  REQUIRE_FALSE(uneven.ok());
  CHECK(uneven.error().message() ==
        "c.pbtxt:3:30: cluster.fabric.fat_tree.nodes_per_leaf = 4: does not divide the nodes; "
        "valid: a divisor of 6");
  auto ratio = parse(
      "node_preset: \"dgx-h100\"\nnodes: 4\nfabric { rail_optimized { oversubscription: 0.5 } }\n");
  REQUIRE_FALSE(ratio.ok());
  CHECK(ratio.error().message() ==
        "c.pbtxt:3:27: fabric.rail_optimized.oversubscription = 0.5: out of range; valid: 1 to "
        "1000");
  auto torus = parse("node_preset: \"dgx-h100\"\nnodes: 8\nfabric { torus { dims: [3, 3] } }\n");
  REQUIRE_FALSE(torus.ok());
  CHECK_THAT(torus.error().message(), Catch::Contains("valid: dims whose product is 8"));
  auto tiers = parse(
      "node_preset: \"dgx-h100\"\nnodes: 4\nfabric { fat_tree { tiers: 4 nodes_per_leaf: 1 } }\n");
  REQUIRE_FALSE(tiers.ok());
  CHECK(tiers.error().message() ==
        "c.pbtxt:3:21: fabric.fat_tree.tiers = 4: out of range; valid: 0 to 3");
}

}  // namespace moesim::topology
