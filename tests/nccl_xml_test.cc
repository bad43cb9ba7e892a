#include "topology/nccl_xml.h"

#include <catch2/catch.hpp>

#include "test_paths.h"
#include "topology/cluster.h"
#include "topology/summary.h"

namespace moesim::topology {
namespace {

std::string SharedXml(const std::string& name) {
  return testing::SharedData("nccl_topology/" + name);
}

uint32_t CountNvLinks(const NodeTemplate& node, uint32_t device) {
  uint32_t n = 0;
  for (const auto& l : node.links) {
    if (l.link.link_class == LinkClass::kNvLink && (l.a == device || l.b == device))
      n += l.link.count;
  }
  return n;
}

}  // namespace

TEST_CASE("IBM 8x H100 dump: 8 GPUs, 4 NVSwitches, 18 NVLinks per GPU, 8 NICs of 200 Gb/s") {
  auto node = NodeFromNcclXml(SharedXml("ibm_vpc_gx3d-160x1792x8h100_nccl_topo.xml"), "");
  REQUIRE(node.ok());
  CHECK(node->CountOf(DeviceKind::kGpu) == 8);
  CHECK(node->CountOf(DeviceKind::kNvSwitch) == 4);
  CHECK(node->CountOf(DeviceKind::kNic) == 8);
  CHECK(node->CountOf(DeviceKind::kCpu) == 2);
  CHECK(node->gpu.name == "h100-sxm");  // sm 90
  // speed="200000" Mb/s = 25 GB/s per direction.
  CHECK(node->nic_bandwidth == Rate::GigaPerSecond(25));
  for (uint32_t g : node->IndicesOf(DeviceKind::kGpu)) {
    // 5 + 5 + 4 + 4 NVLinks to the 4 switches.
    CHECK(CountNvLinks(*node, g) == 18);
  }
  // GPUs in rank order: gpu0 is the one with rank="0" (bus a4), its 4 switch links 5, 5, 4, 4.
  std::vector<uint32_t> counts;
  for (const auto& l : node->links) {
    if (l.link.link_class == LinkClass::kNvLink && l.a == 0) counts.push_back(l.link.count);
  }
  CHECK(counts == std::vector<uint32_t>{5, 5, 4, 4});
}

TEST_CASE("IBM dump as a cluster: GPU pairs stripe over the 4 NVSwitches at 450 GB/s") {
  pb::Cluster spec;
  spec.set_nccl_topology(SharedXml("ibm_vpc_gx3d-160x1792x8h100_nccl_topo.xml"));
  auto c = BuildCluster(spec);
  REQUIRE(c.ok());
  const Router& r = c->router();
  // gpu0 -> gpu1 over 4 two-hop paths, weighted by each path's narrower end: GPU 0 has 5, 5, 4, 4
  // links to switches f5, f4, f3, f6 and GPU 1 has 5 to f4, f5 and 4 to f6, f3, so the 4 paths
  // carry 125, 125, 100, 100 GB/s of a total 450: one transfer reaches 450 GB/s.
  CHECK(r.PathCount(0, 1) == 4);
  CHECK(r.Hops(0, 1) == 2);
  CHECK(r.Bottleneck(0, 1).giga() == Approx(450));
  const pb::TopologySummary s = Summarize(*c);
  CHECK(s.nvlinks_per_gpu() == 18);
  CHECK(s.intra_node_gbps() == Approx(450));
}

TEST_CASE(
    "Azure ND H100 v5 file: no NVLink in the XML, so it comes from the GPU model, with warnings") {
  auto node = NodeFromNcclXml(SharedXml("azure_ndv5_H100_topo.xml"), "");
  REQUIRE(node.ok());
  CHECK(node->CountOf(DeviceKind::kGpu) == 8);
  CHECK(node->CountOf(DeviceKind::kNic) == 8);
  CHECK(node->CountOf(DeviceKind::kCpu) == 2);
  // PCIe 32 GT/s (Gen5) and no sm: guessed h100-sxm; NVLink 18 x 25 = 450 on one NVSwitch.
  CHECK(node->gpu.name == "h100-sxm");
  CHECK(node->CountOf(DeviceKind::kNvSwitch) == 1);
  CHECK(CountNvLinks(*node, 0) == 18);
  // No <net speed>: Hopper systems' NDR 400 Gb/s = 50 GB/s.
  CHECK(node->nic_bandwidth == Rate::GigaPerSecond(50));
  // PCIe Gen5 x16: 32 x 16 x 128/130 / 8 = 63.0 GB/s.
  CHECK(node->links.front().link.bandwidth.giga() == Approx(63.0).epsilon(1e-3));
  std::string all;
  for (const auto& w : node->warnings) all += w + "\n";
  CHECK_THAT(all,
             Catch::Contains("no <nvlink> elements: NVLink taken from the GPU model h100-sxm"));
  CHECK_THAT(all, Catch::Contains("guessed from PCIe Gen5"));
  // An explicit GPU model silences the guess.
  auto h200 = NodeFromNcclXml(SharedXml("azure_ndv5_H100_topo.xml"), "h200-sxm");
  REQUIRE(h200.ok());
  CHECK(h200->gpu.name == "h200-sxm");
}

TEST_CASE("Azure ND A100 v4 file: 4 NUMA domains, Gen4, A100 NVLink from the model") {
  auto node = NodeFromNcclXml(SharedXml("azure_ndv4_A100_topo.xml"), "");
  REQUIRE(node.ok());
  CHECK(node->CountOf(DeviceKind::kGpu) == 8);
  CHECK(node->CountOf(DeviceKind::kNic) == 8);
  CHECK(node->CountOf(DeviceKind::kCpu) == 4);
  CHECK(node->gpu.name == "a100-sxm");
  CHECK(CountNvLinks(*node, 0) == 12);                    // A100: 12 NVLinks, 300 GB/s
  CHECK(node->nic_bandwidth == Rate::GigaPerSecond(25));  // HDR
  // PCIe "16 GT/s" x16 = 31.5 GB/s.
  CHECK(node->links.front().link.bandwidth.giga() == Approx(31.5).epsilon(1e-3));
}

TEST_CASE("Malformed or wrong XML: the file and line") {
  auto truncated = NodeFromNcclXmlString(
      "<system version=\"1\">\n  <cpu numaid=\"0\">\n    <pci busid=\"a\"\n", "t.xml", "");
  REQUIRE_FALSE(truncated.ok());
  CHECK_THAT(truncated.error().message(), Catch::StartsWith("t.xml:"));
  CHECK_THAT(truncated.error().message(), Catch::Contains("malformed XML"));

  auto root = NodeFromNcclXmlString("<topology/>", "r.xml", "");
  REQUIRE_FALSE(root.ok());
  CHECK(root.error().message() ==
        "r.xml:1:1: root element is <topology>; valid: <system> as NCCL writes it");

  auto duplicate = NodeFromNcclXmlString(
      "<system>\n<cpu numaid=\"0\">\n"
      "<pci busid=\"0000:01:00.0\" class=\"0x030200\" link_speed=\"32.0 GT/s PCIe\" "
      "link_width=\"16\"/>\n"
      "<pci busid=\"0000:01:00.0\" class=\"0x030200\" link_speed=\"32.0 GT/s PCIe\" "
      "link_width=\"16\"/>\n"
      "</cpu>\n</system>\n",
      "d.xml", "");
  REQUIRE_FALSE(duplicate.ok());
  CHECK(
      duplicate.error().message() ==
      "d.xml:4:1: duplicate PCI busid \"0000:01:00.0\" (first at line 3); valid: each busid once");

  auto no_gpu = NodeFromNcclXmlString("<system><cpu numaid=\"0\"/></system>", "n.xml", "");
  REQUIRE_FALSE(no_gpu.ok());
  CHECK_THAT(no_gpu.error().message(), Catch::Contains("no GPU found"));

  auto bad_model = NodeFromNcclXml(SharedXml("azure_ndv5_H100_topo.xml"), "h300");
  REQUIRE_FALSE(bad_model.ok());
  CHECK_THAT(bad_model.error().message(), Catch::Contains("unknown GPU"));

  auto missing = NodeFromNcclXml("/no/such/topo.xml", "");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message() ==
        "/no/such/topo.xml: cannot open file: No such file or directory");
}

