// The parallel plan: how ranks are laid over GPUs, and where the experts live.
//
// Two grids over the same GPUs, as Megatron-Core's MoE "parallel folding" does: attention and dense
// layers use tp x cp x dp x pp; MoE layers use etp x ep x edp x pp, where expert-data-parallel
// edp = tp*cp*dp / (etp*ep). Ranks are numbered with the first dimension varying fastest, so with
// the default order an EP group is ep consecutive ranks (inside one node when ep <= GPUs per node).
//
//   MOESIM_ASSIGN_OR_RETURN(Plan plan, ResolvePlan(scenario.plan(), /*world=*/8, model, &file));
//   plan.EpGroup(5);      // {4, 5, 6, 7} when ep = 4
//   ExpertPlacement placement = ExpertPlacement::Contiguous(model.num_experts(), plan.sizes().ep);
//   placement.EpRankOf(5);  // 2 when 8 experts over ep = 4 (2 per rank)
//
// Needs only GPU counts, never the topology graph: both executors use it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/model.pb.h"
#include "proto/scenario.pb.h"
#include "proto/status.h"
#include "proto/text_file.h"

namespace moesim::models {

// Maps ranks to coordinates on named dimensions; the first dimension varies fastest.
class RankGrid {
 public:
  struct Dim {
    std::string name;
    uint32_t size = 1;
  };
  RankGrid() = default;
  explicit RankGrid(std::vector<Dim> dims_fastest_first);

  uint32_t size() const { return size_; }
  // Coordinate of `rank` along `dim` (0 .. size of dim - 1). `dim` must be one of the grid's.
  uint32_t Coordinate(uint32_t rank, std::string_view dim) const;
  // The ranks that share every coordinate with `rank` except along `dim`, ordered along `dim`.
  std::vector<uint32_t> Group(uint32_t rank, std::string_view dim) const;

 private:
  size_t IndexOf(std::string_view dim) const;
  std::vector<Dim> dims_;
  std::vector<uint32_t> stride_;
  uint32_t size_ = 1;
};

struct ParallelSizes {
  uint32_t tp = 1, cp = 1, dp = 1, pp = 1;  // attention / dense grid
  uint32_t ep = 1, etp = 1, edp = 1;        // MoE grid (pp shared)
};

class Plan {
 public:
  const ParallelSizes& sizes() const { return sizes_; }
  uint32_t world() const { return moe_grid_.size(); }
  const RankGrid& moe_grid() const { return moe_grid_; }
  // This rank's position inside its EP group (0 .. ep-1).
  uint32_t EpRank(uint32_t rank) const { return moe_grid_.Coordinate(rank, "ep"); }
  // The ep ranks that exchange tokens with `rank` in the MoE all-to-alls, ordered by EP rank.
  std::vector<uint32_t> EpGroup(uint32_t rank) const { return moe_grid_.Group(rank, "ep"); }

 private:
  friend StatusOr<Plan> ResolvePlan(const pb::ParallelPlan&, uint32_t, const pb::ModelSpec&,
                                    const TextFile*);
  ParallelSizes sizes_;
  RankGrid moe_grid_;
};

// Fills in defaults (absent sizes are 1; dp absent is world / (tp*cp*pp)) and checks that the plan
// fits `world` GPUs and the model. Errors are located in `file` when given.
StatusOr<Plan> ResolvePlan(const pb::ParallelPlan& spec, uint32_t world, const pb::ModelSpec& model,
                           const TextFile* file);

// Which EP rank holds each expert. Contiguous: EP rank r holds experts [r*E/ep, (r+1)*E/ep).
class ExpertPlacement {
 public:
  static ExpertPlacement Contiguous(uint32_t num_experts, uint32_t ep);

  uint32_t num_experts() const { return num_experts_; }
  uint32_t experts_per_rank() const { return experts_per_rank_; }
  uint32_t EpRankOf(uint32_t expert) const { return expert / experts_per_rank_; }
  // Index of `expert` among the experts of its EP rank.
  uint32_t LocalIndexOf(uint32_t expert) const { return expert % experts_per_rank_; }

 private:
  uint32_t num_experts_ = 0;
  uint32_t experts_per_rank_ = 1;
};

}  // namespace moesim::models
