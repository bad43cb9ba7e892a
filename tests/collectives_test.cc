// Collective schedules and their analytical time, against hand-computed values.
#include "sim/network/collectives.h"

#include <google/protobuf/text_format.h>

#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "sim/network/collective_time.h"
#include "sim/network/flow_model.h"
#include "sim/network/network_model.h"
#include "sim/network/ring_lockstep.h"
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
}

TEST_CASE("Tree all-reduce: a chain in each node, NCCL's double binary tree over the heads") {
  // 2 nodes x 4 ranks, 4 channels (BuildCollective's ring_channels), S = 512 KiB: 128 KiB a
  // channel. The first chunk's path is D = 2 (G - 1 + height) = 2 (3 + 1) = 8 hops. NCCL's chunk
  // (enqueue.cc): 512 KiB halved to 128 KiB (fewer than 8 D = 64 chunks), to 64 KiB (fewer than
  // 4 D = 32), to 32 KiB (fewer than D = 8; it stops at 32 KiB): 4 chunks of 32 KiB a channel,
  // 4 x 4 x 2 (n - 1) = 224 transfers.
  const uint64_t S = 512 << 10;
  auto built = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kTree, 8, S, 4, 4);
  REQUIRE(built.ok());
  const Schedule& tree = *built;
  CHECK(tree.transfers.size() == 224);
  for (const Transfer& t : tree.transfers) CHECK(t.bytes == 32768);
  // Steps: chunk k's transfers run k steps behind chunk 0's, whose last is D - 1 = 7: 11.
  CHECK(tree.steps == 4 - 1 + 8);
  // Channel c's chain in a node starts at its c-th rank: local rank l heads channel l, is the tail
  // of channel l + 1 (mod 4) and in the middle of the other two. Per chunk a head sends 2 (down
  // its chain, and to the child node's head or up to the parent node's), a middle rank 2 (up and
  // down its chain), the tail 1 (up): 3 x 2 + 1 = 7 channel parts of S / 4 each way, every rank.
  const auto [sent, received] = Totals(tree);
  for (uint32_t r = 0; r < 8; ++r) {
    CHECK(sent[r] == 7 * S / 4);
    CHECK(received[r] == 7 * S / 4);
  }
  // Across nodes only the heads talk, local rank c of each node in channel c, so every NIC carries
  // one channel: S / 4 each way. Even channels: node 0 is the root (node 1's head sends up, node
  // 0's sends down); odd channels run the mirror, node 1 the root.
  std::map<std::pair<uint32_t, uint32_t>, uint64_t> across;
  for (const Transfer& t : tree.transfers) {
    if (t.src / 4 != t.dst / 4) across[{t.src, t.dst}] += t.bytes;
  }
  CHECK(across.size() == 8);
  for (uint32_t c = 0; c < 4; ++c) {
    CHECK(across[{c, 4 + c}] == S / 4);
    CHECK(across[{4 + c, c}] == S / 4);
  }
  // Chunk 0 of channel 0 starts at node 0's tail (rank 3) and node 1's (rank 7), step 0.
  CHECK(tree.transfers[0].src == 7);
  CHECK(tree.transfers[0].dst == 6);
  CHECK(tree.transfers[0].step == 0);
  CHECK_FALSE(tree.transfers[0].streamed);
  // One node: one chain; 3 ranks, 3 B: 1 channel, one chunk, 2 (n - 1) = 4 transfers.
  CHECK(Build(CollectiveOp::kAllReduce, CollectiveAlgo::kTree, 3, 3).transfers.size() == 4);
  // 7 ranks, 7 MiB: D = 12, chunks of 512 KiB already number 14 >= D... halved to 128 KiB (56 <
  // 8 D = 96), kept (56 >= 4 D = 48): 56 chunks, 56 x 2 x 6 = 672 transfers.
  CHECK(Build(CollectiveOp::kAllReduce, CollectiveAlgo::kTree, 7, 7 << 20).transfers.size() == 672);
}

