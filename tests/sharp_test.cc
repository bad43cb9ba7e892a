// All-reduces on switches that reduce (SHARP, cluster.fabric.sharp): NCCL's CollNet Direct,
// moesim's `collnet`, and NCCL's NVLS across nodes, moesim's `nvls` there: their schedules, their
// times on 2 x 4 GPUs worked by hand, where they may run, and NCCL's tuner weighing them.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "sim/network/collective_time.h"
#include "sim/network/collectives.h"
#include "sim/network/flow_model.h"
#include "sim/network/nccl_model.h"
#include "sim/network/network_model.h"
#include "test_helpers.h"
#include "topology/cluster.h"

namespace moesim::sim {
namespace {

// tests/fixtures/two_nodes_4gpu.pbtxt with switches that reduce: 2 x 4 H100, NVLink 400 GB/s per
// GPU per direction, one 50 GB/s NIC per GPU behind its own 63 GB/s PCIe switch, every NIC on one
// switch, line rates.
#define MOESIM_TWO_BY_FOUR(FABRIC)                                                   \
  "node { name: 'test-4gpu' gpu: 'h100-sxm' gpus: 4 nvlink { bandwidth_gbps: 400 } " \
  "pcie { switches: 4 cpus: 1 } nics { count: 4 gbit_per_s: 400 } } "                \
  "nodes: 2 fabric { " FABRIC " } line_rate: true"
constexpr const char* kTwoBySharp = MOESIM_TWO_BY_FOUR("single_switch {} sharp: true");
// The same without SHARP (the fixture as it is).
constexpr const char* kTwoByFour = MOESIM_TWO_BY_FOUR("single_switch {}");
#undef MOESIM_TWO_BY_FOUR

std::vector<uint32_t> Gpus(std::initializer_list<uint32_t> ids) { return ids; }

std::vector<uint32_t> FirstGpus(uint32_t n) {
  std::vector<uint32_t> gpus(n);
  for (uint32_t i = 0; i < n; ++i) gpus[i] = i;
  return gpus;
}

// The flow model runs `s` no faster than its analytical time `t` (up to 3 ps of rounding a
// transfer on a chain of `chain` transfers) and within 1 % of it.
void CheckFlowAgrees(const topology::Cluster& c, const Schedule& s, const CollectiveTiming& t,
                     int64_t chain) {
  const FlowRun flow = RunFlows(c, s, t.protocol, t.efficiency);
  INFO("flow " << flow.total.picoseconds() << " ps, analytical " << t.total.picoseconds());
  CHECK(flow.total.picoseconds() + 3 * chain >= t.total.picoseconds());
  CHECK(static_cast<double>(flow.total.picoseconds()) <= 1.01 * t.total.picoseconds());
}

}  // namespace

TEST_CASE("CollNet Direct on 2 x 4 GPUs: scatter to the heads, one NIC crossing each way, gather") {
  const topology::Cluster c = testing::ClusterFromText(kTwoBySharp);
  REQUIRE(CheckCollNet(c, FirstGpus(8)).ok());
  // S = 8 MB in chunks of 4 heads x 512 KiB = 2,097,152 B: ceil(8e6 / 2,097,152) = 4 chunks of
  // 2 MB, each in shards of 500,000 B, one per GPU of a node.
  const uint64_t S = 8'000'000;
  auto s = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kCollNet, 8, S, 4);
  REQUIRE(s.ok());
  // Per chunk: 2 nodes x 4 x 3 scatter transfers, 8 network legs, 2 x 4 x 3 gather transfers.
  REQUIRE(s->transfers.size() == 4 * (24 + 8 + 24));
  std::vector<uint64_t> sent(8, 0), received(8, 0), crossed_out(8, 0), crossed_in(8, 0);
  for (const Transfer& t : s->transfers) {
    CHECK(t.bytes == 500'000);
    sent[t.src] += t.bytes;
    received[t.dst] += t.bytes;
    if (t.src / 4 != t.dst / 4) {
      crossed_out[t.src] += t.bytes;
      crossed_in[t.dst] += t.bytes;
      CHECK(t.dst % 4 == t.src % 4);  // GPU l to GPU l: the NIC of its rail both ends
    }
  }
  for (uint32_t r = 0; r < 8; ++r) {
    INFO("rank " << r);
    // 4 chunks x (3 scatter shards + 1 network shard + 3 gather shards) = 14 MB each way, of
    // which S/4 = 2 MB through the NIC each way (a ring's 4 channels: 2 x 7/8 x S / 4 = 3.5 MB).
    CHECK(sent[r] == 14'000'000);
    CHECK(received[r] == 14'000'000);
    CHECK(crossed_out[r] == S / 4);
    CHECK(crossed_in[r] == S / 4);
  }

  const CollectiveTiming t = TimeCollective(c, *s);
  CHECK(t.protocol == NcclProtocol::kSimple);
  // NCCL's CollNet Direct latency: 2 x (3.7 us in the node + 3 x 0.4 us arity) + 31 us:
  // 2.4 us of arity as the base, then the first chunk's in-node hop, network hop, in-node hop.
  CHECK(t.latency == Duration::Nanoseconds(2'400 + 3'700 + 31'000 + 3'700));
  // Links at NCCL's CollNet share on Hopper, 0.85: NVLink 340 GB/s, NIC 42.5 GB/s, PCIe
  // 53.55 GB/s. The chain: base 2.4 us; chunk 0's three shards into GPU l share its NVLink,
  // 1.5 MB / 340 GB/s = 4.411765 us after the 3.7 us hop; its network leg 31 us later; from then
  // each NIC sends the 4 chunks' legs back to back, 4 x 500,000 B / 42.5 GB/s = 47.058824 us (the
  // later chunks' scatters are done long before: 4.4 us each over NVLink); then the last
  // chunk's gather, 1.5 MB out of GPU l's NVLink, 4.411765 us, streaming behind the first chunk's
  // (which paid the hop's 3.7 us: NCCL charges a hop once a call, Transfer::streamed):
  //   2.4 + 3.7 + 4.411765 + 31 + 47.058824 + 4.411765 = 92.982353 us
  // (92,982,355 ps: each drain rounds up to a whole byte and a picosecond).
  INFO("total " << t.total.picoseconds() << " ps, bottleneck " << t.bottleneck_link);
  CHECK(std::abs(t.total.picoseconds() - 92'982'353) <= 3);
  // The NVLink out of GPU l ends with the last gather as the NIC's legs do, but is busy 35.3 us
  // (12 MB at 340 GB/s) against the NIC's 47.1: the NIC is named.
  CHECK(t.bottleneck_link.find("nic") != std::string::npos);
  // The flow model, with the same schedule, takes no less up to rounding and about as long.
  CheckFlowAgrees(c, *s, t, 20);

  // A large buffer stops at 32 chunks: 1 GiB is 512 chunks of 2 MiB, run as 32.
  auto large = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kCollNet, 8, 1 << 30, 4);
  REQUIRE(large.ok());
  CHECK(large->transfers.size() == 32 * (24 + 8 + 24));
}

