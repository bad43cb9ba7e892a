// The sweep engine (sim/sweep/sweep.h): every row is what `moesim simulate` prints for the same
// scenario with the values written in by hand, on any number of threads or ranks.
#include "sim/sweep/sweep.h"

#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <sstream>

#include "proto/input_file.h"
#include "proto/plan.pb.h"
#include "proto/result.pb.h"
#include "sim/cli/cli.h"
#include "test_paths.h"

namespace moesim::sim {
namespace {

std::string SweepReadText(const std::string& path) {
  const StatusOr<std::string> text = ReadInputFile(path);
  REQUIRE(text.ok());
  return *text;
}

// `text` with `from` (which must be there, once) replaced by `to`.
std::string SweepEdit(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  REQUIRE(text.find(from, at + 1) == std::string::npos);
  return text.replace(at, from.size(), to);
}

// `moesim simulate --json` of a scenario given as text, parsed into `message`.
template <typename Message>
Message SweepSimulateText(const std::string& text, const std::string& name) {
  std::ostringstream out, err;
  REQUIRE(SimulateScenarioText(text, name, "analytical", out, err) == 0);
  Message m;
  REQUIRE(google::protobuf::util::JsonStringToMessage(out.str(), &m).ok());
  return m;
}

SweepBase SweepBaseOf(const std::string& scenario) {
  StatusOr<SweepBase> b = LoadSweepBase(testing::SourcePath(scenario));
  REQUIRE(b.ok());
  return *std::move(b);
}

std::vector<SweepAxis> SweepAxes(const std::vector<std::string>& sets) {
  std::vector<SweepAxis> axes;
  for (const std::string& s : sets) {
    StatusOr<SweepAxis> a = ParseSetFlag(s);
    REQUIRE(a.ok());
    axes.push_back(*std::move(a));
  }
  return axes;
}

int64_t SweepComponentNs(const pb::SweepTable& t, const pb::SweepRow& r, const std::string& name) {
  for (int i = 0; i < t.components_size(); ++i) {
    if (t.components(i) == name) return r.components(i).time_ns();
  }
  FAIL("no component " + name);
  return 0;
}

}  // namespace

TEST_CASE("Sweep rows of a step equal moesim simulate of the edited scenarios", "[sweep]") {
  // Mixtral-8x7B on 64 H100 (TP1 EP8 PP4): EP 4 and 8 against NICs of 200 and 400 Gb/s. The NIC
  // speed goes into the dgx-h100 preset, which the sweep writes out as a node block; by hand,
  // that block is the preset's shape as a user would write it (defaults left out).
  const std::string path = "scenarios/mixtral-8x7b-h100-64.pbtxt";
  const std::string text = SweepReadText(testing::SourcePath(path));
  const SweepBase base = SweepBaseOf(path);
  const std::vector<SweepAxis> axes =
      SweepAxes({"plan.ep=4,8", "cluster.node.nics.gbit_per_s=200,400"});
  SweepRun run;
  run.threads = 2;
  const pb::SweepTable t =
      MakeSweepTable(base, axes, Fidelity::kAnalytical, RunSweepPoints(base, axes, run));
  REQUIRE(t.rows_size() == 4);
  CHECK(t.kind() == "step");
  CHECK(t.failed() == 0);
  for (const pb::SweepRow& r : t.rows()) {
    REQUIRE(r.error().empty());
    const std::string node =
        "node { name: \"dgx-h100\" gpu: \"h100-sxm\" gpus: 8 nvlink { "
        "bandwidth_gbps: 450 } pcie { switches: 4 cpus: 2 } nics { count: 8 "
        "gbit_per_s: " +
        r.values(1) + " } }";
    const std::string edited = SweepEdit(SweepEdit(text, "ep: 8", "ep: " + r.values(0)),
                                         "node_preset: \"dgx-h100\"", node);
    const auto step = SweepSimulateText<pb::StepResult>(edited, testing::SourcePath(path));
    INFO("point " << r.index() << ": ep " << r.values(0) << ", NICs " << r.values(1));
    CHECK(r.total_ns() == step.step_ns());
    CHECK(SweepComponentNs(t, r, "pipeline") == step.pipeline_ns());
    CHECK(SweepComponentNs(t, r, "bubble") == step.bubble_ns());
    CHECK(SweepComponentNs(t, r, "EP all-to-all") == step.alltoall_ns());
    CHECK(SweepComponentNs(t, r, "exposed comm") == step.exposed_comm_ns());
    CHECK(SweepComponentNs(t, r, "grad sync exposed") == step.grad_sync_exposed_ns());
    CHECK(SweepComponentNs(t, r, "optimizer") == step.optimizer_ns());
    CHECK(r.memory_bytes() == step.memory().total());
    CHECK(r.fits() == step.memory().fits());
    CHECK(r.mfu() == step.mfu());
  }
  // Point 3 (EP 8, 400 Gb/s) is the scenario as written: README's 2,679.382 ms.
  CHECK(t.rows(3).total_ns() / 1000 == 2679382);
  // The change against point 0, by its definition.
  CHECK(t.rows(0).delta_pct() == 0);
  CHECK(t.rows(3).delta_pct() ==
        Approx(100.0 * (static_cast<double>(t.rows(3).total_ns()) - t.rows(0).total_ns()) /
               t.rows(0).total_ns()));
}

TEST_CASE("Sweep rows of MoE layers equal moesim simulate, phase by phase", "[sweep]") {
  // Mixtral's layer at 1/8 width on 4 GPUs: tokens per GPU against the preset's NVLink speed.
  const std::string path = "scenarios/mixtral_layer_ep4_small.pbtxt";
  const std::string text = SweepReadText(testing::SourcePath(path));
  const SweepBase base = SweepBaseOf(path);
  const std::vector<SweepAxis> axes =
      SweepAxes({"workload.tokens_per_gpu=128,512", "cluster.node.nvlink.bandwidth_gbps=100,450"});
  const pb::SweepTable t =
      MakeSweepTable(base, axes, Fidelity::kAnalytical, RunSweepPoints(base, axes, SweepRun{}));
  REQUIRE(t.rows_size() == 4);
  CHECK(t.kind() == "layers");
  for (const pb::SweepRow& r : t.rows()) {
    REQUIRE(r.error().empty());
    const std::string node =
        "node { name: \"dgx-h100\" gpu: \"h100-sxm\" gpus: 8 nvlink { "
        "bandwidth_gbps: " +
        r.values(1) +
        " } pcie { switches: 4 cpus: 2 } "
        "nics { count: 8 gbit_per_s: 400 } }";
    const std::string edited =
        SweepEdit(SweepEdit(text, "tokens_per_gpu: 256", "tokens_per_gpu: " + r.values(0)),
                  "node_preset: \"dgx-h100\"", node);
    const auto result = SweepSimulateText<pb::Result>(edited, testing::SourcePath(path));
    INFO("point " << r.index());
    CHECK(r.total_ns() == result.total_ns());
    std::map<std::string, int64_t> phases;
    for (const pb::Phase& p : result.phases()) phases[p.name()] += p.time_ns();
    REQUIRE(static_cast<size_t>(t.components_size()) == phases.size());
    for (const auto& [name, ns] : phases) CHECK(SweepComponentNs(t, r, name) == ns);
  }
}

TEST_CASE("Sweep rows are the same on 1 and 2 threads and split over ranks", "[sweep]") {
  const SweepBase base = SweepBaseOf("scenarios/mixtral-8x7b-h100-64.pbtxt");
  const std::vector<SweepAxis> axes =
      SweepAxes({"routing.synthetic.distribution=ZIPF", "routing.synthetic.zipf_alpha=0.5:1.5:0.5",
                 "plan.ep=2,8"});
  SweepRun one;
  SweepRun two;
  two.threads = 2;
  const std::string a =
      MakeSweepTable(base, axes, Fidelity::kAnalytical, RunSweepPoints(base, axes, one))
          .SerializeAsString();
  const std::string b =
      MakeSweepTable(base, axes, Fidelity::kAnalytical, RunSweepPoints(base, axes, two))
          .SerializeAsString();
  CHECK(a == b);
  // Three "ranks" (offset 0, 1, 2 of stride 3), their rows together in any order.
  std::vector<pb::SweepRow> rows;
  for (uint32_t rank : {2u, 0u, 1u}) {
    SweepRun share;
    share.offset = rank;
    share.stride = 3;
    for (pb::SweepRow& r : RunSweepPoints(base, axes, share)) rows.push_back(std::move(r));
  }
  CHECK(MakeSweepTable(base, axes, Fidelity::kAnalytical, std::move(rows)).SerializeAsString() ==
        a);
}

TEST_CASE("A point the loader refuses gets its located error; the others run", "[sweep]") {
  const SweepBase base = SweepBaseOf("scenarios/mixtral-8x7b-h100-64.pbtxt");
  const std::vector<SweepAxis> axes = SweepAxes({"plan.ep=7,8"});
  const pb::SweepTable t =
      MakeSweepTable(base, axes, Fidelity::kAnalytical, RunSweepPoints(base, axes, SweepRun{}));
  REQUIRE(t.rows_size() == 2);
  CHECK(t.rows(0).error() ==
        "--set plan.ep=7: plan.ep = 7: does not divide the model's 8 experts; valid: 1, 2, 4, 8");
  CHECK(t.rows(1).error().empty());
  CHECK(t.failed() == 1);
  CHECK(t.baseline() == 1);  // the first point that ran
  CHECK(t.rows(1).delta_pct() == 0);
  // The plan rules' own message, located at the --set that gave the value.
  const pb::SweepTable tp =
      MakeSweepTable(base, SweepAxes({"plan.tp=3"}), Fidelity::kAnalytical,
                     RunSweepPoints(base, SweepAxes({"plan.tp=3"}), SweepRun{}));
  CHECK(tp.rows(0).error() ==
        "--set plan.tp=3: plan = tp x cp x pp = 12: does not divide the 64 GPUs of the cluster; "
        "valid: tp, cp and pp whose product divides 64");
}

}  // namespace moesim::sim