TEST_CASE("Speeds and widths no hardware has: the line and what is valid, not an overflow") {
  // Found by fuzzing (tests/fuzz/nccl_xml_fuzz.cc): link_speed 1e110 GT/s x 16 lanes x 128/130 / 8
  // = 1.97e110 GB/s, past what Rate's uint64 bytes per second hold (1.8e19), converted anyway
  // (undefined behaviour). Now refused at its line by the range a cluster file's
  // pcie.bandwidth_gbps declares (proto/cluster.proto: 0.001 to 10^6 GB/s).
  auto speed = NodeFromNcclXml(testing::BadFixture("nccl_link_speed_overflow.xml"), "");
  REQUIRE_FALSE(speed.ok());
  CHECK(speed.error().message() ==
        testing::BadFixture("nccl_link_speed_overflow.xml") +
            ":3:1: <pci link_speed=\"1e110 GT/s PCIe\" link_width=\"16\"> (GB/s) = "
            "1.9692307692307693e+110: out of range; valid: 0.001 to 1000000 GB/s");

  auto nan = NodeFromNcclXmlString(
      "<system><cpu numaid=\"0\">\n<pci busid=\"a\" class=\"0x030200\" link_speed=\"nan\"/>"
      "</cpu></system>",
      "n.xml", "");
  REQUIRE_FALSE(nan.ok());
  CHECK(nan.error().message() ==
        "n.xml:2:1: <pci link_speed=\"nan\" link_width=\"\"> (GB/s) = nan: not a finite number; "
        "valid: 0.001 to 1000000 GB/s");

  // 32 lanes is PCIe's widest link (x32), so 33 is the first width refused.
  auto width = NodeFromNcclXmlString(
      "<system><cpu numaid=\"0\">\n<pci busid=\"a\" class=\"0x030200\" link_width=\"33\"/>"
      "</cpu></system>",
      "w.xml", "");
  REQUIRE_FALSE(width.ok());
  CHECK(width.error().message() ==
        "w.xml:2:1: <pci link_width=\"33\">: not a PCIe width; valid: lanes 1 to 32");

  // A NIC attached to the CPU had no check at all: a negative speed became a 0 GB/s link. Now
  // the range of a cluster file's nics.gbit_per_s (0.008 to 8e6 Gb/s), in NCCL's Mb/s.
  auto cpu_nic = NodeFromNcclXmlString(
      "<system><cpu numaid=\"0\"><nic>\n<net name=\"mlx5_0\" speed=\"-400000\"/></nic></cpu>"
      "</system>",
      "c.xml", "");
  REQUIRE_FALSE(cpu_nic.ok());
  CHECK(cpu_nic.error().message() ==
        "c.xml:2:1: <net speed> = -400000: out of range; valid: 8 to 8000000000 Mb/s");
  // 8,000,000,000 Mb/s is the largest taken: 8e9 / 8000 = 10^6 GB/s; one more is refused.
  const std::string nic_on_pci =
      "<system><cpu numaid=\"0\">"
      "<pci busid=\"g\" class=\"0x030200\" link_speed=\"32.0 GT/s PCIe\" link_width=\"16\">"
      "<gpu sm=\"90\" rank=\"0\" dev=\"0\"/></pci>"
      "<pci busid=\"n\" class=\"0x020700\"><nic>\n<net name=\"mlx5_0\" speed=\"SPEED\"/></nic></pci>"
      "</cpu></system>";
  auto with_speed = [&](const std::string& speed) {
    std::string xml = nic_on_pci;
    xml.replace(xml.find("SPEED"), 5, speed);
    return NodeFromNcclXmlString(xml, "s.xml", "");
  };
  auto fastest = with_speed("8000000000");
  REQUIRE(fastest.ok());
  CHECK(fastest->nic_bandwidth == Rate::GigaPerSecond(1e6));
  auto faster = with_speed("8000000001");
  REQUIRE_FALSE(faster.ok());
  CHECK(faster.error().message() ==
        "s.xml:2:1: <net speed> = 8000000001: out of range; valid: 8 to 8000000000 Mb/s");
  auto text = with_speed("fast");
  REQUIRE_FALSE(text.ok());
  CHECK(text.error().message() ==
        "s.xml:2:1: <net speed> = fast: not a number; valid: 8 to 8000000000 Mb/s");
}

}  // namespace moesim::topology
