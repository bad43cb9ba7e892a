// The hierarchical all-to-allv (sim/network/alltoall_hierarchical.h): its transfers, their
// dependencies and their time on a small cluster, against hand-computed values.
#include "sim/network/alltoall_hierarchical.h"

#include <catch2/catch.hpp>

#include "sim/network/alltoall_cost.h"
#include "sim/network/collective_time.h"
#include "sim/network/flow_model.h"
#include "test_paths.h"
#include "topology/cluster.h"

namespace moesim::sim {
namespace {

constexpr uint64_t U = 1'000'000;  // bytes; 1 MB keeps the times round

// 2 nodes x 4 GPUs; NVLink 400 GB/s, NIC 50 GB/s, PCIe 63 GB/s
// (tests/fixtures/two_nodes_4gpu.pbtxt).
topology::Cluster TwoNodes() {
  auto c =
      topology::LoadClusterArgument(testing::SourcePath("tests/fixtures/two_nodes_4gpu.pbtxt"), "");
  if (!c.ok()) FAIL(c.error().message());
  return std::move(c).value();
}

// Uneven traffic, ranks 0-3 on node 0, 4-7 on node 1:
//   0 -> 1: 1U (in node)   0 -> 5: 4U   0 -> 6: 2U   1 -> 4: 2U   4 -> 0: 3U
models::TrafficMatrix Uneven() {
  models::TrafficMatrix m(8);
  m.at(0, 1) = 1 * U;
  m.at(0, 5) = 4 * U;
  m.at(0, 6) = 2 * U;
  m.at(1, 4) = 2 * U;
  m.at(4, 0) = 3 * U;
  return m;
}

Schedule Build(const models::TrafficMatrix& m, Rail rail, const models::TrafficMatrix& node = {}) {
  auto s = BuildHierarchicalAllToAllV(m, 4, rail, node);
  if (!s.ok()) FAIL(s.error().message());
  return std::move(s).value();
}

struct Row {
  uint32_t src, dst;
  uint64_t bytes;
  uint32_t step;
  std::vector<uint32_t> after;
};

void CheckTransfers(const Schedule& s, const std::vector<Row>& expected) {
  REQUIRE(s.transfers.size() == expected.size());
  for (size_t t = 0; t < expected.size(); ++t) {
    INFO("transfer " << t);
    CHECK(s.transfers[t].src == expected[t].src);
    CHECK(s.transfers[t].dst == expected[t].dst);
    CHECK(s.transfers[t].bytes == expected[t].bytes);
    CHECK(s.transfers[t].step == expected[t].step);
    CHECK(s.transfers[t].after == expected[t].after);
  }
}

}  // namespace

TEST_CASE(
    "Hierarchical all-to-allv, source rail (DeepEP): across on the sender's rail, then NVLink") {
  const topology::Cluster c = TwoNodes();
  const Schedule s = Build(Uneven(), Rail::kSource);
  // Step 0: 0 -> 1 straight (in node); 0 -> 4 carries everything 0 has for node 1 (4U + 2U) to the
  // GPU of its own local index there; 1 -> 5 the 2U for GPU 4; 4 -> 0 the 3U, already on its rail.
  // Step 1: GPU 4 forwards 4U to 5 and 2U to 6 (after 0 -> 4); GPU 5 forwards 2U to 4 (after
  // 1 -> 5).
  CheckTransfers(s, {{0, 1, 1 * U, 0, {}},
                     {0, 4, 6 * U, 0, {}},
                     {1, 5, 2 * U, 0, {}},
                     {4, 0, 3 * U, 0, {}},
                     {4, 5, 4 * U, 1, {1}},
                     {4, 6, 2 * U, 1, {1}},
                     {5, 4, 2 * U, 1, {2}}});
  CHECK(s.steps == 2);
  // Step 0: GPU 0's NIC link carries 6U: 6e6 B / 50 GB/s = 120 us (its PCIe link, 6U / 63 GB/s,
  // drains sooner). Step 1: both forwards wait for 0 -> 4 and share GPU 4's NVLink to the
  // NVSwitch, 6U: 6e6 / 400e9 = 15 us. 135 us in all.
  const CollectiveTiming t = TimeCollective(c, s);
  CHECK(t.bandwidth == Duration::Picoseconds(135'000'000));
}

TEST_CASE(
    "Hierarchical all-to-allv, destination rail (Tutel 2D): NVLink to the rail, then across") {
  const topology::Cluster c = TwoNodes();
  const Schedule s = Build(Uneven(), Rail::kDestination);
  // Step 0, over NVLink to the GPU with the destination's local index: 0 -> 1 carries 1U for GPU 1
  // and 4U for GPU 5 (5U); 0 -> 2 the 2U for GPU 6; 1 -> 0 the 2U for GPU 4. Step 1, across on
  // the rail: 0 -> 4 (2U, after 1 -> 0), 1 -> 5 (4U, after 0 -> 1), 2 -> 6 (2U, after 0 -> 2),
  // and 4 -> 0 (3U, already on its rail: waits for nothing).
  CheckTransfers(s, {{0, 1, 5 * U, 0, {}},
                     {0, 2, 2 * U, 0, {}},
                     {1, 0, 2 * U, 0, {}},
                     {0, 4, 2 * U, 1, {2}},
                     {1, 5, 4 * U, 1, {0}},
                     {2, 6, 2 * U, 1, {1}},
                     {4, 0, 3 * U, 1, {}}});
  // Step 1's busiest NIC, GPU 1's, carries 4U: 4e6 / 50e9 = 80 us (three NICs share what one NIC
  // sends on the source rail). It waits only for 0 -> 1, which shares GPU 0's NVLink with 0 -> 2.
  // The bound lets 0 -> 1 drain first: 5e6 / 400e9 = 12.5 us, then 80 us: 92.5 us.
  const CollectiveTiming t = TimeCollective(c, s);
  CHECK(t.bandwidth == Duration::Picoseconds(92'500'000));
  // Latency, Simple: base 8.4 us + an NVLink step 3.4 us + a network step 14 us.
  CHECK(t.latency == Duration::Nanoseconds(8400 + 3400 + 14000));
  // Max-min fairness shares GPU 0's NVLink instead: 200 GB/s each until 0 -> 2 is through (10 us),
  // then 0 -> 1's last 3U alone (7.5 us): 17.5 us, then 80 us. 97.5 us, 5 us above the bound.
  CHECK(RunFlows(c, s, t.protocol).total == t.latency + Duration::Picoseconds(97'500'000));
}

TEST_CASE("Hierarchical all-to-allv: a token for two GPUs of one node crosses once (dedup)") {
  const topology::Cluster c = TwoNodes();
  // Of GPU 0's 4U for GPU 5 and 2U for GPU 6, 2U are the same tokens (routed to experts on both):
  // 4U distinct tokens go to node 1, 1 -> 4's 2U are distinct. Node 0 gets 3U from GPU 4.
  models::TrafficMatrix node(8);
  node.at(0, 1) = 4 * U;
  node.at(1, 1) = 2 * U;
  node.at(4, 0) = 3 * U;
  const Schedule s = Build(Uneven(), Rail::kSource, node);
  // The same schedule but 0 -> 4 carries 4U instead of 6U; GPU 4 still forwards 4U and 2U copies.
  CHECK(s.transfers[1].bytes == 4 * U);
  CHECK(s.transfers[4].bytes == 4 * U);
  CHECK(s.transfers[5].bytes == 2 * U);
  // Step 0: GPU 0's NIC, 4e6 / 50e9 = 80 us; step 1 as before, 15 us: 95 us (135 without dedup).
  CHECK(TimeCollective(c, s).bandwidth == Duration::Picoseconds(95'000'000));

  // Node bytes that the copies cannot give are refused, naming the cell.
  models::TrafficMatrix too_many = node;
  too_many.at(0, 1) = 7 * U;  // more than GPU 0's 6U of copies to node 1
  auto bad = BuildHierarchicalAllToAllV(Uneven(), 4, Rail::kSource, too_many);
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error().message(), Catch::Contains("node_bytes[0][1] = 7000000"));
  CHECK_FALSE(BuildHierarchicalAllToAllV(Uneven(), 4, Rail::kDestination, node).ok());
  CHECK_FALSE(BuildHierarchicalAllToAllV(Uneven(), 3, Rail::kSource).ok());  // 8 GPUs, not 3s
}

