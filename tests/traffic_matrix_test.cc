#include "models/traffic_matrix.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <stdexcept>
#include <vector>

namespace moesim::models {
namespace {

// The oracle: a plain dense n x n array, row-major.
struct Dense {
  uint32_t n;
  std::vector<uint64_t> cells;
  uint64_t at(uint32_t i, uint32_t j) const { return cells[uint64_t{i} * n + j]; }
};

// Random counts with about `fill` of the cells non-zero, written into both the sparse matrix
// (through the mutable at(), in a shuffled order so that rows grow by insertion, and sometimes an
// explicit 0) and the dense oracle.
std::pair<TrafficMatrix, Dense> Random(uint32_t n, double fill, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0, 1);
  std::uniform_int_distribution<uint64_t> count(1, 1000);
  Dense dense{n, std::vector<uint64_t>(uint64_t{n} * n, 0)};
  std::vector<std::pair<uint32_t, uint32_t>> order;
  for (uint32_t i = 0; i < n; ++i) {
    for (uint32_t j = 0; j < n; ++j) order.emplace_back(i, j);
  }
  std::shuffle(order.begin(), order.end(), rng);
  TrafficMatrix sparse(n);
  for (const auto& [i, j] : order) {
    const double u = unit(rng);
    if (u < fill) {
      const uint64_t c = count(rng);
      dense.cells[uint64_t{i} * n + j] += c;
      sparse.at(i, j) += c;
    } else if (u < fill + 0.05) {
      sparse.at(i, j) = 0;  // stored, but still zero
    }
  }
  return {std::move(sparse), std::move(dense)};
}

void CheckEqual(const TrafficMatrix& m, const Dense& d) {
  REQUIRE(m.ranks() == d.n);
  const TrafficMatrix& c = m;
  for (uint32_t i = 0; i < d.n; ++i) {
    uint32_t previous = 0;
    bool first = true;
    uint64_t row_sum = 0;
    for (const TrafficMatrix::Cell& cell : c.row(i)) {
      // Sorted by column, one cell per column, each the oracle's value.
      CHECK((first || cell.dst > previous));
      CHECK(cell.count == d.at(i, cell.dst));
      previous = cell.dst;
      first = false;
      row_sum += cell.count;
    }
    uint64_t dense_row = 0;
    for (uint32_t j = 0; j < d.n; ++j) {
      CHECK(c.at(i, j) == d.at(i, j));
      dense_row += d.at(i, j);
    }
    CHECK(row_sum == dense_row);  // no value outside the stored cells
  }
}

}  // namespace

TEST_CASE("TrafficMatrix: every accessor equals a dense matrix's, on random data") {
  for (const double fill : {0.0, 0.05, 0.3, 1.0}) {
    for (uint32_t n : {1u, 2u, 7u, 33u}) {
      auto [m, d] = Random(n, fill, 17 * n + static_cast<uint32_t>(fill * 100));
      CAPTURE(n, fill);
      CheckEqual(m, d);
      // Sums: row and column without the diagonal, every cell, the off-diagonal ones.
      uint64_t total = 0, off = 0;
      std::vector<uint64_t> received_dense(n, 0), row_all(n, 0), column_all(n, 0);
      for (uint32_t i = 0; i < n; ++i) {
        uint64_t sent = 0, received = 0;
        for (uint32_t j = 0; j < n; ++j) {
          total += d.at(i, j);
          row_all[i] += d.at(i, j);  // the diagonal included
          column_all[i] += d.at(j, i);
          if (i == j) continue;
          sent += d.at(i, j);
          received += d.at(j, i);
          off += d.at(i, j);
        }
        CHECK(m.SentOffRank(i) == sent);
        CHECK(m.ReceivedOffRank(i) == received);
        received_dense[i] = received;
      }
      CHECK(m.ReceivedOffRanks() == received_dense);
      CHECK(m.SentByRank() == row_all);
      CHECK(m.ReceivedByRank() == column_all);
      CHECK(m.Total() == total);
      CHECK(m.OffDiagonal() == off);
      CHECK(m.stored() >= static_cast<uint64_t>(std::count_if(d.cells.begin(), d.cells.end(),
                                                              [](uint64_t c) { return c != 0; })));
      // Transposed: (i, j) -> (j, i); twice is the identity.
      Dense t{n, std::vector<uint64_t>(uint64_t{n} * n, 0)};
      for (uint32_t i = 0; i < n; ++i) {
        for (uint32_t j = 0; j < n; ++j) t.cells[uint64_t{j} * n + i] = d.at(i, j);
      }
      CheckEqual(m.Transposed(), t);
      CHECK(m.Transposed().Transposed() == m);
      // Scaled: every cell times the factor.
      Dense scaled = d;
      for (uint64_t& c : scaled.cells) c *= 14336;
      CheckEqual(m.Scaled(14336), scaled);
    }
  }
}

TEST_CASE("TrafficMatrix: == compares values, so a stored zero equals an absent cell") {
  TrafficMatrix a(3), b(3);
  CHECK(a == b);
  a.at(0, 1) = 0;  // stored, zero
  CHECK(a == b);
  CHECK(b == a);
  b.at(2, 2) = 5;
  CHECK_FALSE(a == b);
  a.at(2, 2) = 5;
  CHECK(a == b);
  a.at(2, 0) = 1;  // a cell before an existing one: inserted in column order
  CHECK_FALSE(a == b);
  CHECK(a.row(2).size() == 2);
  CHECK(a.row(2)[0].dst == 0);
  CHECK_FALSE(TrafficMatrix(2) == TrafficMatrix(3));
}

TEST_CASE("TrafficMatrix: SetRow fills a row; bad rows and out-of-range cells throw") {
  TrafficMatrix m(4);
  m.SetRow(1, {{0, 3}, {2, 4}, {3, 1}});
  CHECK(m.at(1, 0) == 3);
  CHECK(m.at(1, 1) == 0);
  CHECK(m.SentOffRank(1) == 8);
  CHECK(m.ReceivedOffRank(2) == 4);
  CHECK_THROWS_AS(m.SetRow(0, {{2, 1}, {1, 1}}), std::invalid_argument);  // not sorted
  CHECK_THROWS_AS(m.SetRow(0, {{1, 1}, {1, 2}}), std::invalid_argument);  // a column twice
  CHECK_THROWS_AS(m.SetRow(0, {{4, 1}}), std::invalid_argument);          // past the last rank
  CHECK_THROWS_AS(m.at(4, 0), std::out_of_range);
  CHECK_THROWS_AS(m.at(0, 4), std::out_of_range);
  const TrafficMatrix& c = m;
  CHECK_THROWS_AS(c.at(0, 4), std::out_of_range);
  CHECK_THROWS_AS(c.at(4, 0), std::out_of_range);
}

}  // namespace moesim::models
