#include "sim/step/step_trace.h"

#include <filesystem>

#include "models/params.h"
#include "models/placement_spec.h"
#include "models/trace.h"
#include "models/trace_replay.h"

namespace moesim::sim {

StatusOr<StepTraceWork> StepTraceLayers(const pb::ModelSpec& model, const models::Plan& plan,
                                        const pb::Routing& routing,
                                        const pb::ExpertPlacementSpec& placement,
                                        uint32_t gpus_per_node, const StepConfig& config,
                                        const TextFile* file) {
  const pb::TraceRouting& spec = routing.trace();
  const Location at = file ? file->Locate("routing.trace.file") : Location{};
  std::filesystem::path path = spec.file();
  if (path.is_relative() && file != nullptr)
    path = std::filesystem::path(file->path()).parent_path() / path;
  const std::string shown = "\"" + Printable(spec.file()) + "\"";
  const uint32_t ep = plan.sizes().ep;
  const uint32_t moe_layers = models::MoeLayerCount(model);
  const uint64_t tokens = MoeTokensPerRank(plan, config);

  // The trace's ranks and layers first (one pass over its records), then its routing.
  if (spec.file().empty()) {
    return InputError(at, "routing.trace.file", "\"\"", "missing",
                      "a trace file (moesim trace gen/import/merge)");
  }
  MOESIM_ASSIGN_OR_RETURN(const models::TraceCounts counted, models::CountTrace(path.string()));
  MOESIM_RETURN_IF_ERROR(models::CheckTraceMatchesModel(counted.header, path.string(), model.name(),
                                                        model.num_experts(), model.top_k()));
  if (counted.ranks != ep) {
    return InputError(at, "routing.trace.file", shown,
                      "the trace holds " + std::to_string(counted.ranks) +
                          " rank(s); the plan's EP group has " + std::to_string(ep) +
                          " (a whole step replays one EP group's routing)",
                      "a trace of " + std::to_string(ep) +
                          " ranks (moesim trace merge --along rank joins traces of fewer)");
  }
  const uint32_t trace_layers = static_cast<uint32_t>(counted.counts.size());
  if (trace_layers < moe_layers && !spec.cycle_layers()) {
    return InputError(at, "routing.trace.file", shown,
                      "the trace holds " + std::to_string(trace_layers) + " layer(s); " +
                          model.name() + " has " + std::to_string(moe_layers) + " MoE layers",
                      "a trace of " + std::to_string(moe_layers) +
                          " layers, or routing.trace.cycle_layers: true (MoE layer i replays "
                          "trace layer i mod " +
                          std::to_string(trace_layers) + ")");
  }
  const uint32_t replayed = std::min(trace_layers, moe_layers);
  models::RoutingShape shape;
  shape.ranks = ep;
  shape.layers = replayed;
  shape.num_experts = model.num_experts();
  shape.top_k = model.top_k();
  MOESIM_ASSIGN_OR_RETURN(std::vector<models::ReplayStep> steps,
                          models::LoadTraceRouting(spec, shape, file));

  // Each (step, layer, rank) must hold the micro-batch's tokens; every step's loads for EPLB.
  std::vector<std::vector<uint64_t>> loads;
  for (const models::ReplayStep& step : steps) {
    for (const models::LayerRouting& layer : step.layers) {
      for (uint32_t r = 0; r < ep; ++r) {
        const uint64_t held = layer.experts[r].size() / model.top_k();
        if (held != tokens) {
          return InputError(
              at, "routing.trace.file", shown,
              "step " + std::to_string(step.step) + " layer " + std::to_string(layer.layer) +
                  " rank " + std::to_string(r) + " holds " + std::to_string(held) +
                  " tokens; the step's micro-batch routes " + std::to_string(tokens) +
                  " per rank (micro_batch x seq_len / (tp x cp) = " +
                  std::to_string(config.micro_batch) + " x " + std::to_string(config.seq_len) +
                  " / " + std::to_string(uint64_t{plan.sizes().tp} * plan.sizes().cp) + ")",
              "a trace of " + std::to_string(tokens) +
                  " tokens per rank, or a step.micro_batch and seq_len that give the trace's");
        }
      }
      models::AddRoutingLoads(layer, model.num_experts(), &loads);
    }
  }
  MOESIM_ASSIGN_OR_RETURN(const models::Plan ep_plan, models::EpGroupPlan(model, ep));
  MOESIM_ASSIGN_OR_RETURN(const models::ExpertPlacement where,
                          models::ResolvePlacement(placement, ep_plan, model.num_experts(),
                                                   replayed, gpus_per_node, loads, file));
  StepTraceWork out;
  for (const models::ReplayStep& step : steps) {
    std::vector<models::LayerWork> layers;
    for (uint32_t i = 0; i < moe_layers; ++i) {
      layers.push_back(
          models::ExpandLayer(step.layers[i % replayed], ep_plan, where, config.capacity_factor));
    }
    out.by_step.push_back(std::move(layers));
  }
  out.description = "replayed from " + Printable(path.string()) + ": " +
                    std::to_string(steps.size()) + " step(s) x " + std::to_string(replayed) +
                    " layer(s), " + std::to_string(ep) + " ranks x " + std::to_string(tokens) +
                    " tokens; MoE layer i replays trace layer i" +
                    (replayed < moe_layers ? " mod " + std::to_string(replayed) : std::string()) +
                    ", micro-batch j the trace's step j mod " + std::to_string(steps.size());
  return out;
}

const models::LayerWork& BusiestTraceLayer(const StepTraceWork& trace) {
  const models::LayerWork* busiest = &trace.by_step.front().front();
  uint64_t most = 0;
  for (const std::vector<models::LayerWork>& step : trace.by_step) {
    for (const models::LayerWork& work : step) {
      for (const std::vector<uint64_t>& rank : work.expert_tokens) {
        uint64_t copies = 0;
        for (uint64_t t : rank) copies += t;
        if (copies > most) {
          most = copies;
          busiest = &work;
        }
      }
    }
  }
  return *busiest;
}

}  // namespace moesim::sim