TEST_CASE("Hierarchical all-to-allv: combine is dispatch reversed") {
  const Schedule d = Build(Uneven(), Rail::kSource);
  const Schedule r = Reversed(d);
  // Transfer t becomes 6 - t, from its receiver to its sender, step 1 - step; the forwards now run
  // first (NVLink gather to the relay) and the crossing waits for them: 4 -> 0 (was 0 -> 4) waits
  // for 5 -> 4 and 6 -> 4 (were 4 -> 5 and 4 -> 6, transfers 4 and 5, now 2 and 1).
  CheckTransfers(r, {{4, 5, 2 * U, 0, {}},
                     {6, 4, 2 * U, 0, {}},
                     {5, 4, 4 * U, 0, {}},
                     {0, 4, 3 * U, 1, {}},
                     {5, 1, 2 * U, 1, {0}},
                     {4, 0, 6 * U, 1, {1, 2}},
                     {1, 0, 1 * U, 1, {}}});
}

TEST_CASE("Hierarchical all-to-allv: flow never below the analytical bound, and deterministic") {
  const topology::Cluster c = TwoNodes();
  for (const Rail rail : {Rail::kSource, Rail::kDestination}) {
    const Schedule s = Build(Uneven(), rail);
    const CollectiveTiming analytical = TimeCollective(c, s);
    const FlowRun flow = RunFlows(c, s, analytical.protocol, analytical.efficiency);
    const FlowRun again = RunFlows(c, s, analytical.protocol, analytical.efficiency);
    // Source rail: 0 -> 4 alone on GPU 0's NIC takes 120 us, then GPU 4's forwards share its NVLink
    // (6U, 15 us): at least the analytical 135 us plus latencies. Destination rail likewise.
    CHECK(flow.total >= analytical.total);
    CHECK(flow.finish == again.finish);
    CHECK(flow.total == again.total);
  }
}