TEST_CASE("Tree all-reduce over 4 nodes: odd channels run the mirrored tree") {
  // 4 nodes of 1 GPU, 2 channels of P = S / 2. Channel 0's tree: node 0 <- {1, 2}, 1 <- {3};
  // channel 1's is its mirror: node 3 <- {2, 1}, 2 <- {0}. Each node receives 3 parts in all:
  // node 0 two up-legs as channel 0's root and one down-leg as a leaf of channel 1; node 1 one
  // up and one down in channel 0, one down in channel 1; node 2 likewise; node 3 one down in
  // channel 0 and two up as channel 1's root. Without the mirror node 0 would receive 4 parts
  // and node 3 2: the NICs of the inner nodes carry more, the leaves' less.
  const uint64_t S = 64 << 10;
  auto built = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kTree, 4, S, 1, 2);
  REQUIRE(built.ok());
  const auto received = Totals(*built).second;
  for (uint32_t r = 0; r < 4; ++r) {
    INFO("node " << r);
    CHECK(received[r] == 3 * S / 2);
  }
}

TEST_CASE("Tree all-reduce of 64 GPUs: at most 2^18 transfers, the chunks fewer") {
  // 8 nodes of 8, 8 channels, 8 GiB: D = 2 (7 + 3) = 20 hops, NCCL's 512 KiB chunks number 2,048 a
  // channel, 16 D = 320; 2^18 / (8 channels x 2 x 63) = 260 of them fit: 8 x 260 x 126 = 262,080
  // transfers.
  auto built =
      BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kTree, 64, uint64_t{8} << 30, 8, 8);
  REQUIRE(built.ok());
  CHECK(built->transfers.size() == 262'080);
}

