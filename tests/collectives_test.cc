// Collective schedules and their analytical time, against hand-computed values.
#include "sim/network/collectives.h"

#include <catch2/catch.hpp>

#include "sim/network/collective_time.h"
#include "sim/network/flow_model.h"
#include "test_paths.h"
#include "topology/cluster.h"

namespace moesim::sim {
namespace {

topology::Cluster Load(const std::string& what) {
  const std::string path = what.find('.') == std::string::npos
                               ? what
                               : testing::SourcePath("scenarios/clusters/" + what);
  auto c = topology::LoadClusterArgument(path, "");
  if (!c.ok()) FAIL(c.error().message());
  return std::move(c).value();
}

Schedule Build(CollectiveOp op, CollectiveAlgo algo, uint32_t n, uint64_t size,
               uint32_t per_node = 8) {
  auto s = BuildCollective(op, algo, n, size, per_node);
  if (!s.ok()) FAIL(s.error().message());
  return std::move(s).value();
}

// Bytes each rank sends and receives in a schedule.
std::pair<std::vector<uint64_t>, std::vector<uint64_t>> Totals(const Schedule& s) {
  std::vector<uint64_t> sent(s.ranks, 0), received(s.ranks, 0);
  for (const Transfer& t : s.transfers) {
    sent[t.src] += t.bytes;
    received[t.dst] += t.bytes;
  }
  return {sent, received};
}

}  // namespace

TEST_CASE("Schedules move the bytes each algorithm must move") {
  const uint64_t S = 8 << 20;  // 8 MiB
  // Direct all-to-all on 8 ranks: 56 transfers of S/8; each rank sends and receives 7/8 S.
  const Schedule direct = Build(CollectiveOp::kAllToAll, CollectiveAlgo::kDirect, 8, S);
  CHECK(direct.transfers.size() == 56);
  CHECK(direct.steps == 1);
  for (uint64_t x : Totals(direct).first) CHECK(x == 7 * S / 8);
  // Pairwise: the same transfers in 7 rounds, each after the sender's previous one.
  const Schedule pairwise = Build(CollectiveOp::kAllToAll, CollectiveAlgo::kPairwise, 8, S);
  CHECK(pairwise.transfers.size() == 56);
  CHECK(pairwise.steps == 7);
  CHECK(pairwise.transfers[8].after ==
        std::vector<uint32_t>{0});  // round 2 of rank 0 after round 1
  // Ring all-reduce: 2(n-1) = 14 steps of S/n per rank: each rank sends 14/8 S = 2(n-1)/n S.
  const Schedule ring = Build(CollectiveOp::kAllReduce, CollectiveAlgo::kRing, 8, S);
  CHECK(ring.steps == 14);
  CHECK(ring.transfers.size() == 14 * 8);
  for (uint64_t x : Totals(ring).first) CHECK(x == 14 * S / 8);
  // All-gather and reduce-scatter: n-1 steps of S/n.
  for (CollectiveOp op : {CollectiveOp::kAllGather, CollectiveOp::kReduceScatter}) {
    const Schedule s = Build(op, CollectiveAlgo::kRing, 8, S);
    CHECK(s.steps == 7);
    for (uint64_t x : Totals(s).second) CHECK(x == 7 * S / 8);
  }
  // Tree all-reduce on 7 ranks (a full binary tree of height 2), 8 chunks: every edge carries S up
  // and S down. Ranks 1 and 2 receive S from each of their 2 children and S from the root (3S);
  // leaves 3-6 receive S; the root receives S from each of its 2 children.
  const Schedule tree = Build(CollectiveOp::kAllReduce, CollectiveAlgo::kTree, 7, S);
  CHECK(tree.transfers.size() == 8 * 6 * 2);
  const auto received = Totals(tree).second;
  CHECK(received == std::vector<uint64_t>{2 * S, 3 * S, 3 * S, S, S, S, S});
}

TEST_CASE("Tree all-reduce of 4 GiB and more: 8 chunks, every edge carries the buffer each way") {
  // 4 GiB = 2^32 B and 8 GiB = 2^33 B narrowed to 32 bits are 0 B: 0 chunks, a division by zero.
  for (const uint64_t S : {uint64_t{4} << 30, uint64_t{8} << 30}) {
    const Schedule tree = Build(CollectiveOp::kAllReduce, CollectiveAlgo::kTree, 8, S);
    // 8 chunks x 7 edges x (up + down) = 112 transfers of S / 8 (512 MiB, 1 GiB).
    REQUIRE(tree.transfers.size() == 112);
    for (const Transfer& t : tree.transfers) CHECK(t.bytes == S / 8);
  }
  // 4 GiB + 4 B: 8 chunks of 536,870,912 B, the first 4 of them 1 B more; rank 7 sends its parent
  // exactly the buffer, and receives it back.
  const uint64_t S = (uint64_t{4} << 30) + 4;
  const Schedule tree = Build(CollectiveOp::kAllReduce, CollectiveAlgo::kTree, 8, S);
  const auto [sent, received] = Totals(tree);
  CHECK(sent[7] == S);
  CHECK(received[7] == S);
  CHECK(tree.transfers.front().bytes == 536'870'913);
  CHECK(tree.transfers.back().bytes == 536'870'912);
  // Fewer bytes than chunks: one chunk a byte, none empty (3 B: 3 chunks x 2 edges x 2 = 12).
  CHECK(Build(CollectiveOp::kAllReduce, CollectiveAlgo::kTree, 3, 3).transfers.size() == 12);
}

TEST_CASE("Hierarchical all-to-all: NVLink to the destination's rail, then across nodes on it") {
  const uint64_t S = 32 << 20;
  // 4 nodes x 8 GPUs, piece = S/32 per pair. Phase 1: (a,i) -> (a,j), j != i, carries 4 pieces (one
  // per node); phase 2: (a,j) -> (b,j), b != a, carries 8 pieces (one per GPU of node a).
  const Schedule s = Build(CollectiveOp::kAllToAll, CollectiveAlgo::kHierarchical, 32, S, 8);
  CHECK(s.steps == 2);
  uint64_t phase1 = 0, phase2 = 0;
  for (const Transfer& t : s.transfers) {
    if (t.step == 0) {
      CHECK(t.src / 8 == t.dst / 8);
      CHECK(t.bytes == 4 * S / 32);
      ++phase1;
    } else {
      CHECK(t.src % 8 == t.dst % 8);
      CHECK(t.bytes == 8 * S / 32);
      CHECK(t.after.size() == 7);  // waits for what the 7 other local GPUs sent it
      ++phase2;
    }
  }
  CHECK(phase1 == 4 * 8 * 7);
  CHECK(phase2 == 4 * 3 * 8);
  CHECK_FALSE(
      BuildCollective(CollectiveOp::kAllToAll, CollectiveAlgo::kHierarchical, 12, S, 8).ok());
}

// What an H100's NVLink achieves: 18 links x 20.6 GB/s, NCCL's SM90_NVLINK_BW
// (topology/achieved.h), not the datasheet's 18 x 25 = 450 GB/s. An IB NDR port: 50 GB/s x 4096 /
// 4122 (RDMA framing).
const Rate kH100NvLink = Rate::GigaPerSecond(18 * 20.6);
const Rate kNdrPort = Rate::PerSecond(50'000'000'000ULL * 4096 / 4122 + 1);  // llround of 49.68e9

TEST_CASE("Uniform all-to-all on one non-blocking switch takes n-1 pieces over the GPU link") {
  const topology::Cluster c = Load("dgx-h100");
  const uint64_t S = 64 << 20;
  const CollectiveTiming t =
      TimeCollective(c, Build(CollectiveOp::kAllToAll, CollectiveAlgo::kDirect, 8, S));
  // Each GPU's NVLink carries (n-1) x S/n = 7 x 8 MiB = 58,720,256 B at 370.8 GB/s.
  CHECK(t.bandwidth == TransferTime(Bytes{7 * S / 8}, kH100NvLink));
  // Large: the Simple protocol, NCCL's base 8.4 us + one NVLink step 3.4 us.
  CHECK(t.protocol == NcclProtocol::kSimple);
  CHECK(t.latency == Duration::Nanoseconds(8400 + 3400));
  CHECK(t.total == t.bandwidth + t.latency);
}

TEST_CASE("Ring all-reduce: 2(n-1)/n S / B plus a step latency per hop") {
  const topology::Cluster c = Load("dgx-h100");
  const uint64_t S = 1ULL << 30;
  const CollectiveTiming t =
      TimeCollective(c, Build(CollectiveOp::kAllReduce, CollectiveAlgo::kRing, 8, S));
  // 14 steps, each S/8 = 134,217,728 B over a 370.8 GB/s NVLink: 361,968.0 ns, rounded up per
  // step; busbw = 2(n-1)/n S / time = 370.8 GB/s, as nccl-tests measures on an H100 node (368).
  CHECK(t.bandwidth.picoseconds() == 14 * TransferTime(Bytes{S / 8}, kH100NvLink).picoseconds());
  // Simple: 8.4 us + 14 x 3.4 us.
  CHECK(t.latency == Duration::Nanoseconds(8400 + 14 * 3400));
  // Small messages pick LL: 6.6 + 14 x 0.6 us = 15.0 us of latency.
  const CollectiveTiming small =
      TimeCollective(c, Build(CollectiveOp::kAllReduce, CollectiveAlgo::kRing, 8, 64));
  CHECK(small.protocol == NcclProtocol::kLL);
  CHECK(small.latency == Duration::Nanoseconds(6600 + 14 * 600));
}

TEST_CASE("Tree all-reduce of 4 GiB on one node: GPU 1's NVLink, 24 chunks in 26 chunk times") {
  const topology::Cluster c = Load("dgx-h100");
  const Schedule tree =
      Build(CollectiveOp::kAllReduce, CollectiveAlgo::kTree, 8, uint64_t{4} << 30);
  const CollectiveTiming t = TimeCollective(c, tree);
  // The tree: 0 <- {1, 2}, 1 <- {3, 4}, 2 <- {5, 6}, 3 <- 7; 8 chunks of 4 GiB / 8 = 536,870,912 B.
  // A transfer crosses its sender's NVLink into the NVSwitch and its receiver's out, 370.8 GB/s
  // each (kH100NvLink): a chunk alone takes d = ceil(536,870,912 B / 370.8e9 B/s) =
  // 1,447,871,931 ps. NCCL's tree latencies (nccl_model.cc), Simple: base B = 8.4 us, an NVLink
  // hop l = 4.0 us; u = l + d, a hop and its chunk.
  const int64_t d = 1'447'871'931, l = 4'000'000, B = 8'400'000;
  CHECK(TransferTime(Bytes{536'870'912}, kH100NvLink) == Duration::Picoseconds(d));
  // GPU 1's incoming NVLink carries 24 chunks: for c = 0..7, c up from 4 (a leaf), c up from 3
  // (after 7's), c down from 0 (after 1's c went up). The earliest each can arrive, a hop each:
  //   up from 4: B + l + c u    up from 3: B + l + (c + 1) u    down from 0: B + l + (c + 3) u
  // and the least time the run still takes once it is through (the hops that must follow):
  //   up c:   (10 - c) u + 2d  (1 sends c up to 0, u; 0 sends c down to 1, then to 2, over its one
  //           NVLink, l + 2d; 2 sends c down to 5 and 6 over its one, l + 2d; c + 1 .. 7 to 5)
  //   down c: (9 - c) u        (1 gets c + 1 .. 7 from 0, then 7 goes down to 3, to 7)
  // Served largest tail first, the best order (link_bound.h), the link idles only for l at the
  // start (after 4's chunk 0, until 3's and 4's next arrive), then is never empty. Before down 5
  // (tail 4u) it drains every up chunk (tails >= 3u + 2d > 4u, as d > l) and downs 0..4 (tails >=
  // 5u): with down 5, 22 chunks, through at B + 2l + 22d, then 4u:
  //   B + 2l + 22d + 4u = B + 6l + 26d = 8.4 us + 24 us + 26 x 1,447,871,931 ps.
  // (Down 6: B + 2l + 23d + 3u, l less; down 7: 2l less. GPU 1's outgoing link, up c to 0 and c
  // down to 3 and 4, gives the same.) The chain of hops alone is B + 13u, far less.
  // Chunks that drain together round up once for all of them (26 x 536,870,912 B / 370.8e9 B/s =
  // 37,644,670,204.96 ps): the total lies between that, rounded up, and 26 rounded chunks.
  CHECK(t.total.picoseconds() >= B + 6 * l + 37'644'670'205);
  CHECK(t.total.picoseconds() <= B + 6 * l + 26 * d);            // 37,677,070,206 ps
  CHECK_THAT(t.bottleneck_link, Catch::Contains("node0/gpu1"));  // in or out: the same bound
  CHECK(t.protocol == NcclProtocol::kSimple);
  // Latency: the longest chain of hops, 7's chunks 0..7 (8), then 3 -> 1 -> 0 -> 1 -> 3 -> 7.
  CHECK(t.latency == Duration::Picoseconds(B + 13 * l));
  // Summing each step's busiest link instead charged 32d + B + 6l = 46.4 ms, more than the flows
  // take (44.9 ms): max-min sharing runs the up and down chunks of different steps at once.
  const Duration flow = RunFlows(c, tree, t.protocol).total;
  CHECK(flow < Duration::Picoseconds(32 * d + B + 6 * l));
  CHECK(flow >= t.total);
}

TEST_CASE("Incast: n senders into one GPU are bound by its one link") {
  const topology::Cluster c = Load("dgx-h100");
  models::TrafficMatrix m(8);
  const uint64_t s = 16 << 20;
  for (uint32_t i = 1; i < 8; ++i) m.at(i, 0) = s;
  auto schedule = BuildAllToAllV(m, CollectiveAlgo::kDirect);
  REQUIRE(schedule.ok());
  const CollectiveTiming t = TimeCollective(c, *schedule);
  // 7 x 16 MiB into GPU 0's 370.8 GB/s NVLink.
  CHECK(t.bandwidth == TransferTime(Bytes{7 * s}, kH100NvLink));
  CHECK(t.bottleneck_link == "node0/nvswitch -> node0/gpu0");
}

TEST_CASE("All-to-all on a 2:1 fat tree is bound by the leaf uplinks") {
  const topology::Cluster c = Load("dgx-h100-fat-tree-2to1.pbtxt");
  const uint64_t S = 128ULL << 20;  // 1 MiB to each of 128 ranks
  const CollectiveTiming t =
      TimeCollective(c, Build(CollectiveOp::kAllToAll, CollectiveAlgo::kDirect, 128, S));
  // A leaf holds 32 GPUs; each sends 96 of its 128 MiB off the leaf: 32 x 96 MiB = 3 GiB over 16
  // uplinks (ECMP, even): 192 MiB = 201,326,592 B per 49.68 GB/s uplink (an NDR port's RDMA
  // payload rate). A GPU's NIC carries only 120 MiB, so the uplinks bound the step.
  CHECK(t.bandwidth == TransferTime(Bytes{201'326'592}, kNdrPort));
  CHECK_THAT(t.bottleneck_link, Catch::Contains("leaf"));
  CHECK_THAT(t.bottleneck_link, Catch::Contains("spine"));
}

TEST_CASE("Collective names and the nccl-tests bus bandwidth factors") {
  CHECK(BusBandwidthFactor(CollectiveOp::kAllReduce, 8) == Approx(14.0 / 8));
  CHECK(BusBandwidthFactor(CollectiveOp::kAllToAll, 8) == Approx(7.0 / 8));
  CHECK(BusBandwidthFactor(CollectiveOp::kAllGather, 4) == Approx(3.0 / 4));
  CHECK(BusBandwidthFactor(CollectiveOp::kSendRecv, 4) == 1.0);
  CHECK(*ParseCollectiveOp("reducescatter") == CollectiveOp::kReduceScatter);
  auto bad = ParseCollectiveOp("allreduc");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message() ==
        "--op = allreduc: unknown collective; valid: alltoall, allreduce, allgather, "
        "reducescatter, sendrecv");
  auto wrong = BuildCollective(CollectiveOp::kAllGather, CollectiveAlgo::kTree, 8, 1024, 8);
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().message() == "--algo = tree: not an algorithm for allgather; valid: ring");
  CHECK_FALSE(BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kRing, 1, 1024, 8).ok());
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("NCCL's ring channels across nodes: channel c enters each node at its c-th rank") {
  // 2 nodes x 4 ranks, 4 channels: channel 1 visits node 0 as 1 2 3 0, node 1 as 5 6 7 4.
  CHECK(RingOrder(8, 4, 0) == std::vector<uint32_t>{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(RingOrder(8, 4, 1) == std::vector<uint32_t>{1, 2, 3, 0, 5, 6, 7, 4});
  CHECK(RingOrder(8, 4, 3) == std::vector<uint32_t>{3, 0, 1, 2, 7, 4, 5, 6});
  // One channel, or a count that does not divide the ranks: the plain ring.
  CHECK(RingOrder(6, 4, 2) == std::vector<uint32_t>{0, 1, 2, 3, 4, 5});

  // tests/fixtures/two_nodes_4gpu.pbtxt: 2 x 4 H100, NVLink 400 GB/s, one 50 GB/s NIC per GPU,
  // line rates. A ring all-gather of S = 32 MB: 7 steps of S/8 = 4 MB per rank.
  auto c =
      topology::LoadClusterArgument(testing::SourcePath("tests/fixtures/two_nodes_4gpu.pbtxt"), "");
  REQUIRE(c.ok());
  const uint64_t S = 32'000'000;
  // One ring: GPU 3 -> 4 and 7 -> 0 cross through one NIC each way: 4e6 B / 50e9 = 80 us a step,
  // 560 us in all.
  auto one = BuildCollective(CollectiveOp::kAllGather, CollectiveAlgo::kRing, 8, S, 4, 1);
  REQUIRE(one.ok());
  CHECK(TimeCollective(*c, *one).bandwidth == Duration::Nanoseconds(560'000));
  // Four channels of 1 MB: channel c leaves node 0 from GPU (c+3)%4, so each NIC carries one
  // channel's 1 MB a step each way: 1e6 / 50e9 = 20 us (a GPU's NVLink carries the other three
  // channels' 3 MB in 7.5 us). 140 us in all: the ring uses all four NICs.
  auto four = BuildCollective(CollectiveOp::kAllGather, CollectiveAlgo::kRing, 8, S, 4, 4);
  REQUIRE(four.ok());
  CHECK(four->transfers.size() == 4 * 7 * 8);
  CHECK(TimeCollective(*c, *four).bandwidth == Duration::Nanoseconds(140'000));
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("NVLS all-reduce: S (n+1)/n over each GPU's NVLink, NCCL's NVLS efficiency and latency") {
  const topology::Cluster c = Load("dgx-h100");
  // S = 56 MB on 8 GPUs: every pair exchanges S x 9 / 56 = 9 MB, so each GPU's link to the
  // NVSwitch carries 7 x 9 = 63 MB each way (= S (n+1)/n: S out and S/n back reducing, S/n out and
  // S back multicasting). 63e6 B / 370.8 GB/s = 169,902,912.6 ps -> 169,902,913.
  const uint64_t S = 56'000'000;
  auto s = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kNvls, 8, S, 8);
  REQUIRE(s.ok());
  CHECK(s->transfers.size() == 56);
  CHECK(s->transfers[0].bytes == 9'000'000);
  const CollectiveTiming t = TimeCollective(c, *s);
  CHECK(t.bandwidth == Duration::Picoseconds(169'902'913));
  // Simple only; no base latency, one NVLS hop of 25 us (tuning.cc); the bandwidth at NCCL's
  // Hopper nvlsEfficiency 0.85: 169,902,913 / 0.85 = 199,885,780 ps.
  CHECK(t.protocol == NcclProtocol::kSimple);
  CHECK(t.latency == Duration::Nanoseconds(25'000));
  CHECK(std::llabs(t.total.picoseconds() - (25'000'000 + 199'885'780)) <= 1);
  // busbw = 2 x 7/8 x S / 224.9 us = 435.8 GB/s here; at 1-8 GiB the latency fades and busbw
  // approaches 2 (n-1)/(n+1) x 0.85 x 370.8 = 490 GB/s (nccl-tests on H100 NVLS: 466-479).
  CHECK(BusBandwidthFactor(CollectiveOp::kAllReduce, 8) * S / (t.total.picoseconds() / 1e12) /
            1e9 ==
        Approx(435.8).epsilon(0.001));
}

TEST_CASE("NVLS needs Hopper or newer, an NVSwitch and one node") {
  std::vector<uint32_t> eight(8);
  for (uint32_t i = 0; i < 8; ++i) eight[i] = i;
  CHECK(CheckNvls(Load("dgx-h100"), eight).ok());
  const Status a100 = CheckNvls(Load("dgx-a100"), eight);
  REQUIRE_FALSE(a100.ok());
  CHECK_THAT(a100.error().message(), Catch::Contains("a100-sxm has no NVLink SHARP"));
  const Status pcie = CheckNvls(Load("pcie-8gpu"), eight);
  REQUIRE_FALSE(pcie.ok());
  CHECK_THAT(pcie.error().message(), Catch::Contains("no NVSwitch"));
  const topology::Cluster two = Load("dgx-h100-fat-tree-2to1.pbtxt");
  const Status across = CheckNvls(two, {0, 8});
  REQUIRE_FALSE(across.ok());
  CHECK_THAT(across.error().message(), Catch::Contains("span nodes"));
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("NVLS_TREE all-reduce on 2 x 4 GPUs: NVLS in each node, a tree over the nodes' NICs") {
  // tests/fixtures/two_nodes_4gpu.pbtxt: 2 x 4 H100 (NCCL's nvlsEfficiency 0.85), NVLink 400 GB/s
  // per GPU per direction, one 50 GB/s NIC per GPU behind a 63 GB/s PCIe switch, line rates.
  auto c =
      topology::LoadClusterArgument(testing::SourcePath("tests/fixtures/two_nodes_4gpu.pbtxt"), "");
  REQUIRE(c.ok());
  std::vector<uint32_t> all = {0, 1, 2, 3, 4, 5, 6, 7};
  REQUIRE(CheckNvlsTree(*c, all).ok());
  // S = 32 MB in 32 chunks of 1 MB. In each node every pair exchanges a chunk's NVLS share,
  // 1e6 x (4+1) / (4 x 3) / 0.85 = 490,196.08 -> 490,197 B; GPU l's shard, 1e6 / 4 = 250,000 B,
  // goes up from node 1 to node 0 (the tree's root) and back down, GPU l to GPU l.
  const uint64_t S = 32'000'000;
  auto s = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kNvlsTree, 8, S, 4, 1, 0.85);
  REQUIRE(s.ok());
  // Per chunk: 2 nodes x 4 x 3 in-node transfers, 4 legs up, 4 down.
  CHECK(s->transfers.size() == 32 * (24 + 4 + 4));
  const auto [sent, received] = Totals(*s);
  // GPU 0 (node 0, the root): 32 x (3 x 490,197 in the node + 250,000 down) out.
  CHECK(sent[0] == 32 * (3 * 490'197 + 250'000));
  CHECK(received[4] == 32 * (3 * 490'197 + 250'000));
  const CollectiveTiming t = TimeCollective(*c, *s);
  CHECK(t.protocol == NcclProtocol::kSimple);
  // Latency, NCCL's intraLat + 2 log2(2) interLat: one NVLS hop (25 us) and a network hop up and
  // one down (20.9 us each); the later chunks stream behind the first without latencies of their
  // own.
  CHECK(t.latency == Duration::Nanoseconds(25'000 + 2 * 20'900));
  // The bound: chunk 0's three transfers into GPU 4 share its NVLink, 3 x 490,197 B / 400 GB/s =
  // 3,676,477.5 -> 3,676,478 ps after the 25 us hop; its up leg starts a network hop later and
  // takes 250,000 / 50e9 = 5 us; chunk 0's down leg another network hop after that, at
  // 25 + 3.676478 + 20.9 + 5 + 20.9 = 75.476478 us. From then on node 0's NICs are never idle (a
  // chunk comes up every 5 us, as node 1's NICs carry them, and each takes 5 us down): 32 x 5 =
  // 160 us. 235,476,478 ps, and one more where the NIC's pooled drain is rounded up.
  INFO("total " << t.total.picoseconds() << " bottleneck " << t.bottleneck_link);
  CHECK(t.total == Duration::Picoseconds(235'476'479));
  // The flow model, with the same schedule, takes as long up to rounding (3 ps a transfer on the
  // longest chain, as tests/flow_vs_analytical_test.cc allows: 32 + 2 + 1 transfers here).
  const FlowRun flow = RunFlows(*c, *s, t.protocol);
  INFO("flow " << flow.total.picoseconds() << " " << flow.bottleneck_link);
  CHECK(flow.total.picoseconds() + 3 * 35 >= t.total.picoseconds());
  CHECK(static_cast<double>(flow.total.picoseconds()) <= 1.01 * t.total.picoseconds());
  // A ring over NCCL's 4 channels moves 14 steps of 4 MB / 4 channels = 1 MB over each NIC:
  // 14 x 20 us = 280 us of bandwidth alone. NVLS_TREE's NICs carry S/4 = 8 MB each way instead
  // of 14 MB.
  auto ring = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kRing, 8, S, 4, 4);
  REQUIRE(ring.ok());
  CHECK(TimeCollective(*c, *ring).bandwidth == Duration::Nanoseconds(280'000));
}

TEST_CASE("NVLS_TREE needs 2 or more whole nodes of Hopper or newer behind NVSwitch") {
  const topology::Cluster two = Load("dgx-h100-fat-tree-2to1.pbtxt");
  std::vector<uint32_t> sixteen(16);
  for (uint32_t i = 0; i < 16; ++i) sixteen[i] = i;
  CHECK(CheckNvlsTree(two, sixteen).ok());
  const Status one_node = CheckNvlsTree(two, {0, 1, 2, 3, 4, 5, 6, 7});
  REQUIRE_FALSE(one_node.ok());
  CHECK_THAT(one_node.error().message(), Catch::Contains("one node: --algo nvls"));
  const Status part = CheckNvlsTree(two, {0, 1, 8, 9});
  REQUIRE_FALSE(part.ok());
  CHECK_THAT(part.error().message(), Catch::Contains("not 2 or more whole nodes"));
  auto odd = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kNvlsTree, 12, 1 << 20, 8);
  REQUIRE_FALSE(odd.ok());
  CHECK_THAT(odd.error().message(), Catch::Contains("a multiple of 8, at least 16"));
}

}  // namespace moesim::sim
