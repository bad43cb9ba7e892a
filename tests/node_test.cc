#include "topology/node.h"

#include <catch2/catch.hpp>

#include "topology/cluster.h"

namespace moesim::topology {
namespace {

// Parses `text` as a scenario's cluster block and builds it.
StatusOr<Cluster> BuildNode(const std::string& text) {
  pb::Cluster spec;
  auto file = TextFile::ParseString(text, "n.pbtxt", &spec);
  if (!file.ok()) return file.error();
  file->set_root_field("cluster");
  return BuildCluster(spec, &*file);
}

// Two GPUs with a direct NVLink and a PCIe switch each under one CPU.
constexpr const char* kDevices = R"(node {
  name: "pair"
  gpu: "h100-sxm"
  device { id: "g0" kind: GPU }
  device { id: "g1" kind: GPU }
  device { id: "sw0" kind: PCIE_SWITCH }
  device { id: "sw1" kind: PCIE_SWITCH }
  device { id: "cpu" kind: CPU }
  link { a: "g0" b: "g1" link_class: NVLINK bandwidth_gbps: 100 latency_ns: 700 }
  link { a: "g0" b: "sw0" link_class: PCIE bandwidth_gbps: 32 latency_ns: 200 }
  link { a: "g1" b: "sw1" link_class: PCIE bandwidth_gbps: 32 latency_ns: 200 }
  link { a: "sw0" b: "cpu" link_class: PCIE bandwidth_gbps: 32 latency_ns: 200 }
  link { a: "sw1" b: "cpu" link_class: PCIE bandwidth_gbps: 32 latency_ns: 200 }
}
)";

}  // namespace

TEST_CASE("A node device by device: its links, routes over the direct NVLink") {
  auto c = BuildNode(kDevices);
  REQUIRE(c.ok());
  CHECK(c->gpus() == 2);
  CHECK(c->description() == "pair");
  const Router& r = c->router();
  // The direct NVLink is one hop; PCIe would be 4.
  CHECK(r.Hops(0, 1) == 1);
  CHECK(r.Latency(0, 1) == Duration::Nanoseconds(700));
  CHECK(r.Bottleneck(0, 1) == Rate::GigaPerSecond(100));
}

TEST_CASE("Without NVLink, GPUs route over PCIe through their common CPU") {
  std::string text = kDevices;
  text.erase(
      text.find("  link { a: \"g0\" b: \"g1\""),
      std::string(
          "  link { a: \"g0\" b: \"g1\" link_class: NVLINK bandwidth_gbps: 100 latency_ns: 700 }\n")
          .size());
  auto c = BuildNode(text);
  REQUIRE(c.ok());
  // g0 -> sw0 -> cpu -> sw1 -> g1.
  CHECK(c->router().Hops(0, 1) == 4);
  CHECK(c->router().Latency(0, 1) == Duration::Nanoseconds(800));
  CHECK(c->router().Bottleneck(0, 1) == Rate::GigaPerSecond(32));
}

