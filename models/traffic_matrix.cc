#include "models/traffic_matrix.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace moesim::models {
namespace {

using Row = std::vector<TrafficMatrix::Cell>;

Row::const_iterator Find(const Row& row, uint32_t dst) {
  return std::lower_bound(row.begin(), row.end(), dst,
                          [](const TrafficMatrix::Cell& c, uint32_t d) { return c.dst < d; });
}

void CheckColumn(uint32_t dst, uint32_t ranks) {
  if (dst >= ranks) {
    throw std::out_of_range("TrafficMatrix: column " + std::to_string(dst) + " of " +
                            std::to_string(ranks));
  }
}

}  // namespace

uint64_t& TrafficMatrix::at(uint32_t src, uint32_t dst) {
  Row& row = rows_.at(src);
  CheckColumn(dst, ranks());
  // Rows are mostly filled in column order: appending is the common case.
  if (row.empty() || row.back().dst < dst) return row.emplace_back(Cell{dst, 0}).count;
  const auto found = row.begin() + (Find(row, dst) - row.cbegin());
  if (found->dst == dst) return found->count;
  return row.insert(found, Cell{dst, 0})->count;
}

uint64_t TrafficMatrix::at(uint32_t src, uint32_t dst) const {
  const Row& row = rows_.at(src);
  CheckColumn(dst, ranks());
  const auto found = Find(row, dst);
  return found != row.end() && found->dst == dst ? found->count : 0;
}

void TrafficMatrix::SetRow(uint32_t src, std::vector<Cell> cells) {
  for (size_t k = 0; k < cells.size(); ++k) {
    if (cells[k].dst >= ranks() || (k > 0 && cells[k - 1].dst >= cells[k].dst)) {
      throw std::invalid_argument("TrafficMatrix::SetRow: row " + std::to_string(src) +
                                  " not sorted by distinct columns below " +
                                  std::to_string(ranks()));
    }
  }
  rows_.at(src) = std::move(cells);
}

uint64_t TrafficMatrix::stored() const {
  uint64_t n = 0;
  for (const Row& row : rows_) n += row.size();
  return n;
}

TrafficMatrix TrafficMatrix::Transposed() const {
  TrafficMatrix t(ranks());
  std::vector<uint32_t> column_size(ranks(), 0);
  for (const Row& row : rows_) {
    for (const Cell& c : row) ++column_size[c.dst];
  }
  for (uint32_t j = 0; j < ranks(); ++j) t.rows_[j].reserve(column_size[j]);
  // Rows in increasing order append to each column in increasing order: sorted as required.
  for (uint32_t i = 0; i < ranks(); ++i) {
    for (const Cell& c : rows_[i]) t.rows_[c.dst].push_back(Cell{i, c.count});
  }
  return t;
}

TrafficMatrix TrafficMatrix::Scaled(uint64_t factor) const {
  TrafficMatrix s = *this;
  for (Row& row : s.rows_) {
    for (Cell& c : row) c.count *= factor;
  }
  return s;
}

uint64_t TrafficMatrix::SentOffRank(uint32_t rank) const {
  uint64_t sum = 0;
  for (const Cell& c : rows_.at(rank)) sum += c.dst == rank ? 0 : c.count;
  return sum;
}

uint64_t TrafficMatrix::ReceivedOffRank(uint32_t rank) const {
  CheckColumn(rank, ranks());
  uint64_t sum = 0;
  for (uint32_t i = 0; i < ranks(); ++i) sum += i == rank ? 0 : at(i, rank);
  return sum;
}

std::vector<uint64_t> TrafficMatrix::ReceivedOffRanks() const {
  std::vector<uint64_t> received(ranks(), 0);
  for (uint32_t i = 0; i < ranks(); ++i) {
    for (const Cell& c : rows_[i]) received[c.dst] += c.dst == i ? 0 : c.count;
  }
  return received;
}

std::vector<uint64_t> TrafficMatrix::ReceivedByRank() const {
  std::vector<uint64_t> received(ranks(), 0);
  for (const Row& row : rows_) {
    for (const Cell& c : row) received[c.dst] += c.count;
  }
  return received;
}

std::vector<uint64_t> TrafficMatrix::SentByRank() const {
  std::vector<uint64_t> sent(ranks(), 0);
  for (uint32_t i = 0; i < ranks(); ++i) {
    for (const Cell& c : rows_[i]) sent[i] += c.count;
  }
  return sent;
}

uint64_t TrafficMatrix::Total() const {
  uint64_t sum = 0;
  for (const Row& row : rows_) {
    for (const Cell& c : row) sum += c.count;
  }
  return sum;
}

uint64_t TrafficMatrix::OffDiagonal() const {
  uint64_t off = 0;
  for (uint32_t r = 0; r < ranks(); ++r) off += SentOffRank(r);
  return off;
}

bool TrafficMatrix::operator==(const TrafficMatrix& other) const {
  if (ranks() != other.ranks()) return false;
  for (uint32_t i = 0; i < ranks(); ++i) {
    // Merge the two sorted rows; a column stored on one side only must hold 0.
    const Row &a = rows_[i], &b = other.rows_[i];
    size_t x = 0, y = 0;
    while (x < a.size() || y < b.size()) {
      if (y == b.size() || (x < a.size() && a[x].dst < b[y].dst)) {
        if (a[x++].count != 0) return false;
      } else if (x == a.size() || b[y].dst < a[x].dst) {
        if (b[y++].count != 0) return false;
      } else if (a[x++].count != b[y++].count) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace moesim::models
