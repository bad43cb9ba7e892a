#include "topology/cluster.h"

#include <catch2/catch.hpp>

#include "topology/summary.h"

namespace moesim::topology {
namespace {

pb::Cluster Spec(const std::string& preset, std::optional<uint32_t> gpus = {}) {
  pb::Cluster c;
  c.set_node_preset(preset);
  if (gpus) c.set_gpus(*gpus);
  return c;
}

}  // namespace

TEST_CASE("dgx-h100 is 8 GPUs on one NVSwitch at 450 GB/s per direction") {
  auto cluster = BuildCluster(Spec("dgx-h100"));
  REQUIRE(cluster.ok());
  const Graph& g = cluster->graph();
  // 8 GPUs, 1 NVSwitch, 4 PCIe switches, 2 CPUs, 8 NICs.
  CHECK(boost::num_vertices(g) == 23);
  // Duplex links: 8 NVLink + (4 switch-CPU + 8 GPU + 8 NIC) PCIe + 1 inter-socket = 29 -> 58 edges.
  CHECK(boost::num_edges(g) == 58);
  CHECK(cluster->gpus() == 8);
  CHECK(cluster->gpu_spec().name == "h100-sxm");
  for (uint32_t r = 0; r < 8; ++r) {
    const Vertex v = cluster->gpu_vertex(r);
    CHECK(g[v].kind == DeviceKind::kGpu);
    CHECK(g[v].index == r);
    CHECK(InjectionBandwidth(g, v, LinkClass::kNvLink) == Rate::GigaPerSecond(450));
    CHECK(EjectionBandwidth(g, v, LinkClass::kNvLink) == Rate::GigaPerSecond(450));
  }
}

TEST_CASE("A route between GPUs of a node crosses the NVSwitch: two NVLink hops") {
  auto cluster = BuildCluster(Spec("dgx-h100"));
  REQUIRE(cluster.ok());
  const Router& router = cluster->router();
  std::vector<Edge> path;
  router.SamplePath(0, 3, 0, &path);
  REQUIRE(path.size() == 2);
  const Graph& g = cluster->graph();
  CHECK(boost::source(path[0], g) == cluster->gpu_vertex(0));
  CHECK(g[boost::target(path[0], g)].kind == DeviceKind::kNvSwitch);
  CHECK(boost::target(path[1], g) == cluster->gpu_vertex(3));
  CHECK(g[path[0]].link_class == LinkClass::kNvLink);
  CHECK(router.Hops(0, 3) == 2);
  CHECK(router.PathCount(0, 3) == 1);
  // Two hops of 500 ns each.
  CHECK(router.Latency(0, 3) == Duration::Nanoseconds(1000));
  CHECK(router.Bottleneck(0, 3) == Rate::GigaPerSecond(450));
  router.SamplePath(2, 2, 0, &path);
  CHECK(path.empty());
  CHECK(router.Hops(2, 2) == 0);
}

TEST_CASE("A job may use fewer GPUs than the node has") {
  auto cluster = BuildCluster(Spec("dgx-h100", 4));
  REQUIRE(cluster.ok());
  CHECK(cluster->gpus() == 4);
  CHECK(cluster->total_gpus() == 8);  // the node is still whole
}

TEST_CASE("Cluster errors name the field and the valid values") {
  auto unknown = BuildCluster(Spec("dgx-h900"));
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message() ==
        "cluster.node_preset = \"dgx-h900\": unknown node preset (did you mean \"dgx-h100\"?); "
        "valid: dgx-a100, dgx-h100, "
        "dgx-h200, hgx-h800, gb200-nvl72, pcie-8gpu");

  auto missing = BuildCluster(pb::Cluster());
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error().message(), Catch::Contains("no node given"));

  auto too_many = BuildCluster(Spec("dgx-h100", 9));
  REQUIRE_FALSE(too_many.ok());
  CHECK_THAT(too_many.error().message(), Catch::StartsWith("cluster.gpus = 9: "));
  CHECK_THAT(too_many.error().message(), Catch::Contains("valid: 1 to 8"));

  REQUIRE_FALSE(BuildCluster(Spec("dgx-h100", 0)).ok());

  pb::Cluster two_nodes = Spec("dgx-h100");
  two_nodes.set_nodes(2);
  auto no_fabric = BuildCluster(two_nodes);
  REQUIRE_FALSE(no_fabric.ok());
  CHECK_THAT(no_fabric.error().message(),
             Catch::StartsWith("cluster.fabric: missing: several nodes need a fabric"));

  pb::Cluster both = Spec("dgx-h100");
  both.mutable_node()->set_gpu("h100-sxm");
  auto two_nodes_given = BuildCluster(both);
  REQUIRE_FALSE(two_nodes_given.ok());
  CHECK_THAT(two_nodes_given.error().message(), Catch::Contains("more than one node given"));
}

TEST_CASE("The cluster estimate: 505 bytes per device and link direction of the node template") {
  // An HGX H800 node: 8 GPUs, 1 NVSwitch, 4 PCIe switches, 2 CPUs, 8 NICs = 23 devices; 8 NVLink,
  // 20 PCIe (8 GPUs, 8 NICs, 4 switches to their CPU) and 1 inter-socket links = 29.
  auto one = LoadClusterArgument("hgx-h800", "");
  REQUIRE(one.ok());
  CHECK(one->node().devices.size() == 23);
  CHECK(one->node().links.size() == 29);
  // 8,192 nodes x (23 + 2 x 29) elements x 505 B = 335,093,760 B (336.9 MB measured, cluster.h).
  CHECK(EstimateClusterBytes(8192, one->node()) == 335'093'760.0);
}

}  // namespace moesim::topology
