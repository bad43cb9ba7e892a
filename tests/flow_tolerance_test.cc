// The flow model's tolerance (FlowOptions::tolerance, sim/network/flow_model.h) against the exact
// run: two flows worked by hand, the stated bound on random skewed all-to-allvs, and schedules
// with dependencies, which run exact whatever the tolerance.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "sanitizer_budget.h"
#include "sim/network/alltoall_cost.h"
#include "sim/network/collective_time.h"
#include "sim/network/flow_model.h"
#include "sim/network/network_model.h"
#include "topology/cluster.h"

namespace moesim::sim {
namespace {

topology::Cluster RailCluster(uint32_t nodes) {
  pb::Cluster spec;
  spec.set_node_preset("dgx-h100");
  spec.set_nodes(nodes);
  spec.mutable_fabric()->mutable_rail_optimized();
  auto c = topology::BuildCluster(spec);
  if (!c.ok()) FAIL(c.error().message());
  return std::move(c).value();
}

// Two transfers g0 -> g1 on one node of the preset, started together.
Schedule TwoFlows(uint64_t a, uint64_t b) {
  Schedule s;
  s.ranks = 8;
  s.steps = 1;
  s.transfers.push_back({0, 1, a, 0, {}, {}});
  s.transfers.push_back({0, 1, b, 0, {}, {}});
  return s;
}

// A skewed all-to-allv: every pair a random size from 64 KiB to 4 MiB, one in eight 8x that, one
// in sixteen empty.
models::TrafficMatrix Skewed(uint32_t ranks, std::mt19937_64& rng) {
  std::uniform_int_distribution<uint64_t> size(1 << 16, 4 << 20);
  std::uniform_int_distribution<int> pick(0, 15);
  models::TrafficMatrix m(ranks);
  for (uint32_t i = 0; i < ranks; ++i) {
    std::vector<models::TrafficMatrix::Cell> row;
    for (uint32_t j = 0; j < ranks; ++j) {
      const int p = pick(rng);
      if (i == j || p == 0) continue;
      row.push_back({j, size(rng) * (p < 3 ? 8 : 1)});
    }
    m.SetRow(i, std::move(row));
  }
  return m;
}

// The largest |end - exact end| over the transfers, over the exact run's end.
double WorstShift(const FlowRun& exact, const FlowRun& approx) {
  double worst = 0;
  const double end = static_cast<double>(exact.total.picoseconds());
  for (size_t t = 0; t < exact.finish.size(); ++t) {
    worst = std::max(worst, std::abs(static_cast<double>(approx.finish[t].picoseconds() -
                                                         exact.finish[t].picoseconds())) /
                                end);
  }
  return worst;
}

}  // namespace

TEST_CASE("Tolerance: a flow due within e of its time ends with the one before, at its due time") {
  auto c = topology::LoadClusterArgument("dgx-h100", "");
  REQUIRE(c.ok());
  // Without a protocol both flows run at the link's achieved rate B from t = 0 (no NCCL latency)
  // and end a route latency L after their last byte. a = 100 MB, b = 101 MB, both at B / 2:
  //   a is through at 2a / B. Exact: b has 1 MB left at B, through at (a + b) / B.
  //   b's time at B / 2 is 2b / B; it is due 2 MB / B after a, within e of its time when
  //   2 (b - a) <= e 2b, e >= 1/101 = 0.0099: at e = 0.01 it leaves with a and is through at its
  //   due time 2b / B, 1 MB / B late; at e = 0.005 it is not due enough, and the run is exact.
  const Schedule s = TwoFlows(100'000'000, 101'000'000);
  const FlowRun exact = RunFlows(*c, s, std::nullopt);
  const FlowRun loose = RunFlows(*c, s, std::nullopt, std::nullopt, FlowOptions{0.01});
  const FlowRun tight = RunFlows(*c, s, std::nullopt, std::nullopt, FlowOptions{0.005});
  // From the exact run: L = a's end - 2a / B, and 1 MB / B = (b's end - a's end) / 1 (1 MB left).
  const int64_t a_end = exact.finish[0].picoseconds(), b_end = exact.finish[1].picoseconds();
  const int64_t one_mb = b_end - a_end;  // 1 MB at B
  CHECK(loose.finish[0].picoseconds() == a_end);
  CHECK(std::llabs(loose.finish[1].picoseconds() - (a_end + 2 * one_mb)) <= 2);  // 2 MB at B / 2
  CHECK(loose.solves < exact.solves);  // a and b leave in one re-solve
  CHECK(tight.finish == exact.finish);
  CHECK(tight.solves == exact.solves);
}

TEST_CASE("Tolerance: every transfer of a skewed all-to-allv ends within 2 e x the run's end") {
  // Measured when the bound was set (2026-12-06, 3 matrices per size, e = 0.001, 0.01, 0.05): the
  // worst transfer's shift over the run's end was 0.52 e on 2 nodes, 0.76 e on 4, 1.46 e on 8, 1.65
  // e on 16 and 2.10 e on 32 (256 GPUs); the run's end moved by at most 0.50, 0.47, 0.69, 0.93 and
  // 1.32 e. The shift grows slowly with the GPUs; this test holds 2 e to 64 GPUs (16 and 32 nodes
  // take minutes), results/flow_bench.md gives 1,024.
  std::mt19937_64 rng(20261206);
  for (uint32_t nodes : {2u, 4u, 8u}) {
    if (testing::kUnderSanitizer && nodes == 8)
      continue;  // the 64-GPU case is the slow one under ASan
    const topology::Cluster c = RailCluster(nodes);
    for (int round = 0; round < 3; ++round) {
      const models::TrafficMatrix m = Skewed(nodes * 8, rng);
      const Schedule s = *BuildAllToAllV(m, CollectiveAlgo::kDirect);
      const FlowRun exact = RunFlows(c, s, std::nullopt);
      for (double e : {0.001, 0.01, 0.05}) {
        const FlowRun approx = RunFlows(c, s, std::nullopt, std::nullopt, FlowOptions{e});
        const double shift = WorstShift(exact, approx);
        INFO(nodes << " nodes, matrix " << round << ", e " << e << ": worst shift " << shift
                   << ", solves " << approx.solves << " of " << exact.solves);
        CHECK(shift <= 2 * e);
        CHECK(
            std::abs(static_cast<double>(approx.total.picoseconds() - exact.total.picoseconds())) <=
            2 * e * static_cast<double>(exact.total.picoseconds()));
        CHECK(approx.solves <= exact.solves);
        // Determinism: the same run twice, bit for bit.
        CHECK(RunFlows(c, s, std::nullopt, std::nullopt, FlowOptions{e}).finish == approx.finish);
      }
    }
  }
}

TEST_CASE("Tolerance: a schedule with dependencies runs exact") {
  const topology::Cluster c = RailCluster(2);
  // A ring all-reduce (each step waits for the one before) and a pairwise all-to-all (rounds):
  // the tolerance does not apply, the runs are the exact ones bit for bit.
  const Schedule ring =
      *BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kRing, 16, 64 << 20, 8, 8);
  const NcclProtocol protocol = TimeCollective(c, ring).protocol;
  CHECK(RunFlows(c, ring, protocol, std::nullopt, FlowOptions{0.05}).finish ==
        RunFlows(c, ring, protocol).finish);
  std::mt19937_64 rng(7);
  const Schedule pairwise = *BuildAllToAllV(Skewed(16, rng), CollectiveAlgo::kPairwise);
  CHECK(RunFlows(c, pairwise, std::nullopt, std::nullopt, FlowOptions{0.05}).finish ==
        RunFlows(c, pairwise, std::nullopt).finish);
}

TEST_CASE("Tolerance: --flow-tolerance outside 0-0.1, or without the flow model, is refused") {
  CHECK(ParseFlowOptions(0.01, true).ok());
  CHECK(ParseFlowOptions(0.1, true).ok());  // Result.flow_tolerance's declared maximum
  CHECK_FALSE(ParseFlowOptions(0.1001, true).ok());
  CHECK(ParseFlowOptions(0, false).ok());
  const auto high = ParseFlowOptions(0.5, true);
  REQUIRE_FALSE(high.ok());
  CHECK_THAT(high.error().message(), Catch::Contains("--flow-tolerance") &&
                                         Catch::Contains("0.5") && Catch::Contains("0.1"));
  CHECK_FALSE(ParseFlowOptions(-0.01, true).ok());
  CHECK_FALSE(ParseFlowOptions(std::nan(""), true).ok());
  const auto analytical = ParseFlowOptions(0.01, false);
  REQUIRE_FALSE(analytical.ok());
  CHECK_THAT(analytical.error().message(), Catch::Contains("--fidelity flow"));
}

}  // namespace moesim::sim
