// DeepEP's low-latency all-to-all (sim/network/alltoall_low_latency.h): a message per (token,
// expert), RDMA across nodes and NVLink within one, each NIC at least its messages over its
// message rate; on 2 nodes x 4 GPUs against hand-computed values.
#include "sim/network/alltoall_low_latency.h"

#include <catch2/catch.hpp>

#include "proto/input_file.h"
#include "sim/network/network_model.h"
#include "test_helpers.h"
#include "test_paths.h"
#include "topology/cluster.h"

namespace moesim::sim {
namespace {

// 2 nodes x 4 GPUs; NVLink 400 GB/s per GPU through one NVSwitch, one PCIe switch (63 GB/s) and
// one 50 GB/s NIC per GPU, every NIC on one switch, line rates: the hierarchical all-to-all tests'
// cluster.
const char* const kTwoNodes = "tests/fixtures/two_nodes_4gpu.pbtxt";

std::vector<uint32_t> AllGpus() { return {0, 1, 2, 3, 4, 5, 6, 7}; }

}  // namespace

TEST_CASE("Low-latency messages: a copy each, one count per expert, combine the transpose") {
  // 8 ranks with two experts each; rank 0 sends 3 copies to rank 5 and 1 to rank 1.
  models::LayerWork layer;
  layer.dispatch_tokens = models::TrafficMatrix(8);
  layer.dispatch_tokens.at(0, 5) = 3;
  layer.dispatch_tokens.at(0, 1) = 1;
  layer.expert_tokens.assign(8, std::vector<uint64_t>(2, 0));
  const LowLatencyTraffic d = LowLatencyMessages(layer, /*message_bytes=*/100, false);
  // Bytes: 3 x 100 to rank 5, 1 x 100 to rank 1; nothing else carries tokens.
  CHECK(d.bytes.at(0, 5) == 300);
  CHECK(d.bytes.at(0, 1) == 100);
  CHECK(d.bytes.OffDiagonal() == 400);
  // Messages: the copies plus one count for each of the destination's 2 experts, to every other
  // rank: rank 0 -> 5 is 3 + 2, rank 0 -> 2 is 0 + 2; 7 ranks x 7 others x 2 counts + 4 copies.
  CHECK(d.messages.at(0, 5) == 5);
  CHECK(d.messages.at(0, 2) == 2);
  CHECK(d.messages.at(3, 3) == 0);
  CHECK(d.messages.OffDiagonal() == 8 * 7 * 2 + 4);
  // Combine sends the outputs back: the transpose, with one flag per (expert, other rank).
  const LowLatencyTraffic c = LowLatencyMessages(layer, 100, true);
  CHECK(c.bytes.at(5, 0) == 300);
  CHECK(c.messages.at(5, 0) == 5);
  CHECK(c.messages.OffDiagonal() == d.messages.OffDiagonal());
}

TEST_CASE("Low-latency all-to-all: the NIC's bytes bind large tokens, its message rate small ones") {
  const auto cluster = topology::LoadClusterArgument(testing::SourcePath(kTwoNodes), "");
  REQUIRE(cluster.ok());
  const auto net = MakeNetworkModel(*cluster, Fidelity::kAnalytical);
  REQUIRE(cluster->router().Latency(0, 4) == Duration::Picoseconds(2'000'000));

  // Large: 100 messages of 7,424 B (about a DeepSeek-V3 FP8 token with its header) from GPU 0 to
  // GPU 4 on the other node. The NIC: 742,400 B / 50e9 = 14,848,000 ps, + the 2 us route:
  // 16,848,000 ps. Messages: 100 / 330e6 s = 303,031 ps (rounded up) + 2 us: far below.
  LowLatencyTraffic large{models::TrafficMatrix(8), models::TrafficMatrix(8)};
  large.bytes.at(0, 4) = 100 * 7424;
  large.messages.at(0, 4) = 100;
  const AllToAll a = LowLatencyAllToAll(*net, AllGpus(), large);
  REQUIRE(a.ranks.size() == 8);
  CHECK(a.ranks[0].time == Duration::Picoseconds(16'848'000));
  CHECK(a.ranks[0].bound == std::string("link"));
  CHECK(a.ranks[4].time == Duration::Picoseconds(16'848'000));

  // Small: 33,000 messages of 16 B. The NIC's bytes: 528,000 / 50e9 = 10,560,000 ps (+ 2 us =
  // 12.56 us); its messages: 33,000 / 330e6 s = 100 us exactly, + the 2 us route the last count
  // still crosses: 102 us. The sender posts them, the receiver takes them in: both wait.
  LowLatencyTraffic small{models::TrafficMatrix(8), models::TrafficMatrix(8)};
  small.bytes.at(0, 4) = 33'000 * 16;
  small.messages.at(0, 4) = 33'000;
  const AllToAll b = LowLatencyAllToAll(*net, AllGpus(), small);
  CHECK(b.ranks[0].time == Duration::Picoseconds(102'000'000));
  CHECK(b.ranks[0].bound == std::string("messages"));
  CHECK(b.ranks[4].time == Duration::Picoseconds(102'000'000));
  // At a tenth of the rate the posting takes ten times as long: 1,000 us + 2.
  const AllToAll slow = LowLatencyAllToAll(*net, AllGpus(), small, 33'000'000);
  CHECK(slow.ranks[0].time == Duration::Picoseconds(1'002'000'000));

  // Within a node the messages are NVLink stores: no NIC, no message rate. GPU 0 -> GPU 1, the
  // same 33,000 small messages: 528,000 B / 400e9 = 1,320,000 ps, + the 1 us NVLink route.
  LowLatencyTraffic local{models::TrafficMatrix(8), models::TrafficMatrix(8)};
  local.bytes.at(0, 1) = 33'000 * 16;
  local.messages.at(0, 1) = 33'000;
  const AllToAll l = LowLatencyAllToAll(*net, AllGpus(), local);
  CHECK(l.ranks[0].time == Duration::Picoseconds(2'320'000));
}

TEST_CASE("Low-latency all-to-all on a group: ranks are the group's GPUs") {
  const auto cluster = topology::LoadClusterArgument(testing::SourcePath(kTwoNodes), "");
  REQUIRE(cluster.ok());
  const auto net = MakeNetworkModel(*cluster, Fidelity::kFlow);
  // A group of GPUs {1, 5}: its rank 0 is GPU 1, rank 1 GPU 5 (the other node). 33,000 messages of
  // 16 B from rank 0 to 1: the flow model's 10.56 us + 2 us on the NIC, the message rate's
  // 100 us + 2 us on GPUs 1 and 5; the others idle.
  LowLatencyTraffic t{models::TrafficMatrix(2), models::TrafficMatrix(2)};
  t.bytes.at(0, 1) = 33'000 * 16;
  t.messages.at(0, 1) = 33'000;
  const AllToAll a = LowLatencyAllToAll(*net, {1, 5}, t);
  CHECK(a.ranks[1].time == Duration::Picoseconds(102'000'000));
  CHECK(a.ranks[5].time == Duration::Picoseconds(102'000'000));
  CHECK(a.ranks[0].time == Duration());
  CHECK(a.ranks[4].time == Duration());
}

TEST_CASE("A network transport's latency: once on every route across nodes, none inside one") {
  // The fixture with fabric.net_latency_ns 20,000 (EFA's, topology::Cluster::RouteLatency): the
  // MoE all-to-alls and DeepEP's kernels, timed without NCCL's model, pay it once per crossing.
  const auto read = ReadInputFile(testing::SourcePath(kTwoNodes));
  REQUIRE(read.ok());
  pb::Cluster spec = testing::Parse<pb::Cluster>(*read);
  spec.mutable_fabric()->set_net_latency_ns(20'000);
  const topology::Cluster cluster = testing::ClusterFromSpec(spec);
  const topology::Cluster* efa = &cluster;
  CHECK(efa->RouteLatency(0, 4) == Duration::Picoseconds(22'000'000));  // 2 us of links + 20 us
  CHECK(efa->RouteLatency(0, 1) == efa->router().Latency(0, 1));        // NVLink: no crossing
  // The large case above, 742,400 B from GPU 0 to GPU 4: 14,848,000 ps on the NIC + 22 us, at both
  // fidelities; and a direct MoE all-to-all of the same bytes (AllToAllV) the same.
  LowLatencyTraffic large{models::TrafficMatrix(8), models::TrafficMatrix(8)};
  large.bytes.at(0, 4) = 100 * 7424;
  large.messages.at(0, 4) = 100;
  models::TrafficMatrix tokens(8);
  tokens.at(0, 4) = 100;
  for (const Fidelity f : {Fidelity::kAnalytical, Fidelity::kFlow}) {
    INFO(ToString(f));
    const auto net = MakeNetworkModel(*efa, f);
    CHECK(LowLatencyAllToAll(*net, AllGpus(), large).ranks[0].time ==
          Duration::Picoseconds(36'848'000));
    CHECK(net->AllToAllV(tokens, Bytes{7424}).ranks[4].time == Duration::Picoseconds(36'848'000));
  }
  // Small messages: the message rate's 100 us + the 22 us route the last count crosses.
  LowLatencyTraffic small{models::TrafficMatrix(8), models::TrafficMatrix(8)};
  small.bytes.at(0, 4) = 33'000 * 16;
  small.messages.at(0, 4) = 33'000;
  const auto net = MakeNetworkModel(*efa, Fidelity::kAnalytical);
  CHECK(LowLatencyAllToAll(*net, AllGpus(), small).ranks[0].time ==
        Duration::Picoseconds(122'000'000));
}

TEST_CASE(
    "A network transport's latency on a rail fabric: once per crossing, through a fabric leg") {
  // Two DGX H100 on a rail-optimized fabric of one-node groups, so that a route across nodes
  // crosses the spines: a fabric leg, whose latency the analytical model caches per leg (the
  // fixture above takes the other branch). With and without EFA's 20 us: GPU 0 sends
  // 100 tokens of 7,168 B to GPU 8 (the other node, the same rail) and 50 to GPU 1 (NVLink). The
  // cross-node rank ends exactly 20 us later at both fidelities; nothing else changes.
  const std::string nodes =
      "node_preset: \"dgx-h100\" nodes: 2 fabric { rail_optimized { nodes_per_group: 1 } ";
  const topology::Cluster plain = testing::ClusterFromText(nodes + "}");
  const topology::Cluster efa = testing::ClusterFromText(nodes + "net_latency_ns: 20000 }");
  models::TrafficMatrix tokens(16);
  tokens.at(0, 8) = 100;
  tokens.at(0, 1) = 50;
  for (const Fidelity f : {Fidelity::kAnalytical, Fidelity::kFlow}) {
    INFO(ToString(f));
    const AllToAll a = MakeNetworkModel(plain, f)->AllToAllV(tokens, Bytes{7168});
    const AllToAll b = MakeNetworkModel(efa, f)->AllToAllV(tokens, Bytes{7168});
    REQUIRE(a.ranks[8].time > Duration());
    CHECK(b.ranks[8].time == a.ranks[8].time + Duration::Nanoseconds(20'000));
    CHECK(b.ranks[1].time == a.ranks[1].time);  // NVLink only
  }
}

}  // namespace moesim::sim
