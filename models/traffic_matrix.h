// A square matrix of counts (tokens or bytes) between ranks, stored sparsely: row = source rank,
// column = destination rank. In MoE dispatch a rank sends only to the ranks of its EP group, so at
// 16,384 GPUs and EP 256 a row holds at most 256 cells instead of 16,384; memory and the work of
// every accessor below scale with the cells stored, not with ranks².
//
//   TrafficMatrix m(4);
//   ++m.at(0, 1);                                    // cells absent until first written
//   m.at(2, 3) = 7;
//   for (const TrafficMatrix::Cell& c : m.row(2)) {} // {dst 3, count 7}, in column order
//   m.at(1, 0);                                      // 0 (a const read of an absent cell)
//
// Invariants: each row's stored cells are sorted by column, one cell per column. A stored cell may
// hold 0 (written as 0); every accessor treats it as absent, and == compares values, not storage.
// The mutable at() may insert a cell into its row, which invalidates references into that row
// (like std::vector::insert); read-only use is safe from several threads.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace moesim::models {

class TrafficMatrix {
 public:
  struct Cell {
    uint32_t dst = 0;
    uint64_t count = 0;
  };

  TrafficMatrix() = default;
  explicit TrafficMatrix(uint32_t ranks) : rows_(ranks) {}

  uint32_t ranks() const { return static_cast<uint32_t>(rows_.size()); }
  // Throws std::out_of_range outside ranks() x ranks(), as a dense matrix's at() would.
  uint64_t& at(uint32_t src, uint32_t dst);
  uint64_t at(uint32_t src, uint32_t dst) const;

  // The stored cells of row `src`, sorted by destination; may include zeros (see above).
  std::span<const Cell> row(uint32_t src) const { return rows_.at(src); }
  // Replaces row `src` with `cells`, which must be sorted by destination, one per destination,
  // each below ranks() (checked: std::invalid_argument otherwise). The fast way to fill a matrix.
  void SetRow(uint32_t src, std::vector<Cell> cells);
  // Cells stored in all rows (an upper bound on the non-zero ones).
  uint64_t stored() const;

  TrafficMatrix Transposed() const;
  // Every cell multiplied by `factor` (tokens x bytes per token).
  TrafficMatrix Scaled(uint64_t factor) const;
  // What `rank` sends to other ranks (its row without the diagonal).
  uint64_t SentOffRank(uint32_t rank) const;
  // What `rank` receives from other ranks (its column without the diagonal). Searches every row:
  // for all ranks at once use ReceivedOffRanks().
  uint64_t ReceivedOffRank(uint32_t rank) const;
  // ReceivedOffRank of every rank, in one pass over the cells.
  std::vector<uint64_t> ReceivedOffRanks() const;
  // Every rank's column and row, the diagonal included (what the all-to-all kernels' benchmarks
  // count: a GPU's received tokens, its own among them; a sender's tokens per node, its own node
  // among them).
  std::vector<uint64_t> ReceivedByRank() const;
  std::vector<uint64_t> SentByRank() const;
  // Everything that leaves its rank: the sum of the off-diagonal cells.
  uint64_t OffDiagonal() const;
  uint64_t Total() const;

  // Equal ranks and equal values in every cell (stored zeros equal absent cells).
  bool operator==(const TrafficMatrix& other) const;

 private:
  std::vector<std::vector<Cell>> rows_;
};

}  // namespace moesim::models
