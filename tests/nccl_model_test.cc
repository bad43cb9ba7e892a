// sim/network/nccl_model.h: each NCCL protocol's share of the link, pinned through the time of a
// ring all-reduce on one DGX H100 at a size where that protocol is the fastest, by hand.
#include "sim/network/nccl_model.h"

#include <catch2/catch.hpp>
#include <string>

#include "sim/network/collective_time.h"
#include "sim/network/collectives.h"
#include "sim/network/flow_model.h"
#include "test_paths.h"
#include "topology/cluster.h"

namespace moesim::sim {
namespace {

// Ring all-reduce of `bytes` over the 8 GPUs of one node of `preset`.
CollectiveTiming RingAllReduce(uint64_t bytes, const std::string& preset = "dgx-h100") {
  auto cluster = topology::LoadClusterArgument(preset, "");
  REQUIRE(cluster.ok());
  auto schedule = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kRing, 8, bytes, 8);
  REQUIRE(schedule.ok());
  return TimeCollective(*cluster, *schedule);
}

}  // namespace

TEST_CASE("NCCL protocols: LL carries 0.5, LL128 0.92 and Simple all of the link") {
  CHECK(NcclLatencyModel::Efficiency(NcclProtocol::kLL) == 0.5);
  CHECK(NcclLatencyModel::Efficiency(NcclProtocol::kLL128) == 0.92);
  CHECK(NcclLatencyModel::Efficiency(NcclProtocol::kSimple) == 1.0);

  // A ring all-reduce of S bytes on 8 GPUs: 14 steps, each S / 8 bytes over one GPU's NVLink as
  // NCCL plans it, 18 x 20.6 = 370.8 GB/s (topology/achieved.h), rounded up per step. Latency
  // (tuning.cc, Ring): LL 6.6 + 14 x 0.6 = 15.0 us, LL128 14.0 + 14 x 1.9 = 40.6 us, Simple
  // 8.4 + 14 x 3.4 = 56.0 us. The protocol with the smallest latency + bandwidth time / efficiency
  // wins; with B the bandwidth time, LL wins below B = 28.0 us, Simple above B = 177 us.

  // 512 KiB: 65,536 B a step = 176,742.18 ps -> 176,743 ps; B = 14 x 176,743 = 2,474,402 ps.
  // LL at 0.5 would give the links' 370.8 GB/s of bus bandwidth x 0.5 = 185.4, over NCCL's
  // llMaxBw for Hopper in one node, 141.0: the bus bandwidth at full efficiency is 524,288 x 14/8
  // B over the busiest link's 14 x 65,536 B at 370.8 GB/s (rounded once: 2,474,391 ps) = 370.7999
  // GB/s, so LL runs at 141.0 / 370.7999 = 0.380259 of the link: a step
  // ceil(176,743 / 0.380259) = 464,797 ps; 15,000,000 + 14 x 464,797 = 21,507,158 ps
  // (LL128 43,289,568; Simple 58,474,402).
  const CollectiveTiming ll = RingAllReduce(512 * 1024);
  CHECK(ll.protocol == NcclProtocol::kLL);
  CHECK(ll.bandwidth == Duration::Picoseconds(2'474'402));
  CHECK(ll.efficiency == Approx(0.380259).epsilon(1e-6));
  CHECK(ll.total == Duration::Picoseconds(21'507'158));

  // 16 MiB: 2,097,152 B a step = 5,655,749.73 ps -> 5,655,750 ps; B = 79,180,500 ps.
  // LL128: each step's drain at 0.92 of the link, rounded up (collective_time.h):
  // ceil(5,655,750 / 0.92 = 6,147,554.35) = 6,147,555 ps; 40,600,000 + 14 x 6,147,555 =
  // 126,665,770 ps (LL 173,361,000; Simple 135,180,500).
  const CollectiveTiming ll128 = RingAllReduce(16 << 20);
  CHECK(ll128.protocol == NcclProtocol::kLL128);
  CHECK(ll128.bandwidth == Duration::Picoseconds(79'180'500));
  CHECK(ll128.total == Duration::Picoseconds(126'665'770));

  // 128 MiB: 16,777,216 B a step = 45,245,997.84 ps -> 45,245,998 ps; B = 633,443,972 ps.
  // Simple: 56,000,000 + 633,443,972 = 689,443,972 ps (LL128 729,126,057).
  const CollectiveTiming simple = RingAllReduce(128 << 20);
  CHECK(simple.protocol == NcclProtocol::kSimple);
  CHECK(simple.bandwidth == Duration::Picoseconds(633'443'972));
  CHECK(simple.total == Duration::Picoseconds(689'443'972));
  CHECK(simple.efficiency == 1.0);
}

