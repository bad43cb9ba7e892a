// backend/kernels/rank_layout.h: the layout of an expert-parallel exchange, checked without any
// communication: every rank's layout is built in one process, the all-to-all(v) is played by
// concatenating blocks, and a std::map of (source rank, slot) per expert is the oracle. Rows are
// stamped with (source rank, slot), as DeepEP's tests do, so a misplaced row names itself.
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <vector>

#include "backend/kernels/rank_layout.h"

namespace moesim::backend {
namespace {

struct Row {
  uint32_t rank = 0, slot = 0;
  bool operator==(const Row&) const = default;
};

TEST_CASE("rank layout: a worked example of 2 ranks with 2 experts each") {
  // Rank 0's four slots choose buckets 3, 0, 2, 0 (bucket = rank * 2 + local expert).
  const std::vector<int32_t> buckets = {3, 0, 2, 0};
  const SendLayout send = BuildSendLayout(buckets, 2, 2);
  // Counts per bucket {2, 0, 1, 1}; rank 0 keeps 2 rows, sends 2 to rank 1.
  CHECK(send.permutation.bucket_counts == std::vector<uint64_t>{2, 0, 1, 1});
  CHECK(send.peer_rows == std::vector<uint64_t>{2, 2});
  // Send order: bucket 0 (slots 1, 3), bucket 2 (slot 2), bucket 3 (slot 0).
  CHECK(send.permutation.slot_of_row == std::vector<uint32_t>{1, 3, 2, 0});
  CHECK(send.permutation.row_of_slot == std::vector<uint32_t>{3, 0, 2, 1});

  // Rank 1 receives {from rank 0: expert 0 x1, expert 1 x1}, {from itself: expert 0 x2}.
  const std::vector<uint64_t> counts = {1, 1, 2, 0};
  const ReceiveLayout recv = BuildReceiveLayout(counts, 2, 2);
  CHECK(recv.peer_rows == std::vector<uint64_t>{2, 2});
  CHECK(recv.expert_rows == std::vector<uint64_t>{3, 1});
  CHECK(recv.expert_offsets == std::vector<uint64_t>{0, 3, 4});
  CHECK(recv.rows == 4);
  // Source-major rows: (0,e0) at 0, (0,e1) at 1, (1,e0) at 2..3. Expert-major: e0 = rank 0's
  // row then rank 1's two (rows 0..2), e1 = rank 0's row (row 3).
  const std::vector<RowBlock> blocks = RegroupBlocks(recv);
  REQUIRE(blocks.size() == 3);
  CHECK((blocks[0].source == 0 && blocks[0].expert == 0 && blocks[0].source_major == 0 &&
         blocks[0].expert_major == 0 && blocks[0].rows == 1));
  CHECK((blocks[1].source == 0 && blocks[1].expert == 1 && blocks[1].source_major == 1 &&
         blocks[1].expert_major == 3 && blocks[1].rows == 1));
  CHECK((blocks[2].source == 1 && blocks[2].expert == 0 && blocks[2].source_major == 2 &&
         blocks[2].expert_major == 1 && blocks[2].rows == 2));
}

TEST_CASE("rank layout: a bucket out of range gives an empty layout, not a read out of bounds") {
  const std::vector<int32_t> buckets = {0, 4};  // 2 ranks x 2 experts: 4 is out of range
  const SendLayout send = BuildSendLayout(buckets, 2, 2);
  CHECK(send.permutation.row_of_slot.empty());
  CHECK(send.peer_rows == std::vector<uint64_t>{0, 0});
}

// The whole dispatch and combine of `world` ranks with `local` experts each, played in one
// process on random routing (some buckets empty, some ranks sending nothing).
void PlayExchange(uint32_t world, uint32_t local, uint32_t max_slots, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<SendLayout> send(world);
  std::vector<std::vector<int32_t>> buckets(world);
  // Oracle: rows each (destination, expert) must receive, source-major then slot order.
  std::map<std::pair<uint32_t, uint32_t>, std::vector<Row>> want;
  for (uint32_t r = 0; r < world; ++r) {
    const uint32_t slots = std::uniform_int_distribution<uint32_t>(0, max_slots)(gen);
    // Skewed: half the slots go to bucket 0, so some buckets stay empty.
    std::uniform_int_distribution<int32_t> any(0, static_cast<int32_t>(world * local) - 1);
    for (uint32_t s = 0; s < slots; ++s) buckets[r].push_back(gen() % 2 == 0 ? 0 : any(gen));
    send[r] = BuildSendLayout(buckets[r], world, local);
  }
  for (uint32_t src = 0; src < world; ++src) {
    for (uint32_t s = 0; s < buckets[src].size(); ++s) {
      const uint32_t b = static_cast<uint32_t>(buckets[src][s]);
      want[{b / local, b % local}].push_back(Row{src, s});
    }
  }

  // Send buffers: rank r's slots in send order.
  std::vector<std::vector<Row>> send_rows(world);
  for (uint32_t r = 0; r < world; ++r) {
    for (uint32_t slot : send[r].permutation.slot_of_row) send_rows[r].push_back(Row{r, slot});
  }
  // Notify and dispatch, as MPI_Alltoall(v) would deliver them: block i on rank d came from i.
  std::vector<ReceiveLayout> recv(world);
  std::vector<std::vector<Row>> expert_in(world);
  for (uint32_t d = 0; d < world; ++d) {
    std::vector<uint64_t> counts;
    std::vector<Row> received;
    for (uint32_t src = 0; src < world; ++src) {
      const std::vector<uint64_t>& c = send[src].permutation.bucket_counts;
      counts.insert(counts.end(), c.begin() + d * local, c.begin() + (d + 1) * local);
      uint64_t from = 0;
      for (uint32_t j = 0; j < d; ++j) from += send[src].peer_rows[j];
      received.insert(received.end(), send_rows[src].begin() + static_cast<int64_t>(from),
                      send_rows[src].begin() + static_cast<int64_t>(from + send[src].peer_rows[d]));
    }
    recv[d] = BuildReceiveLayout(counts, world, local);
    REQUIRE(recv[d].rows == received.size());
    // Regroup expert-major and compare each expert's rows with the oracle.
    expert_in[d].resize(received.size());
    for (const RowBlock& b : RegroupBlocks(recv[d])) {
      for (uint64_t i = 0; i < b.rows; ++i)
        expert_in[d][b.expert_major + i] = received[b.source_major + i];
    }
    for (uint32_t e = 0; e < local; ++e) {
      const std::vector<Row> got(
          expert_in[d].begin() + static_cast<int64_t>(recv[d].expert_offsets[e]),
          expert_in[d].begin() + static_cast<int64_t>(recv[d].expert_offsets[e + 1]));
      INFO("rank " << d << " expert " << e);
      CHECK(got == want[{d, e}]);
    }
  }

  // Combine: outputs (here the rows themselves) back source-major, the transposed exchange, and
  // each slot finds its own row through row_of_slot.
  std::vector<std::vector<Row>> back_send(world);
  for (uint32_t d = 0; d < world; ++d) {
    back_send[d].resize(expert_in[d].size());
    for (const RowBlock& b : RegroupBlocks(recv[d])) {
      for (uint64_t i = 0; i < b.rows; ++i)
        back_send[d][b.source_major + i] = expert_in[d][b.expert_major + i];
    }
  }
  for (uint32_t r = 0; r < world; ++r) {
    std::vector<Row> back;
    for (uint32_t d = 0; d < world; ++d) {
      uint64_t from = 0;
      for (uint32_t j = 0; j < r; ++j) from += recv[d].peer_rows[j];
      back.insert(back.end(), back_send[d].begin() + static_cast<int64_t>(from),
                  back_send[d].begin() + static_cast<int64_t>(from + recv[d].peer_rows[r]));
    }
    REQUIRE(back.size() == buckets[r].size());
    for (uint32_t s = 0; s < buckets[r].size(); ++s) {
      INFO("rank " << r << " slot " << s);
      CHECK(back[send[r].permutation.row_of_slot[s]] == Row{r, s});
    }
  }
}

TEST_CASE("rank layout: every row reaches its expert and comes back to its slot") {
  // world x local experts, up to max_slots slots per rank, over a few seeds.
  PlayExchange(1, 8, 64, 1);  // one GPU: everything stays
  PlayExchange(4, 2, 16, 2);  // the seed example's shape
  PlayExchange(8, 1, 40, 3);
  PlayExchange(3, 5, 100, 4);
  PlayExchange(8, 4, 0, 5);  // no tokens anywhere
}

}  // namespace
}  // namespace moesim::backend