TEST_CASE("Node errors: zero bandwidth, duplicate id, unknown id, unreachable GPU, both forms") {
  auto replace = [](std::string text, const std::string& from, const std::string& to) {
    text.replace(text.find(from), from.size(), to);
    return text;
  };
  auto zero = BuildNode(replace(kDevices, "bandwidth_gbps: 100", "bandwidth_gbps: 0"));
  REQUIRE_FALSE(zero.ok());
  CHECK(zero.error().message() ==
        "n.pbtxt:9:45: cluster.node.link[0].bandwidth_gbps = 0: out of range; valid: 0.001 to "
        "1000000 GB/s");

  auto negative = BuildNode(replace(kDevices, "bandwidth_gbps: 100", "bandwidth_gbps: -5"));
  REQUIRE_FALSE(negative.ok());
  CHECK_THAT(negative.error().message(),
             Catch::Contains("bandwidth_gbps = -5: out of range; valid: 0.001 to 1000000 GB/s"));

  auto duplicate = BuildNode(replace(kDevices, "device { id: \"sw1\"", "device { id: \"sw0\""));
  REQUIRE_FALSE(duplicate.ok());
  CHECK(duplicate.error().message() ==
        "n.pbtxt:7:12: cluster.node.device[3].id = \"sw0\": duplicate device id; valid: ids unique "
        "in "
        "the node");

  auto unknown = BuildNode(replace(kDevices, "a: \"sw1\" b: \"cpu\"", "a: \"sw1\" b: \"cpu9\""));
  REQUIRE_FALSE(unknown.ok());
  CHECK_THAT(unknown.error().message(),
             Catch::Contains("link[4].b = \"cpu9\": no device with this id"));

  // Drop both links of g1: nothing reaches it.
  std::string cut = replace(
      kDevices,
      "  link { a: \"g0\" b: \"g1\" link_class: NVLINK bandwidth_gbps: 100 latency_ns: 700 }\n",
      "");
  cut = replace(
      cut, "  link { a: \"g1\" b: \"sw1\" link_class: PCIE bandwidth_gbps: 32 latency_ns: 200 }\n",
      "");
  auto unreachable = BuildNode(cut);
  REQUIRE_FALSE(unreachable.ok());
  CHECK_THAT(unreachable.error().message(), Catch::Contains("gpu g1 cannot reach g0"));

  auto both = BuildNode(replace(kDevices, "name: \"pair\"", "name: \"pair\" gpus: 2"));
  REQUIRE_FALSE(both.ok());
  CHECK_THAT(both.error().message(), Catch::Contains("either by shape"));

  auto no_gpu_model = BuildNode("node { gpus: 2 }");
  REQUIRE_FALSE(no_gpu_model.ok());
  CHECK_THAT(no_gpu_model.error().message(),
             Catch::StartsWith("n.pbtxt:1:1: cluster.node.gpu: missing; valid: a100-sxm"));

  auto zero_nvlink = BuildNode("node { gpu: \"h100-sxm\" gpus: 2 nvlink { bandwidth_gbps: 0 } }");
  REQUIRE_FALSE(zero_nvlink.ok());
  CHECK_THAT(zero_nvlink.error().message(),
             Catch::Contains("cluster.node.nvlink.bandwidth_gbps = 0"));
}

TEST_CASE("Shape builder spreads GPUs and NICs over PCIe switches in order") {
  NodeShape shape;
  shape.name = "t";
  shape.gpu = "h100-sxm";
  shape.gpus = 8;
  shape.pcie_switches = 4;
  shape.cpus = 2;
  shape.pcie_bandwidth = Rate::GigaPerSecond(63);
  shape.nics = 8;
  shape.nic_bandwidth = Rate::GigaPerSecond(50);
  auto node = NodeFromShape(shape);
  REQUIRE(node.ok());
  CHECK(node->CountOf(DeviceKind::kPcieSwitch) == 4);
  CHECK(node->CountOf(DeviceKind::kNvSwitch) == 0);  // no NVLink bandwidth given
  // GPU i and NIC i on switch i / 2; switches 0-1 on CPU 0, 2-3 on CPU 1.
  auto switch_of = [&](const std::string& id) {
    for (const auto& l : node->links) {
      const auto& a = node->devices[l.a];
      const auto& b = node->devices[l.b];
      if (a.id == id && b.kind == DeviceKind::kPcieSwitch) return b.id;
    }
    return std::string();
  };
  CHECK(switch_of("gpu5") == "pcie2");
  CHECK(switch_of("nic5") == "pcie2");
  CHECK(switch_of("pcie3").empty());  // switches link up to CPUs, not to switches
  shape.pcie_switches = 9;
  CHECK_FALSE(NodeFromShape(shape).ok());
}

}  // namespace moesim::topology