TEST_CASE("Uniform hierarchical all-to-all is Tutel's 2D, the destination rail fed size/n a pair") {
  // BuildCollective's uniform schedule comes from the same builder; both give Tutel's transfers.
  auto uniform =
      BuildCollective(CollectiveOp::kAllToAll, CollectiveAlgo::kHierarchical, 16, 16 * U, 4);
  REQUIRE(uniform.ok());
  models::TrafficMatrix m(16);
  for (uint32_t i = 0; i < 16; ++i) {
    for (uint32_t j = 0; j < 16; ++j) m.at(i, j) = i == j ? 0 : U;
  }
  const Schedule v = Build(m, Rail::kDestination);
  REQUIRE(uniform->transfers.size() == v.transfers.size());
  // 4 nodes x 4 GPUs x 3 NVLink peers, each 4 pieces (one per node); then 4 x 3 x 4 crossings of
  // 4 pieces (one per GPU of the sending node), each after the 3 NVLink transfers into its sender.
  CHECK(v.transfers.size() == 4 * 4 * 3 + 4 * 3 * 4);
  for (size_t t = 0; t < v.transfers.size(); ++t) {
    CHECK(uniform->transfers[t].bytes == v.transfers[t].bytes);
    CHECK(uniform->transfers[t].after == v.transfers[t].after);
    CHECK(v.transfers[t].bytes == 4 * U);
  }
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("Chunked relay (DeepEP normal): chunks stream back to back, forwards follow each chunk") {
  // GPU 0 sends 4U to GPU 5 (node 1, local 1): across to GPU 4 (its own rail), forwarded there.
  // Chunks of 1U: 0 -> 4 as four 1U transfers, each after the one before has left (after_sent);
  // 4 -> 5 as four 1U forwards, forward k after chunk k (after) and after forward k - 1 has left.
  models::TrafficMatrix m(8);
  m.at(0, 5) = 4 * U;
  auto built = BuildHierarchicalAllToAllV(m, 4, Rail::kSource, {}, /*chunk_bytes=*/1 * U);
  REQUIRE(built.ok());
  const Schedule& s = *built;
  CheckTransfers(s, {{0, 4, 1 * U, 0, {}},
                     {0, 4, 1 * U, 0, {}},
                     {0, 4, 1 * U, 0, {}},
                     {0, 4, 1 * U, 0, {}},
                     {4, 5, 1 * U, 1, {0}},
                     {4, 5, 1 * U, 1, {1}},
                     {4, 5, 1 * U, 1, {2}},
                     {4, 5, 1 * U, 1, {3}}});
  const std::vector<std::vector<uint32_t>> streamed = {{}, {0}, {1}, {2}, {}, {4}, {5}, {6}};
  for (uint32_t t = 0; t < 8; ++t) CHECK(s.transfers[t].after_sent == streamed[t]);

  // A message that does not divide: 2.5U in chunks of 1U is 1U, 1U, 0.5U; a 2U copy for GPU 6
  // inside it is forwarded as floor(2U x 1/2.5) = 0.8U, then floor(2U x 2/2.5) - 0.8U = 0.8U,
  // then the 0.4U left.
  models::TrafficMatrix odd(8);
  odd.at(0, 4) = U / 2;  // stays on the relay: crosses, is not forwarded
  odd.at(0, 6) = 2 * U;
  auto split = BuildHierarchicalAllToAllV(odd, 4, Rail::kSource, {}, 1 * U);
  REQUIRE(split.ok());
  CheckTransfers(*split, {{0, 4, 1 * U, 0, {}},
                          {0, 4, 1 * U, 0, {}},
                          {0, 4, U / 2, 0, {}},
                          {4, 6, 800'000, 1, {0}},
                          {4, 6, 800'000, 1, {1}},
                          {4, 6, 400'000, 1, {2}}});
  // Chunks only on the source rail.
  CHECK_FALSE(BuildHierarchicalAllToAllV(m, 4, Rail::kDestination, {}, U).ok());
}

TEST_CASE("Chunked relay, flow: RDMA time + one chunk's NVLink, not + the whole NVLink forward") {
  const topology::Cluster c = TwoNodes();
  models::TrafficMatrix m(8);
  m.at(0, 5) = 4 * U;
  auto whole = BuildHierarchicalAllToAllV(m, 4, Rail::kSource);
  auto chunked = BuildHierarchicalAllToAllV(m, 4, Rail::kSource, {}, 1 * U);
  REQUIRE(whole.ok());
  REQUIRE(chunked.ok());
  const topology::Router& router = c.router();
  REQUIRE(router.Latency(0, 4) == Duration::Picoseconds(2'000'000));  // PCIe, NICs, switch
  REQUIRE(router.Latency(4, 5) == Duration::Picoseconds(1'000'000));  // NVLink, NVSwitch
  // No NCCL protocol (the MoE layer's all-to-alls): full link rates, route latencies.
  //
  // Chunked: the four 1U chunks leave GPU 0's 50 GB/s NIC back to back, 1e6 / 50e9 = 20 us each,
  // last byte through at 80 us, arriving at 82 us. Forward k runs when chunk k has arrived (22,
  // 42, 62, 82 us): 1e6 / 400e9 = 2.5 us on NVLink, done before the next chunk arrives. The last:
  // 82 + 2.5 + 1 = 85.5 us = RDMA 80 + 2 + ONE chunk's NVLink 2.5 + 1.
  // Whole message: 80 + 2, then all 4U over NVLink: 10 us + 1: 93 us = RDMA + the whole forward.
  // Each flow's end is rounded up to a whole picosecond: at most 1 ps per flow in sequence.
  const FlowRun pipelined = RunFlows(c, *chunked, std::nullopt);
  const FlowRun serial = RunFlows(c, *whole, std::nullopt);
  CHECK(pipelined.total >= Duration::Picoseconds(85'500'000));
  CHECK(pipelined.total <= Duration::Picoseconds(85'500'000 + 8));
  CHECK(serial.total >= Duration::Picoseconds(93'000'000));
  CHECK(serial.total <= Duration::Picoseconds(93'000'000 + 2));
  // Forward 0 ends at 22 + 2.5 + 1 = 25.5 us, while chunk 1 is still on the NIC.
  CHECK(pipelined.finish[4] >= Duration::Picoseconds(25'500'000));
  CHECK(pipelined.finish[4] <= Duration::Picoseconds(25'500'000 + 2));

  // The analytical model lays every transfer on its links at once (the relay forwarding as bytes
  // arrive), the same for both schedules: GPU 4's busiest link is its NIC's 4U, 80 us, plus its
  // chain of routes 2 + 1 us: 83 us, below both flows (analytical <= flow).
  const AllToAll a_whole = ScheduleCosts(c, *whole);
  const AllToAll a_chunked = ScheduleCosts(c, *chunked);
  CHECK(a_chunked.ranks[4].time == Duration::Picoseconds(83'000'000));
  CHECK(a_whole.ranks[4].time == Duration::Picoseconds(83'000'000));
  // GPU 5 sees only the forward: its NVLink, 4U / 400 GB/s = 10 us, plus the chain 3 us.
  CHECK(a_chunked.ranks[5].time == Duration::Picoseconds(13'000'000));
  CHECK(a_chunked.ranks[5].time == a_whole.ranks[5].time);
  CHECK(pipelined.total >= a_chunked.ranks[4].time);

  // The combine runs it backwards: GPU 5 sends chunk 3 first, then 2, 1, 0 back to back over
  // NVLink (2.5 us each); GPU 4 sends each across as it arrives: chunk 3 at 2.5 + 1 = 3.5 us,
  // then back to back: 3.5 + 4 x 20 = 83.5 us through, + 2 us: 85.5 us, as dispatch.
  const Schedule back = Reversed(*chunked);
  for (const Transfer& x : back.transfers) {
    for (uint32_t u : x.after_sent) CHECK(u < static_cast<uint32_t>(&x - back.transfers.data()));
  }
  const FlowRun combine = RunFlows(c, back, std::nullopt);
  CHECK(combine.total >= Duration::Picoseconds(85'500'000));
  CHECK(combine.total <= Duration::Picoseconds(85'500'000 + 8));
}

}  // namespace moesim::sim
