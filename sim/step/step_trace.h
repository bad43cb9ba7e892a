// Whole steps that replay a routing trace: `routing { trace { file: "run.trace" } }` in a scenario
// with a `step` block (sim/step/step.h). Each MoE layer of each pipeline stage takes its own
// layer's routing from the trace, and each micro-batch its own step's:
//
//   MoE layer i of the model (counting MoE layers only, from 0, as the trace's layers count; a
//     model without dense layers: model layer i) <-> trace layer i; a trace with fewer layers
//     than the model's MoE layers is an error unless `cycle_layers` is set, when MoE layer i
//     takes trace layer i mod (trace layers);
//   micro-batch j <-> the trace's (j mod S)-th step, in increasing step order (S = the steps
//     replayed: all, or the first max_steps).
//
// The trace is one EP group's routing: its ranks must be the plan's ep (every EP group replays the
// same, as synthetic routing draws one group's), and each rank's tokens in each (step, layer) the
// micro-batch's tokens per rank, MoeTokensPerRank: micro_batch x seq_len / (tp x cp) (decode:
// micro_batch / (tp x cp)). No rule scales one to the other (plan search prices per-expert shares,
// which have no token count to match), so a difference is an error naming both numbers.
// The placement (EPLB included) is resolved per trace layer from the loads of every step replayed.
//
//   MOESIM_ASSIGN_OR_RETURN(StepTraceWork t, StepTraceLayers(model, plan, routing, placement,
//                                                            8, config, &file));
//   SimulateStep(cluster, model, plan, t.by_step[0][0], config, &t);
#pragma once

#include <string>
#include <vector>

#include "models/dispatch.h"
#include "models/plan.h"
#include "proto/model.pb.h"
#include "proto/scenario.pb.h"
#include "proto/status.h"
#include "proto/text_file.h"
#include "sim/step/step.h"

namespace moesim::sim {

// Loads `routing.trace()` for a whole step (see above). Errors, located at routing.trace where
// `file` is given: the trace's ranks differ from the plan's ep, too few layers without
// cycle_layers, a (step, layer, rank) without the micro-batch's tokens, and those of
// models/trace_replay.h (experts or top-k not the model's, a missing rank).
StatusOr<StepTraceWork> StepTraceLayers(const pb::ModelSpec& model, const models::Plan& plan,
                                        const pb::Routing& routing,
                                        const pb::ExpertPlacementSpec& placement,
                                        uint32_t gpus_per_node, const StepConfig& config,
                                        const TextFile* file);

// The MoE layer, of every step and layer of `trace`, whose busiest EP rank computes the most token
// copies (the first such): the one whose all-to-all buffers and expert activations set the peak
// memory (StepMemory). `trace` must hold at least one layer.
const models::LayerWork& BusiestTraceLayer(const StepTraceWork& trace);

}  // namespace moesim::sim
