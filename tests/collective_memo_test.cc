#include "sim/network/collective_memo.h"

#include <google/protobuf/text_format.h>

#include <catch2/catch.hpp>

#include "sim/network/group_comm.h"
#include "sim/network/network_model.h"

namespace moesim::sim {
namespace {

topology::Cluster MemoTwoNodes() {
  pb::Cluster spec;
  REQUIRE(google::protobuf::TextFormat::ParseFromString(
      "node_preset: 'dgx-h100' nodes: 2 fabric { single_switch {} }", &spec));
  auto c = topology::BuildCluster(spec);
  REQUIRE(c.ok());
  return std::move(*c);
}

}  // namespace

TEST_CASE("CollectiveMemo: each question timed once, its answer the model's, others apart") {
  const topology::Cluster c = MemoTwoNodes();
  for (Fidelity fidelity : {Fidelity::kAnalytical, Fidelity::kFlow}) {
    INFO(ToString(fidelity));
    const auto plain = MakeNetworkModel(c, fidelity);
    const auto remembered = MakeNetworkModel(c, fidelity);
    CollectiveMemo memo;
    remembered->set_memo(&memo);
    const std::vector<uint32_t> across = {0, 8}, inside = {0, 1, 2, 3};
    // A ring across the nodes and one inside a node, twice each: two answers kept, and each the
    // one the model without a memo gives.
    for (int pass = 0; pass < 2; ++pass) {
      for (const auto& gpus : {across, inside}) {
        const GroupCommTime want =
            plain->GroupCollective(gpus, CollectiveOp::kAllReduce, CollectiveAlgo::kRing, 1 << 26);
        const GroupCommTime got = remembered->GroupCollective(gpus, CollectiveOp::kAllReduce,
                                                              CollectiveAlgo::kRing, 1 << 26);
        CHECK(got.time == want.time);
        CHECK(got.bottleneck_link == want.bottleneck_link);
      }
      CHECK(memo.size() == 2);
    }
    // Another size, another op: other questions, other answers (the ring across nodes at 64 MiB
    // takes longer than at 1 MiB).
    const Duration small =
        remembered
            ->GroupCollective(across, CollectiveOp::kAllReduce, CollectiveAlgo::kRing, 1 << 20)
            .time;
    const Duration gather =
        remembered
            ->GroupCollective(across, CollectiveOp::kAllGather, CollectiveAlgo::kRing, 1 << 26)
            .time;
    CHECK(memo.size() == 4);
    CHECK(small <
          remembered
              ->GroupCollective(across, CollectiveOp::kAllReduce, CollectiveAlgo::kRing, 1 << 26)
              .time);
    CHECK(gather ==
          plain->GroupCollective(across, CollectiveOp::kAllGather, CollectiveAlgo::kRing, 1 << 26)
              .time);
    // All-to-allvs: the matrix is the question. Two matrices that differ in one cell are two.
    models::TrafficMatrix a(2), b(2);
    a.at(0, 1) = 1 << 20;
    a.at(1, 0) = 1 << 20;
    b.at(0, 1) = 1 << 20;
    b.at(1, 0) = 1 << 21;
    const Duration ta = GroupAllToAllV(*remembered, across, a).time;
    const Duration tb = GroupAllToAllV(*remembered, across, b).time;
    CHECK(memo.size() == 6);
    CHECK(ta == GroupAllToAllV(*plain, across, a).time);
    CHECK(tb == GroupAllToAllV(*plain, across, b).time);
    CHECK(ta < tb);
    CHECK(GroupAllToAllV(*remembered, across, a).time == ta);
    CHECK(memo.size() == 6);
  }
}

}  // namespace moesim::sim
