// The flow-level model against hand-computed times, and against the analytical model where that is
// exact. Times include NCCL's base latency (8.4 us, Simple) and the hop's step latency (3.4 us over
// NVLink, Simple), written out in each check.
#include "sim/network/flow_model.h"

#include <catch2/catch.hpp>

#include "sim/network/collective_time.h"
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
  // The sharing mechanism with round numbers: the link priced at its 100 GB/s line rate.
  spec.set_line_rate(true);
  auto c = topology::BuildCluster(spec);
  if (!c.ok()) FAIL(c.error().message());
  return std::move(c).value();
}

Schedule Flows(std::vector<uint64_t> sizes) {
  Schedule s;
  s.ranks = 2;
  s.steps = 1;
  for (uint64_t b : sizes) s.transfers.push_back({0, 1, b, 0, {}, {}});
  return s;
}

constexpr int64_t kLatencyPs = (8400 + 3400) * 1000;  // base + one NVLink step, Simple

void CheckNear(Duration got, int64_t want_ps) {
  INFO("got " << got.picoseconds() << " ps, want " << want_ps);
  CHECK(std::llabs(got.picoseconds() - want_ps) <= 1);  // rounding of rate x time to a picosecond
}

// Two GPUs joined through two switches, g0 -> s0 -> g1 at `a0` then `b0` GB/s and g0 -> s1 -> g1
// at `a1` then `b1`: a route of two paths, split in proportion to their bottlenecks.
topology::Cluster TwoPaths(double a0, double b0, double a1, double b1) {
  pb::Cluster spec;
  pb::NodeSpec* node = spec.mutable_node();
  node->set_name("two-paths");
  node->set_gpu("h100-sxm");
  for (const char* id : {"g0", "g1", "s0", "s1"}) {
    pb::DeviceSpec* d = node->add_device();
    d->set_id(id);
    d->set_kind(id[0] == 'g' ? pb::GPU : pb::NVSWITCH);
  }
  auto link = [&](const char* a, const char* b, double gbps) {
    pb::LinkSpec* l = node->add_link();
    l->set_a(a);
    l->set_b(b);
    l->set_link_class(pb::NVLINK);
    l->set_bandwidth_gbps(gbps);
  };
  link("g0", "s0", a0);
  link("s0", "g1", b0);
  link("g0", "s1", a1);
  link("s1", "g1", b1);
  // The sharing mechanism with round numbers: links priced at their line rate.
  spec.set_line_rate(true);
  auto c = topology::BuildCluster(spec);
  if (!c.ok()) FAIL(c.error().message());
  return std::move(c).value();
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

TEST_CASE("A transfer that starts as another ends takes over its solver id, not its bytes") {
  const topology::Cluster c = Pair();
  // Transfers a = 1 MB and b = 3 MB start together; c = 2 MB waits for a. The flow model keeps a
  // flow's state under its solver variable, whose id c reuses once a is through; c must start with
  // its own 2 MB. Times from the first byte (after the base and one step latency):
  //   0 - 20 us     a and b at 50 GB/s; a done at 1e6 / 5e10 = 20 us (b has 2 MB left).
  //   20 - 23.4 us  c waits one NVLink step (3.4 us); b alone at 100 GB/s sends 0.34 MB.
  //   23.4 us on    b and c at 50 GB/s: b's 1.66 MB take 33.2 us, done at 56.6 us; c then has
  //                 0.34 MB left at 100 GB/s, done at 60 us (the link was busy throughout with
  //                 6 MB: 6e6 / 1e11 = 60 us).
  Schedule s = Flows({1'000'000, 3'000'000, 2'000'000});
  s.transfers[2].after = {0};
  const FlowRun run = RunFlows(c, s, NcclProtocol::kSimple);
  CheckNear(run.finish[0], kLatencyPs + 20'000'000);
  CheckNear(run.finish[1], kLatencyPs + 56'600'000);
  CheckNear(run.finish[2], kLatencyPs + 60'000'000);
}

TEST_CASE("A send that waits for data and for its stream starts a step latency after the data") {
  const topology::Cluster c = Pair();
  Schedule s = Flows({});
  // T0: g0 -> g1, 1 MB from 11.8 us (base + NVLink step): arrives at 21.8 us.
  // T1: g1 -> g0, 1.1 MB from 11.8 us on the other direction: sent at 22.8 us.
  // T2: g1 -> g0, 1 MB, after T0 has arrived and T1 has been sent (its sender's stream). T1 is
  // done last, but T0's data came in only 1 us before: T2 still waits its 3.4 us step latency
  // after T0's arrival, from 25.2 us, and is through at 35.2 us (not 22.8 + 10 = 32.8 us, as if
  // the stream alone had gated it).
  s.transfers.push_back({0, 1, 1'000'000, 0, {}, {}});
  s.transfers.push_back({1, 0, 1'100'000, 0, {}, {}});
  s.transfers.push_back({1, 0, 1'000'000, 1, {0}, {1}});
  const FlowRun run = RunFlows(c, s, NcclProtocol::kSimple);
  CheckNear(run.finish[0], kLatencyPs + 10'000'000);
  CheckNear(run.finish[1], kLatencyPs + 11'000'000);
  CheckNear(run.finish[2], kLatencyPs + 10'000'000 + 3'400'000 + 10'000'000);
  // The analytical bound, which leaves streams out, charges the same chain: T0, a step, T2.
  CheckNear(TimeCollective(c, s).total, kLatencyPs + 10'000'000 + 3'400'000 + 10'000'000);
}

TEST_CASE("Uniform all-to-all on one switch: flow and analytical agree") {
  auto c = topology::LoadClusterArgument("dgx-h100", "");
  REQUIRE(c.ok());
  const uint64_t S = 64 << 20;
  auto schedule = BuildCollective(CollectiveOp::kAllToAll, CollectiveAlgo::kDirect, 8, S, 8);
  REQUIRE(schedule.ok());
  const CollectiveTiming analytical = TimeCollective(*c, *schedule);
  const FlowRun flow = RunFlows(*c, *schedule, analytical.protocol, analytical.efficiency);
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
  const FlowRun flow = RunFlows(*c, *schedule, analytical.protocol, analytical.efficiency);
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
  const FlowRun a = RunFlows(*c, *schedule, analytical.protocol, analytical.efficiency);
  const FlowRun b = RunFlows(*c, *schedule, analytical.protocol, analytical.efficiency);
  CHECK(a.total.picoseconds() + 1 >= analytical.total.picoseconds());
  CHECK(a.finish == b.finish);
  CHECK(a.link_bytes == b.link_bytes);
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("Links that carry the same flows with the same shares count once, at the narrowest") {
  // Paths via s0 (bottleneck 80 GB/s) and s1 (50 GB/s) take 80/130 and 50/130 of the traffic.
  // g0 -> s0 and s0 -> g1 carry the same flows with the same share: one constraint, the 80 GB/s
  // link's, x 80/130 <= 80; likewise x 50/130 <= 50 via s1. Both allow x = 130 GB/s, so 1.3 MB
  // take 10 us (+ the base latency and one NVLink step), whether or not the wider links are kept.
  const topology::Cluster c = TwoPaths(100, 80, 50, 60);
  const FlowRun run = RunFlows(c, Flows({1'300'000}), NcclProtocol::kSimple);
  CheckNear(run.finish[0], kLatencyPs + 10'000'000);
  // Both paths' links carry their share of the bytes, the wider ones included.
  CHECK(run.link_bytes.size() == 8);
  double total = 0;
  for (double b : run.link_bytes) total += b;
  CHECK(total == Approx(2 * 1'300'000.0).epsilon(1e-12));  // two links on each path

  // Two flows of different sizes on the same route still share it: 65 GB/s each until the small
  // one (0.65 MB) is done at 10 us; the large (1.95 MB) then has 1.3 MB left at 130 GB/s: 20 us.
  const FlowRun two = RunFlows(c, Flows({650'000, 1'950'000}), NcclProtocol::kSimple);
  CheckNear(two.finish[0], kLatencyPs + 10'000'000);
  CheckNear(two.finish[1], kLatencyPs + 20'000'000);
}

TEST_CASE("A flow that ends re-solves only the flows that were faster than it") {
  // An uneven all-to-all of 64 GPUs (4,032 flows) on the 2:1 fat tree: every ending re-solves what
  // was frozen from its step on, not the whole component.
  auto c = topology::LoadClusterArgument(
      testing::SourcePath("scenarios/clusters/dgx-h100-fat-tree-2to1.pbtxt"), "");
  REQUIRE(c.ok());
  models::TrafficMatrix bytes(64);
  for (uint32_t i = 0; i < 64; ++i) {
    for (uint32_t j = 0; j < 64; ++j) {
      if (i != j) bytes.at(i, j) = (1 + (i * 7 + j * 13) % 17) << 16;  // 64 KiB to 1.1 MiB
    }
  }
  auto schedule = BuildAllToAllV(bytes, CollectiveAlgo::kDirect);
  REQUIRE(schedule.ok());
  const CollectiveTiming analytical = TimeCollective(*c, *schedule);
  const FlowRun run = RunFlows(*c, *schedule, analytical.protocol, analytical.efficiency);
  const uint64_t flows = schedule->transfers.size();
  INFO("solves " << run.solves << ", flows re-solved " << run.recomputed);
  CHECK(run.solves > 10);
  // Whole re-solves would recompute every flow still running at every solve.
  CHECK(run.recomputed < run.solves * flows / 4);
  CHECK(run.rate_changes <= run.recomputed);
  // Never below the busiest link's bytes over its bandwidth; deterministic.
  CHECK(run.total.picoseconds() + 1 >= analytical.total.picoseconds());
  const FlowRun again = RunFlows(*c, *schedule, analytical.protocol, analytical.efficiency);
  CHECK(again.finish == run.finish);
}

}  // namespace moesim::sim