TEST_CASE("CollNet Direct with one GPU a node sends the buffer once each way through its NIC") {
  const topology::Cluster c = testing::ClusterFromText(kTwoBySharp);
  // GPU 0 of each node: one head a node, no scatter or gather, NCCL's Tree network latency.
  REQUIRE(CheckCollNet(c, Gpus({0, 4})).ok());
  // S = 4 MB: ceil(4e6 / 524,288) = 8 chunks of 500,000 B, each a leg each way.
  auto s = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kCollNet, 2, 4'000'000, 1);
  REQUIRE(s.ok());
  CHECK(s->transfers.size() == 8 * 2);
  auto net = MakeNetworkModel(c, Fidelity::kAnalytical);
  const GroupCommTime collnet = net->GroupCollective(Gpus({0, 4}), CollectiveOp::kAllReduce,
                                                     CollectiveAlgo::kCollNet, 4'000'000);
  // No base (ppn - 1 = 0 arity), one network hop of 14 us (NCCL's Tree row: "with ppn=1
  // latencies are fully exposed"), then 4 MB through one NIC at 0.85 x 50 GB/s = 94.117647 us:
  // 108.117647 us.
  CHECK(std::abs(collnet.time.picoseconds() - 108'117'647) <= 8);
}

TEST_CASE("CollNet Direct runs only where the switches reduce, behind NVSwitch, on like nodes") {
  const topology::Cluster sharp = testing::ClusterFromText(kTwoBySharp);
  CHECK(CheckCollNet(sharp, FirstGpus(8)).ok());
  // One node, or nodes with different counts of the group's GPUs.
  const Status one = CheckCollNet(sharp, FirstGpus(4));
  REQUIRE_FALSE(one.ok());
  CHECK_THAT(one.error().message(), Catch::Contains("not 2 or more nodes with as many GPUs"));
  CHECK_FALSE(CheckCollNet(sharp, Gpus({0, 1, 4})).ok());
  // Without SHARP.
  const topology::Cluster plain = testing::ClusterFromText(kTwoByFour);
  const Status off = CheckCollNet(plain, FirstGpus(8));
  REQUIRE_FALSE(off.ok());
  CHECK_THAT(off.error().message(), Catch::Contains("cluster.fabric.sharp is false"));
  CHECK_THAT(off.error().message(), Catch::Contains("--algo"));
  // NCCL runs CollNet Direct on at most 8 GPUs a node (NCCL_MAX_DIRECT_ARITY + 1): two GB200
  // NVL72 racks, 72 GPUs a node, are refused; NVLS across them is not.
  const topology::Cluster racks = testing::ClusterFromText(
      "node_preset: 'gb200-nvl72' nodes: 2 fabric { rail_optimized {} sharp: true }");
  const Status wide = CheckCollNet(racks, FirstGpus(144));
  REQUIRE_FALSE(wide.ok());
  CHECK_THAT(wide.error().message(), Catch::Contains("72 GPUs a node (NCCL runs CollNet Direct on "
                                                     "at most 8 a node)"));
  CHECK(CheckNvls(racks, FirstGpus(144)).ok());
  CHECK(CheckCollNet(racks, Gpus({0, 1, 2, 3, 4, 5, 6, 7, 72, 73, 74, 75, 76, 77, 78, 79})).ok());
  // PCIe nodes: NCCL disables CollNet Direct without an NVSwitch (tuning.cc).
  const topology::Cluster pcie = testing::ClusterFromText(
      "node { name: 'pcie-4' gpu: 'h100-pcie' gpus: 4 pcie { switches: 2 cpus: 1 } "
      "nics { count: 2 gbit_per_s: 400 } } nodes: 2 fabric { single_switch {} sharp: true }");
  const Status no_switch = CheckCollNet(pcie, FirstGpus(8));
  REQUIRE_FALSE(no_switch.ok());
  CHECK_THAT(no_switch.error().message(), Catch::Contains("no NVSwitch"));
  // A schedule over ranks that are not whole blocks of the node's count.
  auto odd = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kCollNet, 12, 1 << 20, 8);
  REQUIRE_FALSE(odd.ok());
  CHECK_THAT(odd.error().message(), Catch::Contains("a multiple of 8, at least 16"));
  // SHARP is InfiniBand's: an Ethernet fabric that claims it is refused, naming the field.
  auto ethernet = topology::BuildCluster(testing::Parse<pb::Cluster>(
      "node_preset: 'dgx-h100' nodes: 2 fabric { rail_optimized {} ethernet: true sharp: true }"));
  REQUIRE_FALSE(ethernet.ok());
  CHECK_THAT(ethernet.error().message(), Catch::Contains("cluster.fabric.sharp"));
  CHECK_THAT(ethernet.error().message(), Catch::Contains("Ethernet"));
}

