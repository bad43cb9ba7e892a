#include "topology/cluster.h"

#include <catch2/catch.hpp>

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
  // 8 GPU vertices + 1 NVSwitch vertex; 8 duplex links = 16 directed edges.
  CHECK(boost::num_vertices(g) == 9);
  CHECK(boost::num_edges(g) == 16);
  CHECK(cluster->gpus() == 8);
  CHECK(cluster->gpu_spec().name == "h100-sxm");
  for (uint32_t r = 0; r < 8; ++r) {
    const Vertex v = cluster->gpu_vertex(r);
    CHECK(g[v].kind == DeviceKind::kGpu);
    CHECK(g[v].index == r);
    CHECK(InjectionBandwidth(g, v) == Rate::GigaPerSecond(450));
    CHECK(EjectionBandwidth(g, v) == Rate::GigaPerSecond(450));
  }
}

TEST_CASE("A route between GPUs crosses the NVSwitch: two NVLink hops") {
  auto cluster = BuildCluster(Spec("dgx-h100"));
  REQUIRE(cluster.ok());
  const std::vector<Edge> path = cluster->Route(0, 3);
  REQUIRE(path.size() == 2);
  const Graph& g = cluster->graph();
  CHECK(boost::source(path[0], g) == cluster->gpu_vertex(0));
  CHECK(g[boost::target(path[0], g)].kind == DeviceKind::kNvSwitch);
  CHECK(boost::target(path[1], g) == cluster->gpu_vertex(3));
  CHECK(g[path[0]].link_class == LinkClass::kNvLink);
  // Two hops of 500 ns each.
  CHECK(cluster->RouteLatency(0, 3) == Duration::Nanoseconds(1000));
  CHECK(cluster->Route(2, 2).empty());
  CHECK(cluster->RouteLatency(2, 2) == Duration());
}

TEST_CASE("A job may use fewer GPUs than the node has") {
  auto cluster = BuildCluster(Spec("dgx-h100", 4));
  REQUIRE(cluster.ok());
  CHECK(cluster->gpus() == 4);
  CHECK(boost::num_vertices(cluster->graph()) == 9);  // the node is still whole
}

TEST_CASE("Cluster errors name the field and the valid values") {
  auto unknown = BuildCluster(Spec("dgx-h900"));
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message() ==
        "cluster.node_preset = \"dgx-h900\": unknown node preset; valid: dgx-h100, dgx-h200");

  auto missing = BuildCluster(pb::Cluster());
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error().message(), Catch::Contains("missing"));

  auto too_many = BuildCluster(Spec("dgx-h100", 9));
  REQUIRE_FALSE(too_many.ok());
  CHECK_THAT(too_many.error().message(), Catch::StartsWith("cluster.gpus = 9: "));
  CHECK_THAT(too_many.error().message(), Catch::Contains("valid: 1 to 8"));

  auto none = BuildCluster(Spec("dgx-h100", 0));
  REQUIRE_FALSE(none.ok());

  pb::Cluster two_nodes = Spec("dgx-h100");
  two_nodes.set_nodes(2);
  auto multi = BuildCluster(two_nodes);
  REQUIRE_FALSE(multi.ok());
  CHECK_THAT(multi.error().message(), Catch::StartsWith("cluster.nodes = 2: "));
}

}  // namespace moesim::topology
