// The points of a sweep (sim/sweep/sweep_points.h): --set lists and ranges, the cross product's
// order, and each point's scenario with presets and catalog models written out.
#include "sim/sweep/sweep_points.h"

#include <catch2/catch.hpp>

#include "sim/sweep/sweep.h"
#include "test_paths.h"
#include "topology/presets.h"

namespace moesim::sim {
namespace {

using SweepValues = std::vector<std::string>;

SweepValues SweepRange(const std::string& item, bool integer = false) {
  const auto v = ExpandRange(item, integer, Location{"--set f=" + item});
  REQUIRE(v.ok());
  return *v;
}

std::string SweepRangeError(const std::string& item, bool integer = false) {
  const auto v = ExpandRange(item, integer, Location{"--set f=" + item});
  REQUIRE_FALSE(v.ok());
  return v.error().message();
}

SweepAxis SweepAxisOf(const std::string& text) {
  StatusOr<SweepAxis> a = ParseSetFlag(text);
  if (!a.ok()) FAIL(a.error().message());
  return *std::move(a);
}

std::string SweepAxisError(const std::string& text) {
  const StatusOr<SweepAxis> a = ParseSetFlag(text);
  REQUIRE_FALSE(a.ok());
  return a.error().message();
}

SweepBase SweepMixtral64() {
  StatusOr<SweepBase> b =
      LoadSweepBase(testing::SourcePath("scenarios/mixtral-8x7b-h100-64.pbtxt"));
  REQUIRE(b.ok());
  return *std::move(b);
}

}  // namespace

TEST_CASE("Ranges: start + i x step up to stop, printed as written", "[sweep]") {
  // (1.5 - 0) / 0.25 = 6 steps: 7 values, the stop landing on the last; 2 decimals as 0.25 has,
  // trailing zeros cut.
  CHECK(SweepRange("0:1.5:0.25") == SweepValues{"0", "0.25", "0.5", "0.75", "1", "1.25", "1.5"});
  // 3 x 0.1 = 0.30000000000000004 in binary: printed with 1 decimal, 0.3. (1 - 0) / 0.1 =
  // 9.999999999999998 counts as landing on step 10 (within 1e-9): 11 values.
  const SweepValues tenths = SweepRange("0:1:0.1");
  REQUIRE(tenths.size() == 11);
  CHECK(tenths[3] == "0.3");
  CHECK(tenths.back() == "1");
  // 0.9 + 0.3 = 1.2 > 1: the stop is not on a step and not included.
  CHECK(SweepRange("0:1:0.3") == SweepValues{"0", "0.3", "0.6", "0.9"});
  // Geometric: 100 x 2^i while <= 800 (and <= 700: 800 is past it).
  CHECK(SweepRange("100:800:x2") == SweepValues{"100", "200", "400", "800"});
  CHECK(SweepRange("100:700:x2") == SweepValues{"100", "200", "400"});
  CHECK(SweepRange("1:2:x1.5") == SweepValues{"1", "1.5"});
  CHECK(SweepRange("8") == SweepValues{"8"});  // not a range: as it is
}

TEST_CASE("Bad ranges say what a range is", "[sweep]") {
  const std::string form =
      "; valid: start:stop:step or start:stop:xFACTOR, e.g. 0:1.5:0.25 or "
      "100:800:x2";
  CHECK(SweepRangeError("1:2") == "--set f=1:2: range = 1:2: not a range" + form);
  CHECK(SweepRangeError("2:1:1") == "--set f=2:1:1: range = 2:1:1: stop is below start" + form);
  CHECK(SweepRangeError("0:1:0") ==
        "--set f=0:1:0: range = 0:1:0: the step must be a number above 0" + form);
  CHECK(SweepRangeError("1:8:x1") ==
        "--set f=1:8:x1: range = 1:8:x1: the factor after x must be a number above 1" + form);
  CHECK(SweepRangeError("1:2:0.5", true) ==
        "--set f=1:2:0.5: range = 1:2:0.5: gives 1.5, not a whole number, for a field of whole "
        "numbers" +
            form);
  CHECK(SweepRangeError("0:1e9:1") ==
        "--set f=0:1e9:1: range = 0:1e9:1: more than 100000 values" + form);
}

TEST_CASE("Each --set flag: a path, then values and ranges, each checked", "[sweep]") {
  const SweepAxis ep = SweepAxisOf("plan.ep=1,2,4:16:x2");
  CHECK(ep.path.text == "plan.ep");
  CHECK(ep.values == SweepValues{"1", "2", "4", "8", "16"});
  CHECK(ep.Where("8").ToString() == "--set plan.ep=8");
  CHECK(SweepAxisOf("routing.synthetic.distribution=UNIFORM,ZIPF").values ==
        SweepValues{"UNIFORM", "ZIPF"});
  CHECK(SweepAxisError("plan.ep") ==
        "--set plan.ep: no '=' between the field and its values; valid: "
        "FIELD=V1,V2,... e.g. plan.ep=8,16");
  CHECK(SweepAxisError("plan.ep=8,,16") ==
        "--set plan.ep=8,,16: plan.ep: an empty value in the list; valid: V1,V2,... with no empty "
        "item");
  // A path longer than any field path is refused without echoing it; a long value is cut.
  CHECK(SweepAxisError(std::string(300, 'a') + "=1") ==
        "--set: a field path of 300 characters; valid: a path of the scenario's field names, at "
        "most 256 characters");
  CHECK(SweepAxisError("plan.ep=" + std::string(200, '9')).size() < 400);
  // Each value located at its own --set.
  CHECK(SweepAxisError("plan.ep=8,0") ==
        "--set plan.ep=0: plan.ep = 0: out of range; valid: 1 to "
        "1048576");
  CHECK(SweepAxisError("cluster.node_preset=dgx-h100,dgx-h10") ==
        "--set cluster.node_preset=dgx-h10: cluster.node_preset = \"dgx-h10\": unknown node preset "
        "(did you mean \"dgx-h100\"?); valid: dgx-a100, dgx-h100, dgx-h200, hgx-h800, "
        "gb200-nvl72, pcie-8gpu");
}

TEST_CASE("The cross product runs in flag order, the last flag fastest", "[sweep]") {
  const std::vector<SweepAxis> axes = {SweepAxisOf("plan.ep=2,4,8"), SweepAxisOf("plan.tp=1,2")};
  const StatusOr<size_t> n = PointCount(axes);
  REQUIRE(n.ok());
  CHECK(*n == 6);  // 3 x 2
  CHECK(PointValues(axes, 0) == std::vector<size_t>{0, 0});
  CHECK(PointValues(axes, 1) == std::vector<size_t>{0, 1});  // ep 2, tp 2
  CHECK(PointValues(axes, 2) == std::vector<size_t>{1, 0});  // ep 4, tp 1
  CHECK(PointValues(axes, 5) == std::vector<size_t>{2, 1});  // ep 8, tp 2
  CHECK(*PointCount({}) == 1);
  // One field in two --set: which value would a point get? Refused.
  CHECK(
      PointCount({SweepAxisOf("plan.ep=2,4"), SweepAxisOf("plan.tp=1"), SweepAxisOf("plan.ep=8")})
          .error()
          .message() ==
      "--set plan.ep: the field is swept by an earlier --set too; valid: each field in one --set, "
      "its values as a list");
  // 1000 x 1000 points: past kMaxSweepPoints.
  const std::vector<SweepAxis> big = {SweepAxisOf("plan.ep=1:1000:1"),
                                      SweepAxisOf("plan.tp=1:1000:1")};
  CHECK(PointCount(big).error().message() ==
        "--set: the cross product has more than 100000 points; valid: fewer values per field");
}

TEST_CASE("A path into cluster.node writes the node preset out first", "[sweep]") {
  const SweepBase base = SweepMixtral64();
  const StatusOr<PointSpec> p =
      MakePoint(base, {SweepAxisOf("cluster.node.nics.gbit_per_s=200")}, 0);
  REQUIRE(p.ok());
  const pb::Cluster& c = p->spec.cluster();
  CHECK(c.node_preset().empty());
  // dgx-h100 (topology/presets.cc): 8 GPUs, NVLink 450 GB/s, 4 PCIe switches and 2 CPUs at 63
  // GB/s, 8 NICs, here at 200 Gb/s instead of 400.
  CHECK(c.node().name() == "dgx-h100");
  CHECK(c.node().gpus() == 8);
  CHECK(c.node().nvlink().bandwidth_gbps() == 450);
  CHECK(c.node().pcie().switches() == 4);
  CHECK(c.node().pcie().cpus() == 2);
  CHECK(c.node().pcie().bandwidth_gbps() == 63);
  CHECK(c.node().nics().count() == 8);
  CHECK(c.node().nics().gbit_per_s() == 200);
  CHECK(c.nodes() == 8);  // the rest of the cluster block is kept
  // The set field at its --set; the rest of the written-out node where the preset was named.
  CHECK(p->file.Locate("cluster.node.nics.gbit_per_s").ToString() ==
        "--set cluster.node.nics.gbit_per_s=200");
  CHECK(p->file.Locate("cluster.node.gpus").ToString() ==
        base.file.Locate("cluster.node_preset").ToString());
  CHECK(p->file.Locate("plan.ep").ToString() == base.file.Locate("plan.ep").ToString());
  // Every preset written out builds a node with the same devices and links.
  for (const topology::NodePreset& preset : topology::KnownNodePresets()) {
    const auto from_shape = topology::NodeFromShape(preset.shape);
    const auto from_spec = topology::NodeFromSpec(topology::NodeSpecOf(preset), nullptr, "node");
    REQUIRE(from_shape.ok());
    REQUIRE(from_spec.ok());
    CHECK(from_spec->devices.size() == from_shape->devices.size());
    REQUIRE(from_spec->links.size() == from_shape->links.size());
    for (size_t i = 0; i < from_spec->links.size(); ++i) {
      CHECK(from_spec->links[i].link.bandwidth == from_shape->links[i].link.bandwidth);
      CHECK(from_spec->links[i].link.latency == from_shape->links[i].link.latency);
    }
    CHECK(from_spec->nic_bandwidth == from_shape->nic_bandwidth);
    CHECK(from_spec->nic_latency == from_shape->nic_latency);
  }
}

TEST_CASE("A path into model_spec copies the catalog model in first", "[sweep]") {
  const SweepBase base = SweepMixtral64();  // model: "mixtral-8x7b"
  const StatusOr<PointSpec> p = MakePoint(base, {SweepAxisOf("model_spec.top_k=1")}, 0);
  REQUIRE(p.ok());
  REQUIRE(p->spec.has_model_spec());
  // Mixtral-8x7B (models/catalog/mixtral-8x7b.pbtxt): 8 experts of 14336, hidden 4096, top-2.
  CHECK(p->spec.model_spec().name() == "mixtral-8x7b");
  CHECK(p->spec.model_spec().num_experts() == 8);
  CHECK(p->spec.model_spec().expert_ffn_size() == 14336);
  CHECK(p->spec.model_spec().top_k() == 1);
  CHECK(p->file.Locate("model_spec.num_experts").ToString() ==
        base.file.Locate("model").ToString());
}

TEST_CASE("Setting cluster.node_preset drops the node block it replaces", "[sweep]") {
  SweepBase base = SweepMixtral64();
  const StatusOr<PointSpec> written =
      MakePoint(base, {SweepAxisOf("cluster.node.nics.gbit_per_s=200")}, 0);
  REQUIRE(written.ok());
  base.spec = written->spec;  // now a node block, no preset
  const StatusOr<PointSpec> p =
      MakePoint(base, {SweepAxisOf("cluster.node_preset=gb200-nvl72")}, 0);
  REQUIRE(p.ok());
  CHECK(p->spec.cluster().node_preset() == "gb200-nvl72");
  CHECK_FALSE(p->spec.cluster().has_node());
  // Preset first, then a figure of it: the new preset is the one written out.
  const StatusOr<PointSpec> q = MakePoint(
      SweepMixtral64(),
      {SweepAxisOf("cluster.node_preset=gb200-nvl72"), SweepAxisOf("cluster.node.nics.count=36")},
      0);
  REQUIRE(q.ok());
  CHECK(q->spec.cluster().node().gpus() == 72);
  CHECK(q->spec.cluster().node().nics().count() == 36);
}

}  // namespace moesim::sim