TEST_CASE("Tree all-reduce of 4 GiB and more: whole chunks, the buffer each way along the chain") {
  // 4 GiB = 2^32 B and 8 GiB = 2^33 B narrowed to 32 bits are 0 B: 0 chunks, a division by zero.
  // One node of 8, one channel: a chain 0 <- 1 <- ... <- 7, D = 14 hops; NCCL's 512 KiB chunks
  // number 8,192 and more, held to 16 D = 224: 224 x 7 x 2 = 3,136 transfers; the tail sends
  // exactly the buffer up and gets it back.
  for (const uint64_t S : {uint64_t{4} << 30, uint64_t{8} << 30, (uint64_t{4} << 30) + 4}) {
    const Schedule tree = Build(CollectiveOp::kAllReduce, CollectiveAlgo::kTree, 8, S);
    REQUIRE(tree.transfers.size() == 3136);
    const auto [sent, received] = Totals(tree);
    CHECK(sent[7] == S);
    CHECK(received[7] == S);
    // Middle ranks send up and down: twice the buffer.
    CHECK(sent[3] == 2 * S);
    // Chunk 0: ceil(S / 224) or floor, as ChunkBytes splits.
    CHECK(tree.transfers.front().bytes == S / 224 + (S % 224 > 0 ? 1 : 0));
  }
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

TEST_CASE("Tree all-reduce of 4 GiB on one node: a middle GPU's NVLink carries the buffer twice") {
  const topology::Cluster c = Load("dgx-h100");
  const uint64_t S = uint64_t{4} << 30;
  const Schedule tree = Build(CollectiveOp::kAllReduce, CollectiveAlgo::kTree, 8, S);
  const CollectiveTiming t = TimeCollective(c, tree);
  // One node: NCCL's tree is a chain, 0 <- 1 <- ... <- 7 up, back down, in 224 chunks (16 per hop
  // of the 14-hop path). A middle GPU sends every chunk up and every chunk down over its one
  // NVLink into the NVSwitch: 2S at 370.8 GB/s (kH100NvLink) x 0.92 (NCCL's tree derating,
  // kNcclTreeEfficiency) = 341.136 GB/s: 8,589,934,592 B / 341.136e9 B/s = 25,180,381,408 ps.
  CHECK(t.efficiency == Approx(0.92));
  const int64_t busy = 25'180'381'408;
  // It cannot start before its first chunk climbs the chain, and the last chunk still has hops to
  // go after it: at most the 14 hops' latencies (NCCL's tree, Simple: base B = 8.4 us, an NVLink
  // hop l = 4.0 us) and 14 chunk times d = 19,173,962 B / 341.136 GB/s = 56.2 us more.
  const int64_t B = 8'400'000, l = 4'000'000, d = 56'206'212;
  CHECK(t.total.picoseconds() > busy);
  CHECK(t.total.picoseconds() < B + 14 * (l + d) + busy);
  CHECK(t.protocol == NcclProtocol::kSimple);
  // The bound: a middle GPU's NVLink (which one is the first of equal links).
  CHECK_THAT(t.bottleneck_link, Catch::Contains("nvswitch"));
  // Latency: the first chunk's path, 7 hops up and 7 down: NCCL's B + 2 (G - 1) l = 64.4 us.
  CHECK(t.latency == Duration::Picoseconds(B + 14 * l));
  // The flows share the links max-min fairly: no faster than the bound.
  const Duration flow = RunFlows(c, tree, t.protocol, t.efficiency).total;
  CHECK(flow >= t.total);
}

TEST_CASE("Tree all-reduce across 2 nodes: every NIC carries one channel; NCCL's latency") {
  // aws-p5-efa-2: 2 x 8 H100, a 400 Gb/s NIC per GPU, EFA's 20 us per network crossing
  // (fabric.net_latency_ns, added to the network hop as NCCL adds a net plugin's latency, twice
  // for Simple). 8 channels, each chain headed by local rank c, whose NIC carries S / 8 each way.
  // NCCL's tree latency, LL for 8 B: base 6.8 us + 2 x (7 NVLink hops x 0.6 us + 1 network hop x
  // (5.0 + 20) us) = 65.2 us; Simple for 8 GiB: 8.4 + 2 x (7 x 4.0 + 14.0 + 2 x 20) = 172.4 us.
  const topology::Cluster c = Load("aws-p5-efa-2.pbtxt");
  auto small = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kTree, 16, 8, 8, 8);
  REQUIRE(small.ok());
  const CollectiveTiming s = TimeCollective(c, *small);
  CHECK(s.protocol == NcclProtocol::kLL);
  CHECK(s.latency == Duration::Nanoseconds(65'200));
  // 8 B take picoseconds on the links: 1 B chunks, a few of them in a row.
  CHECK(s.total - s.latency < Duration::Nanoseconds(1));
  const uint64_t S = uint64_t{8} << 30;
  auto big = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kTree, 16, S, 8, 8);
  REQUIRE(big.ok());
  const CollectiveTiming t = TimeCollective(c, *big);
  CHECK(t.latency == Duration::Nanoseconds(172'400));
  // Per GPU over the 8 channels: head of one (sends down its chain and one network leg), tail of
  // one (up), middle of six (up and down): 14 channel parts of S / 8 = 1.75 S over its NVLink.
  // At 370.8 GB/s x 0.92 that is 15,032,385,536 B / 341.136e9 B/s = 44.07 ms; the NIC's S / 8
  // at 400 Gb/s is far less. So NVLink bounds it, 44.07 ms and a few per cent of pipeline fill.
  const double nvlink_ms = 1.75 * static_cast<double>(S) / 341.136e9 * 1e3;
  CHECK(static_cast<double>(t.total.picoseconds()) / 1e9 > nvlink_ms);
  CHECK(static_cast<double>(t.total.picoseconds()) / 1e9 < nvlink_ms * 1.07);
  CHECK_THAT(t.bottleneck_link, Catch::Contains("nvswitch"));
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
  CHECK(wrong.error().message() ==
        "--algo = tree: not an algorithm for allgather; valid: ring, nvls");
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
  // One ring: GPU 3 -> 4 and 7 -> 0 cross through one NIC each way: 4e6 B / 50e9 = 80 us a step.
  // Simple: NCCL's base 8.4 us; GPU 3's first step pays a network step latency, 14 us, and each
  // of its 6 others waits for its send before to have left plus an intra-node (NVLink) step
  // latency, 3.4 us, not for it to arrive plus 14 us: 8.4 + 14 + 80 + 6 x (3.4 + 80) = 602.8 us.
  // (The chunks reach it in time: they come over NVLink hops of 3.4 + 10 us.)
  auto one = BuildCollective(CollectiveOp::kAllGather, CollectiveAlgo::kRing, 8, S, 4, 1);
  REQUIRE(one.ok());
  const CollectiveTiming t1 = TimeCollective(*c, *one);
  CHECK(t1.protocol == NcclProtocol::kSimple);
  CHECK(t1.total.picoseconds() == 602'800'000);
  // Four channels of 1 MB: channel c leaves node 0 from GPU (c+3)%4, so each NIC carries one
  // channel's 1 MB a step each way: 1e6 / 50e9 = 20 us (a GPU's NVLink carries the other three
  // channels' 3 MB in 7.5 us), so the ring uses all four NICs. NCCL's tuner now picks LL128:
  // base 14 us, a network step 4.0, an NVLink one 1.9, each step's 1 MB at 0.92 of the NIC,
  // ceil(1e6 / 46e9 s) = 21,739,131 ps: 14 + 4.0 + 7 x 21.739131 + 6 x 1.9 = 181.573917 us
  // (Simple: 8.4 + 14 + 20 + 6 x (3.4 + 20) = 182.8 us).
  auto four = BuildCollective(CollectiveOp::kAllGather, CollectiveAlgo::kRing, 8, S, 4, 4);
  REQUIRE(four.ok());
  CHECK(four->transfers.size() == 4 * 7 * 8);
  const CollectiveTiming t4 = TimeCollective(*c, *four);
  CHECK(t4.protocol == NcclProtocol::kLL128);
  CHECK(t4.total.picoseconds() == 181'573'917);
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
  // NVLS's pipeline fill (NvlsPipelineFill): 16 channels x 8 heads = 128 ops; the chunk falls
  // from 128 KiB to 64 KiB (S < 64 x 128 x 128 KiB) and 32 KiB (S < 8 x 128 x 64 KiB = 64 MiB),
  // not to 16 KiB (S >= 8 MiB); a loop moves 128 x 32 KiB = 4,194,304 B, and the 3 stages of
  // the all-reduce add 2 x 4,194,304 / 56e6 x 199,885,780 = 29,942,204.5 ps.
  CHECK(t.pipeline_fill == Duration::Picoseconds(29'942'205));
  CHECK(std::llabs(t.total.picoseconds() - (25'000'000 + 199'885'780 + 29'942'205)) <= 1);
  // busbw = 2 x 7/8 x S / 254.8 us = 384.6 GB/s here; at 1-8 GiB the latency and the fill fade
  // and busbw approaches 2 (n-1)/(n+1) x 0.85 x 370.8 = 490 GB/s (nccl-tests on H100 NVLS:
  // 466-479).
  CHECK(BusBandwidthFactor(CollectiveOp::kAllReduce, 8) * S / (t.total.picoseconds() / 1e12) /
            1e9 ==
        Approx(384.57).epsilon(0.001));
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
  // S = 32 MB in NCCL's loops: 16 NVLS channels x 4 heads = 64 ops; the chunk, 128 KiB on 2
  // nodes, falls to 64 KiB (S < 4 x 64 x 128 KiB = 32 MiB) and not to 32 KiB (S >= 64 x 64 KiB),
  // so a loop moves 64 x 64 KiB = 4,194,304 B and S takes ceil(32e6 / 4,194,304) = 8 of them:
  // 8 chunks of 4 MB. In each node GPU i sends GPU i + 1 a chunk's whole NVLS load,
  // 4e6 x (4+1) / 4 / 0.85 = 5,882,352.9 -> 5,882,353 B (through the NVSwitch, what nvls's pairs
  // put on each GPU's link); GPU l's shard, 4e6 / 4 = 1e6 B, goes up from node 1 to node 0 (the
  // tree's root) and back down, GPU l to GPU l.
  const uint64_t S = 32'000'000;
  auto s = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kNvlsTree, 8, S, 4, 1, 0.85);
  REQUIRE(s.ok());
  // Per chunk: 2 nodes x 4 in-node transfers, 4 legs up, 4 down.
  CHECK(s->transfers.size() == 8 * (8 + 4 + 4));
  const auto [sent, received] = Totals(*s);
  // GPU 0 (node 0, the root): 8 x (5,882,353 in the node + 1,000,000 down) out.
  CHECK(sent[0] == 8 * (5'882'353 + 1'000'000));
  CHECK(received[4] == 8 * (5'882'353 + 1'000'000));
  const CollectiveTiming t = TimeCollective(*c, *s);
  CHECK(t.protocol == NcclProtocol::kSimple);
  // Latency, NCCL's intraLat + 2 log2(2) interLat: one NVLS hop (25 us) and a network hop up and
  // one down (20.9 us each); the later chunks stream behind the first without latencies of their
  // own.
  CHECK(t.latency == Duration::Nanoseconds(25'000 + 2 * 20'900));
  // The bound: chunk 0's transfer into GPU 4 takes its NVLink, 5,882,353 B / 400 GB/s
  // = 14,705,882.5 -> 14,705,883 ps after the 25 us hop; its up leg starts a network hop later
  // and takes 1e6 / 50e9 = 20 us; chunk 0's down leg another network hop after that, at
  // 25 + 14.705883 + 20.9 + 20 + 20.9 = 101.505883 us. From then on node 0's NICs are never idle
  // (a chunk comes up every 20 us, as node 1's NICs carry them, and each takes 20 us down):
  // 8 x 20 = 160 us: 261,505,883 ps (5 ps more while the load was listed as 3 pairs of
  // 1,960,785 B, 2 B more than 5,882,353; one more before 2026-12-07, when the rest of a NIC's pool
  // taken over mid-way was rounded up to a whole byte: LinkDrain::Time).
  // (32 chunks of 1 MB, before the chunks followed NCCL's loops: 235.476479 us.)
  INFO("total " << t.total.picoseconds() << " bottleneck " << t.bottleneck_link);
  CHECK(t.total == Duration::Picoseconds(261'505'883));
  // The flow model, with the same schedule, takes as long up to rounding (3 ps a transfer on the
  // longest chain, as tests/flow_vs_analytical_test.cc allows: 8 + 2 + 1 transfers here).
  const FlowRun flow = RunFlows(*c, *s, t.protocol);
  INFO("flow " << flow.total.picoseconds() << " " << flow.bottleneck_link);
  CHECK(flow.total.picoseconds() + 3 * 11 >= t.total.picoseconds());
  CHECK(static_cast<double>(flow.total.picoseconds()) <= 1.01 * t.total.picoseconds());
  // A large buffer stops at 32 chunks: 1 GiB is 1 GiB / (16 x 4 x 128 KiB = 8 MiB) = 128 of
  // NCCL's loops, run as 32 chunks of 16 transfers.
  auto large =
      BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kNvlsTree, 8, 1 << 30, 4, 1, 0.85);
  REQUIRE(large.ok());
  CHECK(large->transfers.size() == 32 * (8 + 4 + 4));
  // A ring over NCCL's 4 channels moves 14 steps of 4 MB / 4 channels = 1 MB over each NIC:
  // 14 x 20 us = 280 us of bandwidth alone at Simple. The rank leaving the node pays NCCL's base,
  // one network step latency and 13 NVLink ones: LL128, 14 + 4.0 + 14 x 21.739131 (1 MB at 0.92
  // of 50 GB/s) + 13 x 1.9 = 347.047834 us (Simple, x 1.4 for the ring plateau since
  // 32 MB / (64 x 8) >= 64 B: 8.4 x 1.4 + 14 x 1.4 + 20 + 13 x (3.4 x 1.4 + 20) = 373.24 us).
  // NVLS_TREE's NICs carry S/4 = 8 MB each way instead of 14 MB.
  auto ring = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kRing, 8, S, 4, 4);
  REQUIRE(ring.ok());
  CHECK(TimeCollective(*c, *ring).total.picoseconds() == 347'047'834);
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

namespace moesim::sim {

TEST_CASE("NCCL's tuner weighs ring, tree across nodes, and NVLS or NVLSTree where they exist") {
  using A = CollectiveAlgo;
  auto all = [](uint32_t n) {
    std::vector<uint32_t> gpus(n);
    for (uint32_t i = 0; i < n; ++i) gpus[i] = i;
    return gpus;
  };
  std::string words;
  // One A100 node: no NVLS before Hopper, no tree in a node: the ring alone.
  CHECK(TunerAllReduceAlgorithms(Load("dgx-a100"), all(8), &words) == std::vector<A>{A::kRing});
  CHECK(words == "ring");
  // One H100 node: ring or NVLS.
  CHECK(TunerAllReduceAlgorithms(Load("dgx-h100"), all(8), &words) ==
        std::vector<A>{A::kRing, A::kNvls});
  CHECK(words == "ring or nvls (NCCL's tuner: the faster)");
  // Two A100 nodes: ring or tree. Two H100 nodes: ring, tree or NVLSTree.
  CHECK(TunerAllReduceAlgorithms(Load("aws-p4de-efa-2.pbtxt"), all(16), &words) ==
        std::vector<A>{A::kRing, A::kTree});
  CHECK(words == "ring or tree (NCCL's tuner: the faster)");
  CHECK(TunerAllReduceAlgorithms(Load("aws-p5-efa-2.pbtxt"), all(16)) ==
        std::vector<A>{A::kRing, A::kTree, A::kNvlsTree});
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("NVLS all-gather and reduce-scatter: S over each GPU's NVLink, one NVLS hop") {
  const topology::Cluster c = Load("dgx-h100");
  // S = 56 MB on 8 GPUs. All-gather: each GPU multicasts its S/8 = 7 MB to all 8 (itself too), so
  // 56 MB come into every GPU and 7 MB leave it; reduce-scatter the reverse. Listed as every pair
  // exchanging S / 7 = 8 MB: 7 x 8 = 56 MB on each GPU's link each way, the busier direction's.
  const uint64_t S = 56'000'000;
  for (CollectiveOp op : {CollectiveOp::kAllGather, CollectiveOp::kReduceScatter}) {
    INFO(ToString(op));
    auto s = BuildCollective(op, CollectiveAlgo::kNvls, 8, S, 8);
    REQUIRE(s.ok());
    CHECK(s->transfers.size() == 56);
    CHECK(s->transfers[0].bytes == 8'000'000);
    const CollectiveTiming t = TimeCollective(c, *s);
    // 56e6 B / 370.8 GB/s = 151,024,811.2 ps -> 151,024,812; Simple only, NCCL's NVLS latency
    // (25 us, no base) and its Hopper nvlsEfficiency: 151,024,812 / 0.85 = 177,676,249.4 ps.
    CHECK(t.protocol == NcclProtocol::kSimple);
    CHECK(t.latency == Duration::Nanoseconds(25'000));
    CHECK(t.bandwidth == Duration::Picoseconds(151'024'812));
    // The pipeline fill: 4,194,304 B loops as for the all-reduce (32 KiB chunks for 56 MB),
    // 2 stages: 1 x 4,194,304 / 56e6 x 177,676,250 = 13,307,646.5 ps.
    CHECK(t.pipeline_fill == Duration::Picoseconds(13'307'647));
    CHECK(std::llabs(t.total.picoseconds() - (25'000'000 + 177'676'250 + 13'307'647)) <= 1);
    // The ring: 7 steps of S/8 = 7 MB, each 7e6 / 370.8e9 = 18,878,101.4 -> 18,878,102 ps, after
    // Simple's 8.4 + 7 x 3.4 = 32.2 us: 164,346,714 ps. S (n-1)/n at full NVLink beats S at 0.85
    // of it, so NCCL's tuner (as moesim weighs it) keeps the ring here; NVLS's gain is the SMs
    // it frees, which moesim does not price.
    auto ring = BuildCollective(op, CollectiveAlgo::kRing, 8, S, 8);
    REQUIRE(ring.ok());
    CHECK(TimeCollective(c, *ring).total == Duration::Picoseconds(164'346'714));
    std::vector<uint32_t> eight(8);
    for (uint32_t i = 0; i < 8; ++i) eight[i] = i;
    CHECK(TunerAlgorithms(c, eight, op) ==
          std::vector<CollectiveAlgo>{CollectiveAlgo::kRing, CollectiveAlgo::kNvls});
    CHECK(MakeNetworkModel(c, Fidelity::kAnalytical)->TunedGroupCollective(eight, op, S).time ==
          Duration::Picoseconds(164'346'714));
    // No NVLS across nodes (NCCL's needs CollNet there) or before Hopper: the ring alone.
    const topology::Cluster two = Load("dgx-h100-fat-tree-2to1.pbtxt");
    CHECK(TunerAlgorithms(two, {0, 1, 8, 9}, op) ==
          std::vector<CollectiveAlgo>{CollectiveAlgo::kRing});
    CHECK(TunerAlgorithms(Load("dgx-a100"), eight, op) ==
          std::vector<CollectiveAlgo>{CollectiveAlgo::kRing});
  }
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("A ring's channels move in lockstep: each step's latency adds to its shared bytes") {
  // tests/fixtures/two_nodes_4gpu_slow_nvlink.pbtxt: 2 x 4 H100, NVLink 100 GB/s, one 50 GB/s NIC
  // per GPU, line rates. A ring all-gather of S = 32 MB over 4 channels: 7 steps of S/8 = 4 MB per
  // rank, 1 MB a channel. Each GPU sends one channel's hop through its NIC and three over NVLink
  // (channel c leaves node 0 from GPU (c+3)%4): its NVLink carries 3 MB a step.
  auto c = topology::LoadClusterArgument(
      testing::SourcePath("tests/fixtures/two_nodes_4gpu_slow_nvlink.pbtxt"), "");
  REQUIRE(c.ok());
  const uint64_t S = 32'000'000;
  auto s = BuildCollective(CollectiveOp::kAllGather, CollectiveAlgo::kRing, 8, S, 4, 4);
  REQUIRE(s.ok());
  // The channels share the NVLink at equal rates (NCCL's channel moves its share, no more): an
  // NVLink hop's 1 MB is through when the link has carried all 3 MB, 3e6 / 100e9 = 30 us; a NIC
  // hop's 1 MB alone on its NIC, 1e6 / 50e9 = 20 us (its PCIe hop, 63 GB/s, is faster).
  const std::vector<double> lockstep = RingLockstepSeconds(*c, *s);
  REQUIRE(lockstep.size() == s->transfers.size());
  std::map<bool, std::set<double>> by_hop;  // across nodes? -> the distinct times
  for (size_t t = 0; t < lockstep.size(); ++t) {
    const Transfer& x = s->transfers[t];
    by_hop[x.src / 4 != x.dst / 4].insert(lockstep[t]);
  }
  CHECK(by_hop[false] == std::set<double>{3e6 / 100e9});
  CHECK(by_hop[true] == std::set<double>{1e6 / 50e9});
  // Simple: base 8.4 us, then the longest chain. A channel's ring of 8 crosses the nodes twice
  // (hops net, NV, NV, NV, net, NV, NV, NV); a chunk starting on a network hop goes 7 hops
  // round, each waiting for the one before to arrive plus its step latency (network 14 us,
  // NVLink 3.4 us, >= 3 x 1 us of net overhead in a ring across nodes) and taking its lockstep
  // time on the wire: 2 x (14 + 20) + 5 x (3.4 + 30) = 235 us, longer than a rank's own sends
  // (3.4 + 30 + 6 x (3.4 + 30) = 233.8 us): 8.4 + 235 = 243.4 us. The link's bytes alone,
  // 8.4 + 3.4 + 7 x 30 = 221.8 us, no longer set it (they did with each hop's 1 MB taken alone on
  // the link, 10 us): channels taking the link in turns while the others wait out their step
  // latency would, and NCCL's do not. (LL128: base 14 us, NVLink step 1.9 us, bytes at 0.92: a
  // rank's own sends 7 x (1.9 + 30 / 0.92) = 241.6 us, 255.6 in all; LL is held to 39 GB/s of
  // bus bandwidth across 2 nodes.)
  const CollectiveTiming t = TimeCollective(*c, *s);
  CHECK(t.protocol == NcclProtocol::kSimple);
  INFO("total " << t.total.picoseconds() << " latency " << t.latency.picoseconds());
  CHECK(std::llabs(t.total.picoseconds() - 243'400'000) <= 2);
  // The flow model caps each transfer at its share (bytes / its lockstep time), so it lands on the
  // same time, never under it.
  const FlowRun flow = RunFlows(*c, *s, t.protocol, t.efficiency);
  CHECK(flow.total.picoseconds() + 2 >= t.total.picoseconds());
  CHECK(flow.total.picoseconds() <= t.total.picoseconds() + 2);
  // A schedule that is not a ring has no lockstep times.
  auto direct = BuildCollective(CollectiveOp::kAllToAll, CollectiveAlgo::kDirect, 8, S, 4);
  REQUIRE(direct.ok());
  CHECK(RingLockstepSeconds(*c, *direct).empty());
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("A ring on a slow link: the flow model is not faster than the analytical bound") {
  // tests/fixtures/two_nodes_4gpu_slow_nvlink.pbtxt's cluster with NVLink at 0.001 GB/s (a byte a
  // us): a 16 B all-reduce over 8 ranks and 4 channels puts 2 B on channel 0's hops, 0 on the
  // others'. Channel 0's NVLink hops take 2 B / (0.001 GB/s x 0.92, LL128) = 2.1739 us; a rank's
  // own 14 sends after NCCL's base 14 us and the first hop's 1.9 us, each next one its pace (1.9
  // us) after the last: 14 + 1.9 + 2.1739 + 13 x (1.9 + 2.1739) = 71.035 us, in both models. (The
  // link bound once rounded each preempted pool's rest up to a whole byte: 71.891 us, above the
  // flow's.)
  pb::Cluster slow;
  REQUIRE(google::protobuf::TextFormat::ParseFromString(
      "node { name: 'slow' gpu: 'h100-sxm' gpus: 4 nvlink { bandwidth_gbps: 0.001 } "
      "pcie { switches: 4 cpus: 1 } nics { count: 4 gbit_per_s: 400 } } "
      "nodes: 2 fabric { single_switch {} } line_rate: true",
      &slow));
  auto c = topology::BuildCluster(slow);
  REQUIRE(c.ok());
  for (uint64_t size : {uint64_t{8}, uint64_t{16}, uint64_t{24}, uint64_t{1000}}) {
    auto s = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kRing, 8, size, 4, 4);
    REQUIRE(s.ok());
    const CollectiveTiming a = TimeCollective(*c, *s);
    const FlowRun f = RunFlows(*c, *s, a.protocol, a.efficiency);
    INFO(size << " B: analytical " << a.total.picoseconds() << " ps, flow "
              << f.total.picoseconds());
    // Rounding only: a few ps a transfer on the chain (flow_vs_analytical_test.cc).
    CHECK(f.total.picoseconds() + 14 * 4 >= a.total.picoseconds());
    if (size == 16) {
      CHECK(a.protocol == NcclProtocol::kLL128);
      CHECK(std::llabs(a.total.picoseconds() - 71'034'797) <= 2);
    }
  }
}

}  // namespace moesim::sim
