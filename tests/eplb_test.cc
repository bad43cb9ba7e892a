#include "models/eplb.h"

#include <algorithm>
#include <catch2/catch.hpp>

namespace moesim::models {

using Row = std::vector<uint32_t>;

TEST_CASE("EPLB reproduces the placement printed in DeepSeek's EPLB README") {
  // github.com/deepseek-ai/EPLB README: 2 layers of 12 experts, 16 replicas, 4 groups, 2 nodes,
  // 8 GPUs; 4 % 2 == 0, so the hierarchical policy. The README prints
  //   tensor([[ 5,  6,  5,  7,  8,  4,  3,  4, 10,  9, 10,  2,  0,  1, 11,  1],
  //           [ 7, 10,  6,  8,  6, 11,  8,  9,  2,  4,  5,  1,  5,  0,  3,  1]])
  const LoadMatrix weight = {{90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86},
                             {20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27}};
  auto r = RebalanceExperts(weight, 16, 4, 2, 8);
  REQUIRE(r.ok());
  CHECK(r->hierarchical);
  CHECK(r->phy2log[0] == Row{5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1});
  CHECK(r->phy2log[1] == Row{7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1});
  // Layer 0 replicates experts 5, 4 (node 0: slots 0-7) and 10, 1 (node 1): logcnt counts the
  // slots of each expert in the row above.
  CHECK(r->logcnt[0] == Row{1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1});
  // log2phy lists each expert's slots (by replica rank; sorted here): expert 5 is in slots 0 and
  // 2, expert 1 in 13 and 15, expert 11 in 14 only.
  auto Sorted = [](Row row) {
    std::sort(row.begin(), row.end());
    return row;
  };
  CHECK(Sorted(r->log2phy[0][5]) == Row{0, 2});
  CHECK(Sorted(r->log2phy[0][1]) == Row{13, 15});
  CHECK(r->log2phy[0][11] == Row{14});
  // Hierarchical: every replica of an expert stays on one node (slots 0-7 node 0, 8-15 node 1).
  for (uint32_t l = 0; l < 2; ++l) {
    for (const Row& slots : r->log2phy[l]) {
      for (uint32_t s : slots) CHECK(s / 8 == slots.front() / 8);
    }
  }
}

TEST_CASE("balanced_packing puts the heaviest item first into the lightest pack with room") {
  // Items 7 (1), 5 (3), 4 (0), 1 (2) into 2 packs of 2:
  //   7 -> pack 0 {7}; 5 -> pack 1 {5}; 4 -> pack 1 (5 < 7) {5, 4}; 1 -> pack 0 (pack 1 full).
  const Packing p = BalancedPacking({{4, 7, 1, 5}}, 2);
  CHECK(p.pack_index[0] == Row{1, 0, 0, 1});
  CHECK(p.rank_in_pack[0] == Row{1, 0, 1, 0});
  // One item per pack: the reference's shortcut, item i in pack i.
  CHECK(BalancedPacking({{1, 9, 5}}, 3).pack_index[0] == Row{0, 1, 2});
}

TEST_CASE("replicate_experts replicates the highest load per replica and the first of ties") {
  // Loads 6, 3, 2 to 5 replicas: 6/1 is highest -> expert 0 (6/2 = 3); then 3 (expert 0) ties 3
  // (expert 1): the first maximum, expert 0, gets its third replica.
  const Replication r = ReplicateExperts({{6, 3, 2}}, 5);
  CHECK(r.phy2log[0] == Row{0, 1, 2, 0, 0});
  CHECK(r.rank[0] == Row{0, 0, 0, 1, 2});
  CHECK(r.logcnt[0] == Row{3, 1, 1});
}

TEST_CASE("EPLB falls back to the global policy when the nodes do not divide the groups") {
  // 1 group on 2 nodes: global, i.e. the hierarchical steps with 1 group and 1 node.
  // Loads 10, 1, 6, 3; 6 replicas on 2 GPUs (3 each).
  // Replicate: 10 -> expert 0 (now 5 each); then 6 (expert 2) -> 3 each. Replicas p0..p5 =
  //   experts 0, 1, 2, 3, 0, 2 with loads 5, 1, 3, 3, 5, 3.
  // Pack by load, heaviest first, ties by index: p0 -> GPU 0, p4 -> GPU 1, p2 -> GPU 0 (tie),
  //   p3 -> GPU 1, p5 -> GPU 0 (tie), p1 -> GPU 1 (GPU 0 full): GPU 0 = p0 p2 p5, GPU 1 = p4 p3 p1.
  auto r = RebalanceExperts({{10, 1, 6, 3}}, 6, 1, 2, 2);
  REQUIRE(r.ok());
  CHECK_FALSE(r->hierarchical);
  CHECK(r->phy2log[0] == Row{0, 2, 2, 0, 3, 1});  // GPU 0 carries 5+3+3 = 11, GPU 1 5+3+1 = 9
  CHECK(r->logcnt[0] == Row{2, 1, 2, 1});
  CHECK(r->log2phy[0][0] == Row{0, 3});
  CHECK(r->log2phy[0][2] == Row{1, 2});  // both replicas of expert 2 on GPU 0, as EPLB may do
}

TEST_CASE("EPLB refuses sizes its reference asserts against") {
  const LoadMatrix weight = {{1, 2, 3, 4}};
  auto replicas = RebalanceExperts(weight, 6, 1, 1, 4);
  REQUIRE_FALSE(replicas.ok());
  CHECK_THAT(replicas.error().message(),
             Catch::StartsWith("EPLB num_replicas = 6: fewer than the 4 experts or not a multiple "
                               "of the 4 GPUs"));
  auto nodes = RebalanceExperts(weight, 8, 2, 3, 4);
  REQUIRE_FALSE(nodes.ok());
  CHECK_THAT(nodes.error().message(), Catch::Contains("does not divide the 4 GPUs"));
  auto groups = RebalanceExperts(weight, 8, 3, 1, 4);
  REQUIRE_FALSE(groups.ok());
  CHECK_THAT(groups.error().message(), Catch::Contains("does not divide the 4 experts"));
}

}  // namespace moesim::models
