// The parallel plan: how ranks are laid over GPUs.
//
// Two grids over the same GPUs, as Megatron-Core's MoE "parallel folding" does: attention and dense
// layers use tp x cp x dp x pp; MoE layers use etp x ep x edp x pp, where expert-data-parallel
// edp = tp*cp*dp / (etp*ep). Both grids follow the same order string (Megatron-Core's
// RankGenerator, models/rank_grid.h), first name fastest: with the default "tp-cp-ep-dp-pp" an EP
// group is ep consecutive ranks (inside one node when ep <= GPUs per node) and a pipeline stage
// is a block of tp*cp*dp consecutive ranks.
//
//   MOESIM_ASSIGN_OR_RETURN(Plan plan, ResolvePlan(scenario.plan(), /*world=*/8, model, &file));
//   plan.EpGroup(5);      // {4, 5, 6, 7} when ep = 4
//   plan.DpGroup(5);      // the ranks that all-reduce rank 5's dense gradients (with cp:
//   DpCpGroup) plan.EdpGroup(5);     // the ranks that all-reduce rank 5's expert gradients
//
// Where the experts live is models/placement.h. Needs only GPU counts, never the topology graph:
// both executors use it. A Plan is a plain value; const methods are safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/placement.h"
#include "models/rank_grid.h"
#include "proto/model.pb.h"
#include "proto/scenario.pb.h"
#include "proto/status.h"
#include "proto/text_file.h"

namespace moesim::models {

struct ParallelSizes {
  uint32_t tp = 1, cp = 1, dp = 1, pp = 1;  // attention / dense grid
  uint32_t ep = 1, etp = 1, edp = 1;        // MoE grid (pp shared)
};

class Plan {
 public:
  const ParallelSizes& sizes() const { return sizes_; }
  uint32_t world() const { return moe_grid_.size(); }
  // The order string as resolved, every name present: "tp-cp-ep-dp-pp".
  const std::string& order() const { return order_; }
  // Dimensions tp, cp, ep (size 1), dp, pp in the plan's order.
  const RankGrid& attention_grid() const { return attention_grid_; }
  // Dimensions etp, ep, edp, pp in the plan's order (no cp).
  const RankGrid& moe_grid() const { return moe_grid_; }

  // Attention / dense layers.
  std::vector<uint32_t> TpGroup(uint32_t rank) const { return attention_grid_.Group(rank, "tp"); }
  std::vector<uint32_t> CpGroup(uint32_t rank) const { return attention_grid_.Group(rank, "cp"); }
  std::vector<uint32_t> DpGroup(uint32_t rank) const { return attention_grid_.Group(rank, "dp"); }
  // Dense weights are replicated over dp and cp: their gradients are reduced over this group
  // (Megatron-Core's dp-cp group; the distributed optimizer shards over it).
  std::vector<uint32_t> DpCpGroup(uint32_t rank) const {
    return attention_grid_.GroupOver(rank, {"dp", "cp"});
  }
  // The pipeline: the ranks holding every stage of `rank`'s replica, stage 0 first.
  std::vector<uint32_t> PpGroup(uint32_t rank) const { return attention_grid_.Group(rank, "pp"); }
  uint32_t PpStage(uint32_t rank) const { return attention_grid_.Coordinate(rank, "pp"); }

  // MoE layers. This rank's position inside its EP group (0 .. ep-1).
  uint32_t EpRank(uint32_t rank) const { return moe_grid_.Coordinate(rank, "ep"); }
  // The ep ranks that exchange tokens with `rank` in the MoE all-to-alls, ordered by EP rank.
  std::vector<uint32_t> EpGroup(uint32_t rank) const { return moe_grid_.Group(rank, "ep"); }
  std::vector<uint32_t> EtpGroup(uint32_t rank) const { return moe_grid_.Group(rank, "etp"); }
  // The ranks holding the same experts: expert gradients are reduced over this group.
  std::vector<uint32_t> EdpGroup(uint32_t rank) const { return moe_grid_.Group(rank, "edp"); }

  // Layers [first, first + count) of the model run on pipeline stage `stage`.
  uint32_t StageLayerCount(uint32_t stage) const { return stage_layers_.at(stage); }
  uint32_t StageFirstLayer(uint32_t stage) const;

 private:
  friend StatusOr<Plan> ResolvePlan(const pb::ParallelPlan&, uint32_t, const pb::ModelSpec&,
                                    const TextFile*);
  ParallelSizes sizes_;
  std::string order_;
  RankGrid attention_grid_;
  RankGrid moe_grid_;
  std::vector<uint32_t> stage_layers_;  // per stage; all 0 when the model gives no num_layers
};

// Fills in defaults (absent sizes are 1; dp absent is world / (tp*cp*pp)) and checks that the plan
// fits `world` GPUs and the model, as Megatron-Core does:
// - tp*cp*dp*pp = world; etp*ep divides tp*cp*dp (edp whole);
// - the order string names only tp, cp, ep, dp, pp, each once; names left out have size 1; when
//   pp is not last and pp > 1, edp = dp (Megatron-Core's rule for non-"pp-last" orders);
// - ep divides the experts (contiguous placement; EPLB: experts + redundant_experts; round-robin
//   and file placements need not divide);
// - tp divides the attention heads and, for GQA, the key/value heads;
// - pp divides the layers, or pp_first/last_stage_layers leave a multiple of the middle stages.
// Errors are located in `file` when given (field paths under "plan.").
StatusOr<Plan> ResolvePlan(const pb::ParallelPlan& spec, uint32_t world, const pb::ModelSpec& model,
                           const TextFile* file);

// One EP group alone, as a plan of `ep` ranks (ep: ep, every other size 1): what a placement is
// resolved over when only the EP group matters (a step's MoE layer, plan search, trace stats).
StatusOr<Plan> EpGroupPlan(const pb::ModelSpec& model, uint32_t ep);

}  // namespace moesim::models
