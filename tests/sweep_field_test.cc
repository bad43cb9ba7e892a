// Field paths and values of `moesim sweep --set` (sim/sweep/sweep_field.h): resolved through
// protobuf reflection, every error located at the flag and naming what is valid.
#include "sim/sweep/sweep_field.h"

#include <catch2/catch.hpp>

#include "proto/scenario.pb.h"

namespace moesim::sim {
namespace {

const Location kSweepFlag{"--set X"};

FieldPath SweepPath(const std::string& text) {
  const StatusOr<FieldPath> p = ParseFieldPath(text, pb::Scenario::descriptor(), kSweepFlag);
  REQUIRE(p.ok());
  return *p;
}

std::string SweepPathError(const std::string& text) {
  const StatusOr<FieldPath> p = ParseFieldPath(text, pb::Scenario::descriptor(), kSweepFlag);
  REQUIRE_FALSE(p.ok());
  return p.error().message();
}

std::string SweepSetError(pb::Scenario& s, const std::string& path, const std::string& value) {
  const Status set = SetField(s, SweepPath(path), value, kSweepFlag);
  REQUIRE_FALSE(set.ok());
  return set.error().message();
}

}  // namespace

TEST_CASE("A field path resolves each component through the scenario's descriptors", "[sweep]") {
  const FieldPath p = SweepPath("cluster.node.nics.gbit_per_s");
  REQUIRE(p.steps.size() == 4);
  CHECK(p.steps[0].field->name() == "cluster");
  CHECK(p.leaf()->full_name() == "moesim.pb.NicSpec.gbit_per_s");
  CHECK(p.bare() == "cluster.node.nics.gbit_per_s");
  CHECK(p.Below("cluster.node"));
  CHECK_FALSE(p.Below("cluster.node.nics.gbit_per_s"));      // the field itself is not below it
  CHECK_FALSE(SweepPath("cluster.nodes").Below("cluster.node"));  // "nodes" is another field
  const FieldPath indexed = SweepPath("cluster.node.device[2].id");
  REQUIRE(indexed.steps[2].index.has_value());
  CHECK(*indexed.steps[2].index == 2);
  CHECK(indexed.bare() == "cluster.node.device.id");
}

TEST_CASE("A bad field path names the component, the message and the valid fields", "[sweep]") {
  // "epp" is one edit from "ep" and from "pp": the first in declaration order is offered.
  CHECK(SweepPathError("plan.epp") ==
        "--set X: plan.epp: no field \"epp\" in plan (ParallelPlan) (did you mean \"pp\"?); valid: "
        "tp, cp, dp, pp, ep, etp, order, pp_first_stage_layers, pp_last_stage_layers, placement");
  CHECK(SweepPathError("plann.ep") ==
        "--set X: plann.ep: no field \"plann\" in Scenario (did you mean \"plan\"?); valid: name, "
        "description, cluster, model, model_spec, plan, workload, routing, step, "
        "hardware_profile");
  CHECK(SweepPathError("plan") ==
        "--set X: plan: plan is a message, not a value; valid: one of its fields: tp, cp, dp, pp, "
        "ep, etp, order, pp_first_stage_layers, pp_last_stage_layers, placement");
  CHECK(SweepPathError("plan.ep.x") ==
        "--set X: plan.ep.x: plan.ep is a value, not a message with fields; valid: plan.ep alone");
  CHECK(SweepPathError("plan[0].ep") ==
        "--set X: plan[0].ep: plan is not a list of messages to index; valid: plan without [0]");
  CHECK(SweepPathError("cluster.node.device[x].id") ==
        "--set X: cluster.node.device[x].id: \"device[x]\" has no whole index; valid: NAME[i] "
        "with i >= 0, e.g. device[0]");
  CHECK(SweepPathError("step.recompute_modules") ==
        "--set X: step.recompute_modules: step.recompute_modules is a list; --set gives single "
        "values; valid: a field that takes one value");
}

TEST_CASE("Values are set by the field's type: numbers, enums by name, bools, strings", "[sweep]") {
  pb::Scenario s;
  REQUIRE(SetField(s, SweepPath("plan.ep"), "16", kSweepFlag).ok());
  CHECK(s.plan().ep() == 16);
  REQUIRE(SetField(s, SweepPath("routing.synthetic.zipf_alpha"), "1.25", kSweepFlag).ok());
  CHECK(s.routing().synthetic().zipf_alpha() == 1.25);
  REQUIRE(SetField(s, SweepPath("routing.synthetic.distribution"), "ZIPF", kSweepFlag).ok());
  CHECK(s.routing().synthetic().distribution() == pb::SyntheticRouting::ZIPF);
  REQUIRE(SetField(s, SweepPath("step.overlap.alltoall"), "true", kSweepFlag).ok());
  CHECK(s.step().overlap().alltoall());
  REQUIRE(SetField(s, SweepPath("cluster.node_preset"), "gb200-nvl72", kSweepFlag).ok());
  CHECK(s.cluster().node_preset() == "gb200-nvl72");
  // A oneof member set through reflection replaces the other: model_spec over model.
  s.set_model("mixtral-8x7b");
  REQUIRE(SetField(s, SweepPath("model_spec.top_k"), "4", kSweepFlag).ok());
  CHECK(s.model_source_case() == pb::Scenario::kModelSpec);
}

TEST_CASE("A bad value says what the field takes, with its declared range", "[sweep]") {
  pb::Scenario s;
  // plan.ep declares [(range) = {min: 1 max: 1048576}] (proto/scenario.proto).
  CHECK(SweepSetError(s, "plan.ep", "0") ==
        "--set X: plan.ep = 0: out of range; valid: 1 to 1048576");
  CHECK(SweepSetError(s, "plan.ep", "7.5") ==
        "--set X: plan.ep = 7.5: not a whole number from 0 to 4294967295; valid: an integer >= 0");
  CHECK(SweepSetError(s, "plan.ep", "-8") ==
        "--set X: plan.ep = -8: not a whole number from 0 to 4294967295; valid: an integer >= 0");
  CHECK(SweepSetError(s, "cluster.node.nics.gbit_per_s", "fast") ==
        "--set X: cluster.node.nics.gbit_per_s = fast: not a number; valid: a decimal number, e.g. "
        "0.5 or 1e3");
  CHECK(SweepSetError(s, "cluster.node.nics.gbit_per_s", "0") ==
        "--set X: cluster.node.nics.gbit_per_s = 0: out of range; valid: 0.008 to 8000000 Gb/s");
  CHECK(SweepSetError(s, "routing.synthetic.distribution", "ZIFP") ==
        "--set X: routing.synthetic.distribution = ZIFP: not a value of Distribution (did you "
        "mean \"ZIPF\"?); valid: DISTRIBUTION_UNSPECIFIED, UNIFORM, ZIPF, COLLAPSE, MEASURED");
  CHECK(SweepSetError(s, "step.overlap.alltoall", "yes") ==
        "--set X: step.overlap.alltoall = yes: not a bool; valid: true, false");
  // The same checks without a scenario, before any point runs.
  CHECK_FALSE(CheckFieldValue(SweepPath("plan.ep"), "0", kSweepFlag).ok());
  CHECK(CheckFieldValue(SweepPath("plan.ep"), "64", kSweepFlag).ok());
}

TEST_CASE("A repeated message on the path: every element, or the one indexed", "[sweep]") {
  pb::Scenario s;
  for (const char* id : {"gpu0", "gpu1", "nic0"})
    s.mutable_cluster()->mutable_node()->add_device()->set_id(id);
  REQUIRE(SetField(s, SweepPath("cluster.node.device.kind"), "GPU", kSweepFlag).ok());
  for (const pb::DeviceSpec& d : s.cluster().node().device()) CHECK(d.kind() == pb::GPU);
  REQUIRE(SetField(s, SweepPath("cluster.node.device[2].kind"), "NIC", kSweepFlag).ok());
  CHECK(s.cluster().node().device(1).kind() == pb::GPU);
  CHECK(s.cluster().node().device(2).kind() == pb::NIC);
  CHECK(SweepSetError(s, "cluster.node.device[3].kind", "NIC") ==
        "--set X: cluster.node.device[3]: past the end: the scenario lists 3; valid: [0] to [2]");
  pb::Scenario empty;
  CHECK(SweepSetError(empty, "cluster.node.link.latency_ns", "100") ==
        "--set X: cluster.node.link: the scenario lists none to set; valid: a scenario that lists "
        "at least one");
}

}  // namespace moesim::sim