TEST_CASE("NCCL's LL ceiling: llMaxBw by architecture in one node, by node count across nodes") {
  // tuning.cc llMaxBws: Volta 39.0, Ampere 87.7, Hopper 141.0, Blackwell 2 x 141.0; across nodes
  // the Intel row, 39.0 on 2 nodes and 20.4 on more.
  CHECK(NcclLlMaxBusGbps(70, 1) == 39.0);
  CHECK(NcclLlMaxBusGbps(80, 1) == 87.7);
  CHECK(NcclLlMaxBusGbps(90, 1) == 141.0);
  CHECK(NcclLlMaxBusGbps(100, 1) == 282.0);
  CHECK(NcclLlMaxBusGbps(90, 2) == 39.0);
  CHECK(NcclLlMaxBusGbps(90, 4) == 20.4);

  // DGX A100, 1 MiB (the published row C06): 131,072 B a step over 12 x 20 = 240 GB/s =
  // 546,133.3 ps -> 546,134 ps; B = 14 x 546,134 = 7,645,876 ps. The busiest link's 14 x 131,072 B
  // take 7,645,867 ps (rounded once): 1,835,008 bus bytes / 7,645,867 ps = 240.0000 GB/s. LL:
  // min(0.5, 87.7 / 240.0000) = 0.365417; a step ceil(546,134 / 0.365417) = 1,494,552 ps;
  // 15,000,000 + 14 x 1,494,552 = 35,923,728 ps, 51.08 GB/s of bus bandwidth
  // (LL128 40,600,000 + 14 x 593,624 = 48,910,736; Simple 56,000,000 + 7,645,876).
  const CollectiveTiming a100 = RingAllReduce(1 << 20, "dgx-a100");
  CHECK(a100.protocol == NcclProtocol::kLL);
  CHECK(a100.bandwidth == Duration::Picoseconds(7'645'876));
  CHECK(a100.efficiency == Approx(0.365417).epsilon(1e-6));
  CHECK(a100.total == Duration::Picoseconds(35'923'728));
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("NCCL's ring across nodes: the net overhead floor and the all-reduce plateau") {
  // tuning.cc: a ring spanning nodes pays at least getNetOverhead (1 us, x 3 for Simple) an
  // intra-node step; a Simple all-reduce's latency is x 1.4 there (x 1.9 before Ampere) once
  // bytes / (channels x ranks) >= 64, with NCCL's 64 channels at most.
  NcclLatencyModel across{};
  across.ring_across_nodes = true;
  CHECK(across.Step(StepLinkKind::kNvLink, NcclProtocol::kLL) == Duration::Nanoseconds(1'000));
  CHECK(across.Step(StepLinkKind::kNvLink, NcclProtocol::kLL128) == Duration::Nanoseconds(1'900));
  CHECK(across.Step(StepLinkKind::kNvLink, NcclProtocol::kSimple) == Duration::Nanoseconds(3'400));
  CHECK(across.Step(StepLinkKind::kPcie, NcclProtocol::kSimple) == Duration::Nanoseconds(5'700));
  CHECK(across.Step(StepLinkKind::kNetwork, NcclProtocol::kLL) == Duration::Nanoseconds(2'700));
  CHECK(NcclRingPlateau(90, 1, 8, 1 << 30) == 1.0);
  CHECK(NcclRingPlateau(90, 2, 16, 64 * 64 * 16 - 1) == 1.0);
  CHECK(NcclRingPlateau(90, 2, 16, 64 * 64 * 16) == 1.4);
  CHECK(NcclRingPlateau(70, 2, 16, 1 << 30) == 1.9);
  across.ring_plateau = 1.4;
  across.net_latency = Duration::Nanoseconds(20'000);
  // Simple: 8.4 x 1.4 = 11.76 us; a network step (14 + 2 x 20) x 1.4 = 75.6 us; LL unscaled.
  CHECK(across.Base(NcclProtocol::kSimple) == Duration::Nanoseconds(11'760));
  CHECK(across.Step(StepLinkKind::kNetwork, NcclProtocol::kSimple) ==
        Duration::Nanoseconds(75'600));
  CHECK(across.Step(StepLinkKind::kNetwork, NcclProtocol::kLL) == Duration::Nanoseconds(22'700));
}

TEST_CASE("A ring across nodes pays a network latency where a chunk crosses, not every step") {
  // tests/fixtures/two_nodes_4gpu.pbtxt: 2 x 4 H100, no transport latency of its own. An 8-byte
  // all-reduce on one ring 0 -> 1 -> ... -> 7 -> 0: 14 steps of 1 B, hops 3 -> 4 and 7 -> 0 cross
  // nodes. LL: base 6.6 us; an NVLink step 0.6 us raised to the net overhead, 1.0 us; a network
  // step 2.7 us. A step's send waits for the chunk of the step before to arrive from the previous
  // rank and its own send before to have left, so the longest chain runs 14 consecutive hops of the
  // ring: one lap (2 x 2.7 + 6 x 1.0 = 11.4 us) and the 6 hops 3 .. 8 holding both crossings
  // (2 x 2.7 + 4 x 1.0 = 9.4 us): 6.6 + 11.4 + 9.4 = 27.4 us, plus the bytes' picoseconds.
  // (Before, every step of GPU 3 waited for its own send to arrive: 6.6 + 14 x 2.7 = 44.4 us.
  // NCCL's tuner: 6.6 + 12 x 1.0 + 2 x 2.7 = 24.0 us.)
  auto c =
      topology::LoadClusterArgument(testing::SourcePath("tests/fixtures/two_nodes_4gpu.pbtxt"), "");
  REQUIRE(c.ok());
  auto ring = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kRing, 8, 8, 4, 1);
  REQUIRE(ring.ok());
  const CollectiveTiming t = TimeCollective(*c, *ring);
  CHECK(t.protocol == NcclProtocol::kLL);
  CHECK(t.latency == Duration::Nanoseconds(27'400));
  CHECK(t.total - t.latency < Duration::Nanoseconds(1));
  // The flow model runs the same chains: as long, up to a picosecond a transfer.
  const FlowRun flow = RunFlows(*c, *ring, t.protocol);
  CHECK(flow.total >= t.total - Duration::Picoseconds(14));
  CHECK(flow.total <= t.total + Duration::Nanoseconds(1));
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("NCCL's tree correction: a tree all-reduce's bandwidth at medium sizes, by protocol") {
  // tuning.cc treeCorrectionFactor[protocol][log2(bytes / 64)]: 1 MiB is 2^14 units of 64 B,
  // column 14: LL 0.5, LL128 0.6, Simple 0.5. 256 MiB: column 22, the tree's last (Simple 0.9);
  // 512 MiB: past it (1), but NVLS_TREE reads column 23 on Blackwell (0.9), never on Hopper.
  // Under 64 B, log2i(0) < 0: none.
  CHECK(NcclTreeCorrection(NcclProtocol::kLL, 1 << 20) == 0.5);
  CHECK(NcclTreeCorrection(NcclProtocol::kLL128, 1 << 20) == 0.6);
  CHECK(NcclTreeCorrection(NcclProtocol::kSimple, 1 << 20) == 0.5);
  CHECK(NcclTreeCorrection(NcclProtocol::kSimple, uint64_t{1} << 28) == 0.9);
  CHECK(NcclTreeCorrection(NcclProtocol::kSimple, uint64_t{1} << 29) == 1.0);
  CHECK(NcclTreeCorrection(NcclProtocol::kSimple, uint64_t{1} << 29, true, 100) == 0.9);
  CHECK(NcclTreeCorrection(NcclProtocol::kSimple, uint64_t{1} << 28, true, 90) == 1.0);
  CHECK(NcclTreeCorrection(NcclProtocol::kLL, 64) == 1.0);
  CHECK(NcclTreeCorrection(NcclProtocol::kSimple, 8) == 1.0);

  // A tree all-reduce of 16 MiB on 2 x 4 GPUs (tests/fixtures/two_nodes_4gpu.pbtxt): 2^18 units,
  // column 18, LL128 0.9 and Simple 0.7, on top of the protocol's share and the tree's 0.92.
  auto c =
      topology::LoadClusterArgument(testing::SourcePath("tests/fixtures/two_nodes_4gpu.pbtxt"), "");
  REQUIRE(c.ok());
  auto tree = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kTree, 8, 16 << 20, 4, 4);
  REQUIRE(tree.ok());
  const CollectiveTiming t = TimeCollective(*c, *tree);
  REQUIRE(t.protocol != NcclProtocol::kLL);  // LL's ceiling would set its share otherwise
  CHECK(t.efficiency == Approx(NcclLatencyModel::Efficiency(t.protocol) * 0.92 *
                               (t.protocol == NcclProtocol::kSimple ? 0.7 : 0.9)));

  // NVLSTree (Simple only) at 16 MiB on two 8-GPU nodes: column 18, 0.7, on Blackwell (B200);
  // none on Hopper (H100), where NCCL applies the correction to NVLS_TREE only from SM100.
  for (const auto& [file, expected] :
       {std::pair{"scenarios/clusters/hgx-b200-ndr-rail-64.pbtxt", 0.7},
        std::pair{"scenarios/clusters/dgx-h100-fat-tree-2to1.pbtxt", 1.0}}) {
    INFO(file);
    auto cluster = topology::LoadClusterArgument(testing::SourcePath(file), "");
    REQUIRE(cluster.ok());
    auto nvlstree = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kNvlsTree, 16,
                                    16 << 20, 8, 8, NvlsEfficiency(cluster->gpu_spec().sm));
    REQUIRE(nvlstree.ok());
    const CollectiveTiming n = TimeCollective(*cluster, *nvlstree);
    CHECK(n.protocol == NcclProtocol::kSimple);
    CHECK(n.efficiency == Approx(expected));
  }
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("NCCL's NVLS channels and chunks, as transport/nvls.cc and enqueue.cc set them") {
  // Channels: 16 on Hopper; Blackwell 24 in one node, 32 across nodes.
  CHECK(NcclNvlsChannels(90, 1) == 16);
  CHECK(NcclNvlsChannels(90, 4) == 16);
  CHECK(NcclNvlsChannels(100, 1) == 24);
  CHECK(NcclNvlsChannels(100, 2) == 32);
  // NVLS in one node, 128 ops (16 channels x 8 GPUs), from 128 KiB: 1 GiB is not under
  // 64 x 128 x 128 KiB = 1 GiB, so it keeps 128 KiB; 128 MiB is (-> 64 KiB) but not under
  // 8 x 128 x 64 KiB = 64 MiB; 16 MiB is (-> 32 KiB) but not under 2 x 128 x 32 KiB = 8 MiB;
  // 1 MiB goes on to 16 KiB.
  const uint64_t KiB = 1024, MiB = KiB * KiB;
  CHECK(NcclNvlsChunk(1024 * MiB, 128) == 128 * KiB);
  CHECK(NcclNvlsChunk(128 * MiB, 128) == 64 * KiB);
  CHECK(NcclNvlsChunk(16 * MiB, 128) == 32 * KiB);
  CHECK(NcclNvlsChunk(MiB, 128) == 16 * KiB);
  // NVLS_TREE, 128 ops: 128 KiB on 2 nodes (64 KiB from 4); 64 KiB under 4 x 128 x 128 KiB =
  // 64 MiB; 32 KiB under 128 x 64 KiB = 8 MiB.
  CHECK(NcclNvlsTreeChunk(128 * MiB, 128, 2) == 128 * KiB);
  CHECK(NcclNvlsTreeChunk(16 * MiB, 128, 2) == 64 * KiB);
  CHECK(NcclNvlsTreeChunk(4 * MiB, 128, 2) == 32 * KiB);
  CHECK(NcclNvlsTreeChunk(1024 * MiB, 128, 4) == 64 * KiB);
}

}  // namespace moesim::sim
