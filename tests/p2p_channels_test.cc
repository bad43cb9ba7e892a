// NCCL's channels for a send/recv to a rank on another node: how many a network peer gets by NCCL's
// rule (2.29 on, and 2.19-2.28), the 14 GB/s each carries, and both network models holding such
// transfers to it (CapNetPeers), worked by hand on 2 x 4 GPUs.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "models/traffic_matrix.h"
#include "proto/text_file.h"
#include "sim/network/collective_time.h"
#include "sim/network/collectives.h"
#include "sim/network/flow_model.h"
#include "sim/network/group_comm.h"
#include "sim/network/nccl_model.h"
#include "sim/network/network_model.h"
#include "test_helpers.h"
#include "topology/cluster.h"

namespace moesim::sim {
namespace {

// tests/fixtures/two_nodes_4gpu.pbtxt: 2 x 4 H100, NVLink 400 GB/s per GPU per direction, one
// 50 GB/s NIC per GPU behind its own 63 GB/s PCIe switch, every NIC on one switch, line rates;
// NCCL as `VERSION` says.
#define MOESIM_TWO_BY_FOUR(VERSION)                                                  \
  "node { name: 'test-4gpu' gpu: 'h100-sxm' gpus: 4 nvlink { bandwidth_gbps: 400 } " \
  "pcie { switches: 4 cpus: 1 } nics { count: 4 gbit_per_s: 400 } } "                \
  "nodes: 2 fabric { single_switch {} } line_rate: true " VERSION
constexpr const char* kNccl229 = MOESIM_TWO_BY_FOUR("");
constexpr const char* kNccl228 = MOESIM_TWO_BY_FOUR("nccl_version: '2.28'");
#undef MOESIM_TWO_BY_FOUR

// nccl-tests' sendrecv over the cluster's 8 GPUs: rank i sends S to rank i + 1.
Schedule SendRecv8(uint64_t bytes) {
  auto s = BuildCollective(CollectiveOp::kSendRecv, CollectiveAlgo::kDirect, 8, bytes, 4);
  REQUIRE(s.ok());
  return *s;
}

}  // namespace

TEST_CASE("NCCL's p2p channels: one per NIC a node uses, doubled, to a power of two, at most 64") {
  CHECK(NcclP2pChannels(8) == 16);   // 8-GPU, 8-NIC H100 nodes log "16 coll channels"
  CHECK(NcclP2pChannels(1) == 2);    // a pipeline group, one GPU a node
  CHECK(NcclP2pChannels(3) == 8);    // 6 up to a power of two
  CHECK(NcclP2pChannels(0) == 2);    // at least one NIC
  CHECK(NcclP2pChannels(72) == 64);  // MAXCHANNELS
}

TEST_CASE("NCCL 2.29's channels a network peer: enough for the NIC at 14 GB/s, halved by batches") {
  // A 400 Gb/s NIC, 50 GB/s: ceil(50 / 14) = 4. Then halved while 4 x ceil(ranks / 8) exceeds the
  // p2p channels (8 peers to a channel's batch).
  CHECK(NcclP2pChannelsPerNetPeer(229, 50, 16, 16) == 4);  // 4 x 2 = 8 <= 16
  CHECK(NcclP2pChannelsPerNetPeer(229, 50, 32, 16) == 4);  // 4 x 4 = 16 <= 16
  CHECK(NcclP2pChannelsPerNetPeer(229, 50, 64, 16) == 2);  // 4 x 8 = 32 > 16; 2 x 8 = 16
  // 80 ranks (10 nodes of 8 H100): 10 batches; 4 x 10, 2 x 10 > 16, so 1 (measured on NCCL
  // 2.29.2: 15.2 GB/s, one channel).
  CHECK(NcclP2pChannelsPerNetPeer(229, 50, 80, 16) == 1);
  // A pipeline group's pair, one GPU a node, 2 p2p channels: 4 x 1 > 2, so 2.
  CHECK(NcclP2pChannelsPerNetPeer(229, 50, 2, 2) == 2);
  // NCCL's GB/s as an integer: a 200 Gb/s NIC, ceil(25 / 14) = 2; 100 Gb/s, 12 GB/s: 1.
  CHECK(NcclP2pChannelsPerNetPeer(229, 25, 16, 16) == 2);
  CHECK(NcclP2pChannelsPerNetPeer(229, 12.5, 16, 16) == 1);
  // 800 Gb/s, ceil(100 / 14) = 8 channels.
  CHECK(NcclP2pChannelsPerNetPeer(229, 100, 16, 16) == 8);
}

TEST_CASE(
    "NCCL 2.19-2.28's channels a network peer: 2, halved while 2 x ranks > 4 x p2p channels") {
  // Together's B200 report on NCCL 2.28.9, 8 GPUs and 8 NICs a node (16 p2p channels): 2n and 4n
  // 34 GB/s, 8n to 64n 17.2 GB/s.
  CHECK(NcclP2pChannelsPerNetPeer(228, 50, 16, 16) == 2);   // 32 <= 64
  CHECK(NcclP2pChannelsPerNetPeer(228, 50, 32, 16) == 2);   // 64 <= 64
  CHECK(NcclP2pChannelsPerNetPeer(228, 50, 64, 16) == 1);   // 128 > 64
  CHECK(NcclP2pChannelsPerNetPeer(228, 50, 512, 16) == 1);  // at least 1
  // The NIC's rate does not enter: 800 Gb/s still 2.
  CHECK(NcclP2pChannelsPerNetPeer(219, 100, 16, 16) == 2);
  CHECK(NcclP2pChannelsPerNetPeer(228, 50, 2, 2) == 2);  // a pair: 4 <= 8
}

TEST_CASE("A sendrecv across nodes runs at NCCL's channels for a network peer, by its release") {
  const topology::Cluster c228 = testing::ClusterFromText(kNccl228);
  const topology::Cluster c229 = testing::ClusterFromText(kNccl229);
  CHECK(c228.nccl_version() == 228);
  CHECK(c229.nccl_version() == 229);
  // S = 28 MB from rank i to i + 1 over 8 ranks: 3 -> 4 and 7 -> 0 cross the network, one
  // transfer through each NIC each way. Both clusters: 8 ranks, 4 GPUs and NICs a node, 8 p2p
  // channels.
  const uint64_t S = 28'000'000;
  Schedule s228 = SendRecv8(S), s229 = SendRecv8(S);
  // NCCL 2.28: 2 channels (2 x 8 = 16 <= 4 x 8): 28 GB/s. NCCL 2.29: ceil(50 / 14) = 4 channels
  // (4 x 1 batch <= 8): 56 GB/s, more than the 50 GB/s NIC.
  CHECK(CapNetPeers(c228, s228) == 2);
  CHECK(CapNetPeers(c229, s229) == 4);
  for (const Transfer& t : s228.transfers) {
    INFO(t.src << " -> " << t.dst);
    const bool across = t.src / 4 != t.dst / 4;
    CHECK(t.rate_cap == (across ? Rate::GigaPerSecond(28) : Rate()));
  }
  const CollectiveTiming t228 = TimeCollective(c228, s228);
  const CollectiveTiming t229 = TimeCollective(c229, s229);
  // Same protocol (Simple) and latencies; the bytes: 28e6 / 28e9 = 1,000 us at the channels,
  // 28e6 / 50e9 = 560 us through the NIC. NVLink's 28e6 / 400e9 = 70 us do not bind.
  CHECK(t228.protocol == NcclProtocol::kSimple);
  CHECK(t229.protocol == NcclProtocol::kSimple);
  CHECK(t228.latency == t229.latency);
  CHECK((t228.total - t229.total).picoseconds() == 440'000'000);
  CHECK((t229.total - t229.latency).picoseconds() == 560'000'000);
  CHECK(t228.capped);
  CHECK(t228.bottleneck_link == "NCCL's channels to a network peer (28 GB/s)");
  CHECK_FALSE(t229.capped);
  CHECK(t229.bottleneck_link.find("nic") != std::string::npos);
  // The flow model holds the flows to the same 28 GB/s: within 1 % of the analytical time and no
  // faster.
  const FlowRun flow = RunFlows(c228, s228, t228.protocol, t228.efficiency);
  CHECK(flow.total.picoseconds() >= t228.total.picoseconds());
  CHECK(static_cast<double>(flow.total.picoseconds()) <= 1.01 * t228.total.picoseconds());
  // Without the cap (NCCL 2.29 on the same cluster) the flows take the NIC's 560 us.
  const FlowRun free_flow = RunFlows(c229, s229, t229.protocol, t229.efficiency);
  CHECK(free_flow.total < flow.total);
}

TEST_CASE("A pipeline pair across nodes gets 2 channels, 28 GB/s, on NCCL 2.29 too") {
  const topology::Cluster c = testing::ClusterFromText(kNccl229);
  const auto net = MakeNetworkModel(c, Fidelity::kAnalytical);
  // GPU 0 and GPU 4 (nodes 0 and 1): one NIC a node, 2 p2p channels; 4 x 1 > 2, so 2 channels.
  // Each sends S = 28 MB to the other: 1,000 us at 28 GB/s (the NIC's 50 GB/s would take 560).
  const uint64_t S = 28'000'000;
  const GroupCommTime pair =
      net->GroupCollective({0, 4}, CollectiveOp::kSendRecv, CollectiveAlgo::kDirect, S);
  const GroupCommTime local =
      net->GroupCollective({0, 1}, CollectiveOp::kSendRecv, CollectiveAlgo::kDirect, S);
  CHECK(pair.bottleneck_link == "NCCL's channels to a network peer (28 GB/s)");
  // In one node nothing crosses the network: NVLink's 70 us and no cap.
  CHECK(local.bottleneck_link.find("NCCL") == std::string::npos);
  CHECK(pair.time.picoseconds() > 1'000'000'000);
  CHECK(pair.time.picoseconds() < 1'000'000'000 + 60'000'000);  // + NCCL's latencies (tens of us)
  const auto flow = MakeNetworkModel(c, Fidelity::kFlow);
  const GroupCommTime pair_flow =
      flow->GroupCollective({0, 4}, CollectiveOp::kSendRecv, CollectiveAlgo::kDirect, S);
  CHECK(pair_flow.bottleneck_link == pair.bottleneck_link);
  CHECK(pair_flow.time >= pair.time);
  CHECK(static_cast<double>(pair_flow.time.picoseconds()) <= 1.01 * pair.time.picoseconds());
}

TEST_CASE("A MoE layer's NCCL all-to-all across nodes is held to NCCL's channels too") {
  const topology::Cluster c = testing::ClusterFromText(kNccl229);
  const auto net = MakeNetworkModel(c, Fidelity::kAnalytical);
  // An EP group of GPU 0 and GPU 4 (two nodes): each sends the other 28 MB, NCCL's grouped
  // send/recv over a communicator of 2 ranks, one GPU a node: 2 channels, 28 GB/s, 1,000 us (the
  // NIC alone: 560 us).
  models::TrafficMatrix bytes(2);
  bytes.at(0, 1) = 28'000'000;
  bytes.at(1, 0) = 28'000'000;
  const GroupCommTime t = GroupAllToAllV(*net, {0, 4}, bytes);
  CHECK(t.bottleneck_link == "NCCL's channels to a network peer (28 GB/s)");
  CHECK(t.time.picoseconds() > 1'000'000'000);
  CHECK(t.time.picoseconds() < 1'000'000'000 + 60'000'000);
}

TEST_CASE("A pairwise all-to-all across nodes: the channels lengthen its rounds, and are named") {
  const topology::Cluster c = testing::ClusterFromText(kNccl228);
  // 8 ranks, S = 8 x 28 MB: 7 rounds of 28 MB a pair (round k: rank i -> i + k), each rank's
  // send after its send of the round before. Rank 0 sends rounds 1-3 in its node (28 MB over
  // NVLink's 400 GB/s: 70 us each) and rounds 4-7 to the other node: at NCCL 2.28's 2 channels
  // (28 GB/s) 1,000 us each, where the NIC's 50 GB/s took 560. So its chain alone is at least
  // 3 x 70 + 4 x 1,000 = 4,210 us with the cap, and the cap lengthens the bound.
  const uint64_t S = 8 * 28'000'000ull;
  auto s = BuildCollective(CollectiveOp::kAllToAll, CollectiveAlgo::kPairwise, 8, S, 4);
  REQUIRE(s.ok());
  Schedule free = *s;  // the same rounds without the cap
  CHECK(CapNetPeers(c, *s) == 2);
  const CollectiveTiming capped = TimeCollective(c, *s);
  const CollectiveTiming links = TimeCollective(c, free);
  CHECK(capped.total.picoseconds() >= 4'210'000'000ll);
  CHECK(links.total.picoseconds() >= 3 * 70'000'000ll + 4 * 560'000'000ll);
  CHECK(capped.total > links.total);
  CHECK(capped.capped);
  CHECK(capped.bottleneck_link == "NCCL's channels to a network peer (28 GB/s)");
  CHECK_FALSE(links.capped);
}

TEST_CASE("Fewer NICs than GPUs: the communicator's p2p channels follow the NICs") {
  // 2 nodes of 8 H100 with 2 NICs of 400 Gb/s each: NCCL's p2p channels 2 x min(8 GPUs, 2 NICs)
  // = 4 (8 GPUs would give 16). NCCL 2.28 over 16 ranks: 2 x 16 = 32 > 4 x 4 = 16, so 1 channel
  // a network peer (with 16 p2p channels: 32 <= 64, 2). NCCL 2.29: ceil(50 / 14) = 4 channels,
  // 4 x 2 batches = 8 > 4, 2 x 2 = 4: 2 (with 16: 4).
  const char* kTwoNics =
      "node { name: 'two-nic' gpu: 'h100-sxm' gpus: 8 nvlink { bandwidth_gbps: 450 } "
      "pcie { switches: 2 cpus: 1 } nics { count: 2 gbit_per_s: 400 } } "
      "nodes: 2 fabric { single_switch {} } ";
  const topology::Cluster c228 =
      testing::ClusterFromText(std::string(kTwoNics) + "nccl_version: '2.28'");
  const topology::Cluster c229 = testing::ClusterFromText(kTwoNics);
  CHECK(NetPeerChannels(c228, 16, 8) == 1);
  CHECK(NetPeerChannels(c229, 16, 8) == 2);
  // nccl-tests' sendrecv over the 16 GPUs: 7 -> 8 crosses, at 1 channel, 14 GB/s.
  auto s = BuildCollective(CollectiveOp::kSendRecv, CollectiveAlgo::kDirect, 16, 1 << 20, 8);
  REQUIRE(s.ok());
  CHECK(CapNetPeers(c228, *s) == 1);
  CHECK(s->transfers[7].rate_cap == Rate::GigaPerSecond(14));
  CHECK(s->transfers[6].rate_cap == Rate());
}

TEST_CASE("Only NCCL's point-to-point schedules are capped") {
  const topology::Cluster c = testing::ClusterFromText(kNccl228);
  auto ring = BuildCollective(CollectiveOp::kAllReduce, CollectiveAlgo::kRing, 8, 1 << 20, 4, 4);
  REQUIRE(ring.ok());
  CHECK(CapNetPeers(c, *ring) == 0);
  for (const Transfer& t : ring->transfers) CHECK(t.rate_cap == Rate());
  auto a2a = BuildCollective(CollectiveOp::kAllToAll, CollectiveAlgo::kDirect, 8, 8 << 20, 4);
  REQUIRE(a2a.ok());
  CHECK(CapNetPeers(c, *a2a) == 2);
  // One node: nothing crosses, nothing capped.
  auto one = BuildCollective(CollectiveOp::kSendRecv, CollectiveAlgo::kDirect, 4, 1 << 20, 4);
  REQUIRE(one.ok());
  CHECK(CapNetPeers(c, *one) == 0);
}

TEST_CASE("cluster.nccl_version: major.minor, a patch allowed, 2.19 or later; errors located") {
  const auto build = [](const std::string& version) -> StatusOr<topology::Cluster> {
    pb::Cluster spec;
    auto file = TextFile::ParseString(
        "node_preset: \"dgx-h100\"\nnccl_version: \"" + version + "\"\n", "c.pbtxt", &spec);
    if (!file.ok()) return file.error();
    file->set_root_field("cluster");
    return topology::BuildCluster(spec, &*file);
  };
  auto patch = build("2.28.9");
  REQUIRE(patch.ok());
  CHECK(patch->nccl_version() == 228);
  auto later = build("3.0");
  REQUIRE(later.ok());
  CHECK(later->nccl_version() == 300);  // past 2.29: the latest rule
  auto old = build("2.18");
  REQUIRE_FALSE(old.ok());
  CHECK(old.error().message() ==
        "c.pbtxt:2:1: cluster.nccl_version = \"2.18\": is older than moesim models (NCCL 2.19's "
        "send/recv channels over the network); valid: \"2.19\" or later");
  for (const std::string bad : {"2", "2.x", "2.28.", "v2.28", "2.123", ""}) {
    INFO("\"" << bad << "\"");
    auto b = build(bad);
    if (bad.empty()) {
      CHECK(b.ok());  // absent: NCCL 2.29
      continue;
    }
    REQUIRE_FALSE(b.ok());
    CHECK(b.error().message() == "c.pbtxt:2:1: cluster.nccl_version = \"" + bad +
                                     "\": is not an NCCL release as major.minor; valid: a release "
                                     "such as \"2.28\" or \"2.28.9\"");
  }
}

}  // namespace moesim::sim
