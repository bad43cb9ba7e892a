#include "sim/group_comm.h"

#include <google/protobuf/text_format.h>

#include <catch2/catch.hpp>

#include "sim/collective_time.h"

namespace moesim::sim {
namespace {

topology::Cluster FourNodes() {
  pb::Cluster spec;
  REQUIRE(google::protobuf::TextFormat::ParseFromString(
      "node_preset: 'dgx-h100' nodes: 4 fabric { rail_optimized { nodes_per_group: 4 } }", &spec));
  auto c = topology::BuildCluster(spec);
  REQUIRE(c.ok());
  return std::move(*c);
}

// The full schedule of collectives.h, its ranks mapped onto `gpus`, timed analytically.
Duration Full(const topology::Cluster& c, const std::vector<uint32_t>& gpus, CollectiveOp op,
              uint64_t size) {
  auto s = BuildCollective(op, CollectiveAlgo::kRing, static_cast<uint32_t>(gpus.size()), size,
                           c.gpus_per_node());
  REQUIRE(s.ok());
  for (Transfer& t : s->transfers) {
    t.src = gpus[t.src];
    t.dst = gpus[t.dst];
  }
  for (auto& [a, b] : s->latency_chain) {
    a = gpus[a];
    b = gpus[b];
  }
  return TimeCollective(c, *s).total;
}

}  // namespace

TEST_CASE("GroupCollective: a ring timed from one step equals the full schedule") {
  const topology::Cluster c = FourNodes();
  // A DP group across the nodes (one GPU per node, same rail) and a TP group inside node 1.
  for (const std::vector<uint32_t>& gpus :
       {std::vector<uint32_t>{0, 8, 16, 24}, std::vector<uint32_t>{8, 9, 10, 11, 12, 13, 14, 15},
        std::vector<uint32_t>{3, 4, 27}}) {
    for (CollectiveOp op :
         {CollectiveOp::kAllReduce, CollectiveOp::kAllGather, CollectiveOp::kReduceScatter}) {
      for (uint64_t size : {uint64_t{4096}, uint64_t{1} << 30}) {
        INFO("op " << ToString(op) << " size " << size << " group of " << gpus.size());
        CHECK(
            GroupCollective(c, gpus, op, CollectiveAlgo::kRing, size, Fidelity::kAnalytical).time ==
            Full(c, gpus, op, size));
      }
    }
  }
}

TEST_CASE("GroupCollective: one GPU or no bytes cost nothing") {
  const topology::Cluster c = FourNodes();
  CHECK(GroupCollective(c, {5}, CollectiveOp::kAllReduce, CollectiveAlgo::kRing, 1 << 20,
                        Fidelity::kAnalytical)
            .time == Duration());
  CHECK(GroupCollective(c, {0, 8}, CollectiveOp::kAllReduce, CollectiveAlgo::kRing, 0,
                        Fidelity::kFlow)
            .time == Duration());
}

TEST_CASE("GroupAllToAllV: traffic between two nodes crosses the network") {
  const topology::Cluster c = FourNodes();
  models::TrafficMatrix bytes(2);
  bytes.at(0, 1) = bytes.at(1, 0) = 1 << 20;
  const Duration inside = GroupAllToAllV(c, {0, 1}, bytes, Fidelity::kAnalytical).time;
  const Duration across = GroupAllToAllV(c, {0, 8}, bytes, Fidelity::kAnalytical).time;
  // 1 MiB over NVLink (450 GB/s per direction) takes less than over a 400 Gb/s NIC (50 GB/s).
  CHECK(inside < across);
  CHECK(GroupAllToAllV(c, {0, 8}, bytes, Fidelity::kFlow).time >=
        across - Duration::Nanoseconds(1));
}

}  // namespace moesim::sim
