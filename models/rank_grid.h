// A rank grid: ranks 0 .. size-1 laid over named dimensions (tp, cp, ep, dp, pp), the first
// dimension varying fastest, exactly as Megatron-Core's RankGenerator
// (megatron/core/parallel_state.py) lays them: with the order "tp-cp-ep-dp-pp" and sizes
// tp=2, dp=2, pp=2, rank = tp_rank + 2 * dp_rank + 4 * pp_rank.
//
//   RankGrid grid({{"tp", 2}, {"dp", 2}, {"pp", 2}});
//   grid.Coordinate(6, "pp");            // 1
//   grid.Group(6, "dp");                 // {4, 6}: ranks that differ from 6 only along dp
//   grid.GroupOver(6, {"tp", "dp"});     // {4, 5, 6, 7}: Megatron's get_ranks("tp-dp") group
//   grid.AllGroups({"dp"});              // {{0, 2}, {1, 3}, {4, 6}, {5, 7}}, Megatron's order
//
// A group over several dimensions lists its ranks with the grid's fastest dimension fastest,
// whatever order the dimensions are named in (generate_masked_orthogonal_rank_groups). Groups are
// numbered by the coordinates of the other dimensions, fastest first, as Megatron numbers them.
//
// Plain value; const methods are safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/status.h"

namespace moesim::models {

class RankGrid {
 public:
  struct Dim {
    std::string name;
    uint32_t size = 1;
  };
  RankGrid() = default;
  explicit RankGrid(std::vector<Dim> dims_fastest_first);

  uint32_t size() const { return size_; }
  const std::vector<Dim>& dims() const { return dims_; }
  // "tp-cp-dp-pp": the dimension names, fastest first.
  std::string Order() const;

  // Coordinate of `rank` along `dim` (0 .. size of dim - 1). `dim` must be one of the grid's
  // (a programming error otherwise: std::logic_error).
  uint32_t Coordinate(uint32_t rank, std::string_view dim) const;
  // The ranks that share every coordinate with `rank` except along `dim`, ordered along `dim`.
  std::vector<uint32_t> Group(uint32_t rank, std::string_view dim) const;
  // The same over several dimensions: the ranks that differ from `rank` only along `dims`.
  std::vector<uint32_t> GroupOver(uint32_t rank, const std::vector<std::string_view>& dims) const;
  // Every group over `dims`, numbered as Megatron-Core numbers them.
  std::vector<std::vector<uint32_t>> AllGroups(const std::vector<std::string_view>& dims) const;

 private:
  size_t IndexOf(std::string_view dim) const;
  std::vector<bool> Mask(const std::vector<std::string_view>& dims) const;
  // The group over the masked dimensions whose other coordinates are those of `base`.
  std::vector<uint32_t> GroupFrom(uint32_t base, const std::vector<bool>& mask) const;

  std::vector<Dim> dims_;
  std::vector<uint32_t> stride_;
  uint32_t size_ = 1;
};

// The dimension names an order string may use, in Megatron-Core's default order.
inline constexpr std::string_view kDefaultOrder = "tp-cp-ep-dp-pp";

// Parses a Megatron-Core order string ("tp-cp-ep-dp-pp", any permutation of a subset, case
// ignored) into its names, fastest first. Errors (unknown name, a name twice, empty part) are
// located at `where` under `field`. A name left out is appended, slowest, by the callers below,
// and must then have size 1 (as RankGenerator requires).
StatusOr<std::vector<std::string>> ParseOrder(std::string_view order, const Location& where,
                                              std::string_view field);

// The grid of `sizes` (name -> size, every name of kDefaultOrder) in `order` (from ParseOrder),
// with the names missing from `order` appended. `rename` maps an order name to the grid's name
// for it (the MoE grid calls tp "etp" and dp "edp"); names mapped to "" are left out (the MoE
// grid has no cp). Fails when a left-out name has size > 1, naming it.
struct NamedSize {
  std::string order_name;  // as in the order string: tp, cp, ep, dp, pp
  std::string grid_name;   // as in the grid: may differ; "" = not in this grid (size must be 1)
  uint32_t size = 1;
};
StatusOr<RankGrid> GridFromOrder(const std::vector<std::string>& order,
                                 const std::vector<NamedSize>& sizes, const Location& where,
                                 std::string_view field);

}  // namespace moesim::models
