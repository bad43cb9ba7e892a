// Routing from router scores (the scenario's `routing { scores { ... } }`): logits are drawn for
// every token of every rank, layer and training step, a router of models/routers.h turns each
// sending GPU's batch into its tokens' experts, and the last step becomes the simulated routing.
// Each (step, layer) also gets the router's figures: Switch's load-balancing loss, ST-MoE's z-loss,
// the drops and the load imbalance (pb::RouterFigures in proto/result.proto).
//
//   RoutingShape shape{/*ranks=*/4, /*layers=*/1, /*tokens_per_rank=*/64, /*experts=*/8,
//   /*top_k=*/2}; MOESIM_ASSIGN_OR_RETURN(ScoreRouting r, ResolveScoreRouting(spec, shape, &file));
//   r.layers[0].experts[rank]        // the last step's routing (kNotDispatched marks drops)
//   r.figures[s * layers + l]        // step s, layer l: aux_loss, z_loss, dropped, max_over_mean
//
// The logits (pb::ScoreRouting documents them): x_e = mu_e(step) + logit_std * z_e, with
//   mu_e(s) = -(skew + skew_growth * s) * ln(1 + ((e - drift * s) mod E)), so softmax(mu) is
//   Zipf over the experts, ever more skewed with skew_growth (router collapse), and the hot
//   experts move `drift` positions per step;
//   z_e = (u1 + u2 + u3 + u4 - 2) * sqrt(3), u uniform in [0, 1) from models/rng.h (Irwin-Hall:
//   mean 0, variance 4 x 1/12 x 3 = 1), made of additions and multiplications only, so the same
//   seed draws the same noise on every machine; in layers after the first
//   z_e(l) = rho * z_e(l - 1) + sqrt(1 - rho^2) * fresh, rho = layer_correlation.
// mu goes through std::log and the routers through std::exp, so the logits and weights may differ
// in the last bit between C libraries; with one build the routing is the same bit for bit.
//
// Invariants: figures.size() == steps x layers; layers[l].top_k is the router's selections per
// token (the model's top_k, 1 for SWITCH_TOP1, 2 for GSHARD_TOP2) or, for EXPERT_CHOICE, the most
// experts any token of the layer got (at least 1); a slot a token does not use holds
// kNotDispatched. Cost: steps x ranks x layers x tokens x E logits, O(tokens x E) memory per
// batch. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "models/rng.h"
#include "models/routing.h"
#include "proto/result.pb.h"
#include "proto/scenario.pb.h"
#include "proto/status.h"
#include "proto/text_file.h"

namespace moesim::models {

struct ScoreRouting {
  std::vector<LayerRouting> layers;        // index = layer: the last step's routing
  // Over several steps (spec.steps > 1): every step's routing, index = step, each as `layers`
  // (the last is `layers`); empty for one step. A scenario replays them step by step.
  std::vector<std::vector<LayerRouting>> steps;
  std::vector<pb::RouterFigures> figures;  // index = step * layers + layer
  // index = layer: the selection bias the last step chose with (the spec's bias, moved by the
  // update after each earlier step on sigmoid scores); empty where there is none.
  std::vector<std::vector<double>> bias;
};

// Checks every field of `spec` (each only where its router uses it, each in range, the bias one
// value per expert, the group limit against the experts and top_k) with errors located at
// routing.scores.<field> in `file` (when not null), then runs the router over `spec.steps` steps.
// `shape.router` stands for ROUTER_UNSPECIFIED.
StatusOr<ScoreRouting> ResolveScoreRouting(const pb::ScoreRouting& spec, const RoutingShape& shape,
                                           const TextFile* file);

// The logit model of a ScoreRouting, for drawing one rank's batches as ResolveScoreRouting does.
struct LogitModel {
  uint64_t seed = 0;
  uint32_t experts = 0;
  double skew = 0;
  double skew_growth = 0;  // per step: step s draws with skew + skew_growth x s
  double logit_std = 1;
  double drift = 0;
  double layer_correlation = 0;
};

// One rank's logits in one step, layer after layer (layer l's noise follows from layer l - 1's).
//   BatchLogits batch(model, step, rank, tokens);
//   const std::vector<double>& x0 = batch.NextLayer();   // layer 0: tokens x experts, row-major
class BatchLogits {
 public:
  BatchLogits(const LogitModel& model, uint64_t step, uint32_t rank, uint64_t tokens);
  // The next layer's logits (layer 0 on the first call); valid until the next call.
  const std::vector<double>& NextLayer();

 private:
  LogitModel model_;
  uint64_t step_ = 0;
  uint64_t tokens_ = 0;
  Rng rng_;
  std::vector<double> mu_;  // mu_e(step)
  std::vector<double> z_;   // the last layer's noise, tokens x experts
  std::vector<double> x_;
  bool first_ = true;
};

// The seed of GSHARD_TOP2's coin flips for `rank`'s batch of `layer` at `step`: the router draws
// them from Rng(GateSeed(...)), one per token in token order (models/routers.h GShardTop2).
uint64_t GateSeed(uint64_t seed, uint64_t step, uint32_t layer, uint32_t rank);

}  // namespace moesim::models
