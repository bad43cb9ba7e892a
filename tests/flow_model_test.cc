// The flow-level model against hand-computed times, and against the analytical model where that is
// exact. Times include NCCL's base latency (8.4 us, Simple) and the hop's step latency (3.4 us over
// NVLink, Simple), written out in each check.
#include "sim/flow_model.h"

#include <catch2/catch.hpp>

#include "sim/collective_time.h"
#include "test_paths.h"

namespace moesim::sim {
namespace {

// Two GPUs joined by one direct 100 GB/s NVLink (and PCIe, which routes never take).
topology::Cluster Pair() {
  pb::Cluster spec;
  pb::NodeSpec* node = spec.mutable_node();
  node->set_name("pair");
  node->set_gpu("h100-sxm");
  for (const char* id : {"g0", "g1"}) {
    pb::DeviceSpec* d = node->add_device();
    d->set_id(id);
    d->set_kind(pb::GPU);
  }
  pb::LinkSpec* link = node->add_link();
  link->set_a("g0");
  link->set_b("g1");
  link->set_link_class(pb::NVLINK);
  link->set_bandwidth_gbps(100);
  auto c = topology::BuildCluster(spec);
  if (!c.ok()) FAIL(c.error().message());
  return std::move(c).value();
}

Schedule Flows(std::vector<uint64_t> sizes) {
  Schedule s;
  s.ranks = 2;
  s.steps = 1;
  for (uint64_t b : sizes) s.transfers.push_back({0, 1, b, 0, {}});
  s.latency_chain = {{0, 1}};
  return s;
}

constexpr int64_t kLatencyPs = (8400 + 3400) * 1000;  // base + one NVLink step, Simple

void CheckNear(Duration got, int64_t want_ps) {
  INFO("got " << got.picoseconds() << " ps, want " << want_ps);
  CHECK(std::llabs(got.picoseconds() - want_ps) <= 1);  // rounding of rate x time to a picosecond
}

}  // namespace

TEST_CASE("N equal flows on one link all finish at N S / B") {
  const topology::Cluster c = Pair();
  // 4 flows of 1 MB on 100 GB/s: each gets 25 GB/s, all done after 4e6 / 1e11 s = 40 us.
  const FlowRun run =
      RunFlows(c, Flows({1'000'000, 1'000'000, 1'000'000, 1'000'000}), NcclProtocol::kSimple);
  for (Duration f : run.finish) CheckNear(f, kLatencyPs + 40'000'000);
  CheckNear(run.total, kLatencyPs + 40'000'000);
}

TEST_CASE("Two flows of different sizes: the small at 2s / B, the large at (s + l) / B") {
  const topology::Cluster c = Pair();
  // s = 1 MB, l = 3 MB on 100 GB/s: both at 50 GB/s until the small ends at 2 x 1e6 / 1e11 = 20 us;
  // the large then has 2 MB left at 100 GB/s: done at (1e6 + 3e6) / 1e11 = 40 us.
  const FlowRun run = RunFlows(c, Flows({1'000'000, 3'000'000}), NcclProtocol::kSimple);
  CheckNear(run.finish[0], kLatencyPs + 20'000'000);
  CheckNear(run.finish[1], kLatencyPs + 40'000'000);
  CHECK(run.link_bytes.size() > 0);
}

TEST_CASE("Uniform all-to-all on one switch: flow and analytical agree") {
  auto c = topology::LoadClusterArgument("dgx-h100", "");
  REQUIRE(c.ok());
  const uint64_t S = 64 << 20;
  auto schedule = BuildCollective(CollectiveOp::kAllToAll, CollectiveAlgo::kDirect, 8, S, 8);
  REQUIRE(schedule.ok());
  const CollectiveTiming analytical = TimeCollective(*c, *schedule);
  const FlowRun flow = RunFlows(*c, *schedule, analytical.protocol);
  // Every GPU's NVLink carries 7 flows of 8 MiB at 450/7 GB/s each: 7 x 8 MiB / 450 GB/s, +
  // latency.
  CheckNear(flow.total, analytical.total.picoseconds());
  CHECK(flow.bottleneck_link == "node0/gpu0 -> node0/nvswitch");
}

TEST_CASE("Ring all-reduce: flow and analytical agree, step after step") {
  auto c = topology::LoadClusterArgument("dgx-h100", "");
  REQUIRE(c.ok());
  auto schedule = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kRing, 8, 256 << 20, 8);
  REQUIRE(schedule.ok());
  const CollectiveTiming analytical = TimeCollective(*c, *schedule);
  const FlowRun flow = RunFlows(*c, *schedule, analytical.protocol);
  // 14 steps of 32 MiB over 450 GB/s, each after a 3.4 us hop, + 8.4 us: the same sum both ways,
  // up to one picosecond of rounding per step.
  CHECK(std::llabs(flow.total.picoseconds() - analytical.total.picoseconds()) <= 14);
}

TEST_CASE(
    "On a 2:1 fat tree the flow model is never below the analytical bound, and is deterministic") {
  auto c = topology::LoadClusterArgument(
      testing::SourcePath("scenarios/clusters/dgx-h100-fat-tree-2to1.pbtxt"), "");
  REQUIRE(c.ok());
  auto schedule =
      BuildCollective(CollectiveOp::kAllToAll, CollectiveAlgo::kDirect, 64, 64 << 20, 8);
  REQUIRE(schedule.ok());
  const CollectiveTiming analytical = TimeCollective(*c, *schedule);
  const FlowRun a = RunFlows(*c, *schedule, analytical.protocol);
  const FlowRun b = RunFlows(*c, *schedule, analytical.protocol);
  CHECK(a.total.picoseconds() + 1 >= analytical.total.picoseconds());
  CHECK(a.finish == b.finish);
  CHECK(a.link_bytes == b.link_bytes);
}

}  // namespace moesim::sim