TEST_CASE("NCCL's tuner weighs NVLS and CollNet where the fabric has SHARP") {
  using A = CollectiveAlgo;
  const topology::Cluster c = testing::ClusterFromText(
      "node_preset: 'dgx-h100' nodes: 4 fabric { rail_optimized {} sharp: true }");
  std::string words;
  CHECK(TunerAllReduceAlgorithms(c, FirstGpus(32), &words) ==
        std::vector<A>{A::kRing, A::kTree, A::kNvlsTree, A::kNvls, A::kCollNet});
  CHECK(words == "ring, tree, nvlstree, nvls or collnet (NCCL's tuner: the fastest)");
  // At 1 GiB NVLS across nodes wins: its NICs carry S/8 each way at their rate, CollNet Direct's
  // at NCCL's 0.85, NVLSTree's the tree's legs.
  auto net = MakeNetworkModel(c, Fidelity::kAnalytical);
  const auto tuned32 = net->TunedGroupCollective(FirstGpus(32), CollectiveOp::kAllReduce, 1 << 30);
  CHECK(tuned32.time ==
        net->GroupCollective(FirstGpus(32), CollectiveOp::kAllReduce, A::kNvls, 1 << 30).time);
  // A data-parallel group of one GPU a node (GPU 3 of each): ring or tree, or collnet.
  CHECK(TunerAllReduceAlgorithms(c, Gpus({3, 11, 19, 27}), &words) ==
        std::vector<A>{A::kRing, A::kTree, A::kCollNet});
  CHECK(words == "ring, tree or collnet (NCCL's tuner: the fastest)");
  // That group's 1 GiB gradient all-reduce: a ring sends 2 x 3/4 GiB through each NIC, CollNet
  // 1 GiB at 0.85 of the NIC's rate: 1.5 / (1 / 0.85) = 1.275 x faster, bar latencies.
  const auto group = Gpus({3, 11, 19, 27});
  const Duration ring =
      net->GroupCollective(group, CollectiveOp::kAllReduce, A::kRing, 1 << 30).time;
  const Duration collnet =
      net->GroupCollective(group, CollectiveOp::kAllReduce, A::kCollNet, 1 << 30).time;
  const double ratio = static_cast<double>(ring.picoseconds()) / collnet.picoseconds();
  INFO("ring " << ring.picoseconds() << " ps, collnet " << collnet.picoseconds() << " ps");
  CHECK(ratio == Approx(1.275).epsilon(0.01));
  const GroupCommTime tuned = net->TunedGroupCollective(group, CollectiveOp::kAllReduce, 1 << 30);
  CHECK(tuned.time == collnet);
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE(
    "NVLS across 2 x 4 GPUs with SHARP: each NVSwitch reduces, each NIC carries S/4 each way") {
  const topology::Cluster c = testing::ClusterFromText(kTwoBySharp);
  REQUIRE(CheckNvls(c, FirstGpus(8)).ok());
  // S = 8 MB in NCCL's NVLS loops: 16 channels x 4 heads = 64 ops; the chunk falls from 128 KiB
  // to 64 KiB (S < 64 x 64 x 128 KiB) and to 32 KiB (S < 8 x 64 x 64 KiB), not to 16 KiB
  // (S >= 2 x 64 x 32 KiB): loops of 64 x 32 KiB = 2,097,152 B, so 4 chunks of 2 MB. In each node
  // GPU i sends GPU i + 1 a chunk's whole NVLS load, 2e6 x 5 / 4 / 0.85 = 2,941,176.5 ->
  // 2,941,177 B; GPU l sends its shard, 500,000 B, to GPU l of the other node.
  const uint64_t S = 8'000'000;
  auto s = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kNvls, 8, S, 4, 1, 0.85, 16);
  REQUIRE(s.ok());
  REQUIRE(s->transfers.size() == 4 * (8 + 8));
  uint64_t crossed = 0;
  for (const Transfer& t : s->transfers) {
    if (t.src / 4 == t.dst / 4) {
      CHECK(t.bytes == 2'941'177);
      CHECK(t.dst % 4 == (t.src + 1) % 4);
    } else {
      CHECK(t.bytes == 500'000);
      CHECK(t.src % 4 == t.dst % 4);
      crossed += t.bytes;
    }
  }
  CHECK(crossed == 2 * S);  // S/4 out of each of the 8 NICs
  const CollectiveTiming t = TimeCollective(c, *s);
  CHECK(t.protocol == NcclProtocol::kSimple);
  // NCCL's latency for NVLS across nodes: intraLat + interLat = 25 + 18 us.
  CHECK(t.latency == Duration::Nanoseconds(25'000 + 18'000));
  // No NVLS pipeline fill on top: the chunks are NCCL's loops already.
  CHECK(t.pipeline_fill == Duration());
  // NVLink at its rate (the NVLS share is in the bytes), NICs at 50 GB/s. Chunk 0's transfer
  // into GPU l takes its NVLink: 2,941,177 B / 400 GB/s = 7.352943 us after the 25 us hop; its leg
  // 18 us later; from then each NIC sends the 4 legs back to back, 4 x 500,000 B / 50 GB/s =
  // 40 us (each later chunk is reduced in 7.35 us, under a leg's 10):
  //   25 + 7.352943 + 18 + 40 = 90.352943 us.
  INFO("total " << t.total.picoseconds() << " ps, bottleneck " << t.bottleneck_link);
  CHECK(std::abs(t.total.picoseconds() - 90'352'943) <= 3);
  CHECK(t.bottleneck_link.find("nic") != std::string::npos);
  CheckFlowAgrees(c, *s, t, 12);
}

TEST_CASE("NVLS spans nodes only where the switches reduce, for an all-reduce, 2+ GPUs a node") {
  const topology::Cluster sharp = testing::ClusterFromText(kTwoBySharp);
  CHECK(CheckNvls(sharp, FirstGpus(8)).ok());
  CHECK(CheckNvls(sharp, Gpus({0, 1, 4, 5})).ok());
  const Status one = CheckNvls(sharp, Gpus({0, 4}));
  REQUIRE_FALSE(one.ok());
  CHECK_THAT(one.error().message(), Catch::Contains("not as 2 or more on each node alike"));
  const Status gather = CheckNvls(sharp, FirstGpus(8), CollectiveOp::kAllGather);
  REQUIRE_FALSE(gather.ok());
  CHECK_THAT(gather.error().message(), Catch::Contains("only with CollNet's own"));
  const topology::Cluster plain = testing::ClusterFromText(kTwoByFour);
  const Status off = CheckNvls(plain, FirstGpus(8));
  REQUIRE_FALSE(off.ok());
  CHECK_THAT(off.error().message(), Catch::Contains("cluster.fabric.sharp is false"));
}

}  // namespace moesim::sim
