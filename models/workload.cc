#include "models/workload.h"

#include <algorithm>
#include <tuple>

#include "models/field_errors.h"
#include "models/model_spec.h"
#include "models/placement_spec.h"
#include "models/score_routing.h"
#include "models/synthetic_spec.h"
#include "models/trace_replay.h"
#include "proto/host_memory.h"

namespace moesim::models {

double EstimateWorkloadBytes(const RoutingShape& shape, bool per_token) {
  const double ranks = shape.ranks, experts = shape.num_experts;
  const double ids =
      per_token ? 4.0 * ranks * static_cast<double>(shape.tokens_per_rank) * shape.top_k : 0;
  const double per_layer = ids + 2 * 8.0 * ranks * ranks + 8.0 * ranks * experts;
  return shape.layers * per_layer;
}

StatusOr<Workload> ResolveWorkload(const pb::Scenario& scenario, const TextFile& file,
                                   uint32_t world, uint32_t gpus_per_node) {
  Workload w;
  w.name = scenario.name().empty() ? file.path() : scenario.name();

  switch (scenario.model_source_case()) {
    case pb::Scenario::kModel: {
      MOESIM_ASSIGN_OR_RETURN(const std::string catalog, CatalogDir());
      MOESIM_ASSIGN_OR_RETURN(w.model,
                              LoadCatalogModel(scenario.model(), file.Locate("model"), catalog));
      break;
    }
    case pb::Scenario::kModelSpec:
      MOESIM_RETURN_IF_ERROR(ValidateModelSpec(scenario.model_spec(), &file, "model_spec"));
      w.model = scenario.model_spec();
      break;
    case pb::Scenario::MODEL_SOURCE_NOT_SET:
      return InputError(Location{file.path()}, "model", "", "missing",
                        "model: \"NAME\" (see `moesim model list`) or model_spec { ... }");
  }

  MOESIM_ASSIGN_OR_RETURN(w.plan, ResolvePlan(scenario.plan(), world, w.model, &file));
  // A whole step draws its own routing per micro-batch (sim/step/step.h).
  if (scenario.has_step()) return w;

  const pb::Workload& load = scenario.workload();
  const bool from_trace = scenario.routing().has_trace();
  if (from_trace && scenario.routing().trace().cycle_layers()) {
    return InputError(file.Locate("routing.trace.cycle_layers"), "routing.trace.cycle_layers",
                      "true", "cycles a trace's layers over a whole step's MoE layers",
                      "leave it out, or add a step block (sim/step/step_trace.h)");
  }
  if (load.tokens_per_gpu() == 0 && !from_trace) {
    return InputError(file.Locate("workload.tokens_per_gpu"), "workload.tokens_per_gpu", "0",
                      "missing or zero", "an integer >= 1");
  }
  w.tokens_per_gpu = load.tokens_per_gpu();
  MOESIM_ASSIGN_OR_RETURN(w.alltoall_algo, ParseAllToAllAlgo(load.alltoall_algo(),
                                                             file.Locate("workload.alltoall_algo"),
                                                             "workload.alltoall_algo"));
  if (RelaysByNode(w.alltoall_algo) &&
      (gpus_per_node == 0 || (world > gpus_per_node && world % gpus_per_node != 0))) {
    return InputError(file.Locate("workload.alltoall_algo"), "workload.alltoall_algo",
                      ToString(w.alltoall_algo),
                      "needs whole nodes (" + std::to_string(world) + " GPUs, " +
                          std::to_string(gpus_per_node) + " per node)",
                      "direct, per_rank, deepep_low_latency, or GPUs a multiple of " +
                          std::to_string(gpus_per_node));
  }
  MOESIM_ASSIGN_OR_RETURN(
      w.chunk_tokens,
      ParseChunkTokens(load.has_alltoall_chunk_tokens(), load.alltoall_chunk_tokens(),
                       w.alltoall_algo, file.Locate("workload.alltoall_chunk_tokens"),
                       "workload.alltoall_chunk_tokens"));
  MOESIM_ASSIGN_OR_RETURN(w.dispatch_dtype, ParseWireDtype(load.dispatch_dtype(),
                                                           file.Locate("workload.dispatch_dtype"),
                                                           "workload.dispatch_dtype"));
  MOESIM_ASSIGN_OR_RETURN(
      w.combine_dtype, ParseWireDtype(load.combine_dtype(), file.Locate("workload.combine_dtype"),
                                      "workload.combine_dtype"));
  w.capacity_factor = load.capacity_factor();  // declared range: > 0 when given
  // Declared ranges: > 0 when given.
  if (load.has_dispatch_kernel_gbps()) w.dispatch_kernel_gbps = load.dispatch_kernel_gbps();
  if (load.has_combine_kernel_gbps()) w.combine_kernel_gbps = load.combine_kernel_gbps();
  for (const auto& [given, value, field, into] :
       {std::tuple{load.has_dispatch_rdma_kernel_gbps(), load.dispatch_rdma_kernel_gbps(),
                   "workload.dispatch_rdma_kernel_gbps", &w.dispatch_rdma_kernel_gbps},
        std::tuple{load.has_combine_rdma_kernel_gbps(), load.combine_rdma_kernel_gbps(),
                   "workload.combine_rdma_kernel_gbps", &w.combine_rdma_kernel_gbps}}) {
    if (!given) continue;
    if (!RelaysByNode(w.alltoall_algo)) {
      return InputError(file.Locate(field), field, NumberText(value),
                        "the internode kernels' rate needs a relay by node (the algorithm is " +
                            std::string(ToString(w.alltoall_algo)) + ")",
                        "alltoall_algo: \"hierarchical\" or \"deepep_normal\", or leave it out");
    }
    *into = value;
  }
  const uint32_t moe_layers = load.has_moe_layers() ? load.moe_layers() : 1;
  if (moe_layers < 1 || moe_layers > w.model.num_layers()) {
    return InputError(file.Locate("workload.moe_layers"), "workload.moe_layers",
                      std::to_string(moe_layers), "outside the model's layers",
                      "1 to " + std::to_string(w.model.num_layers()));
  }

  const RoutingShape shape{.ranks = world,
                           .layers = moe_layers,
                           .tokens_per_rank = w.tokens_per_gpu,
                           .num_experts = w.model.num_experts(),
                           .top_k = w.model.top_k(),
                           .router = w.model.router()};
  // Router scores over several steps keep every step's routing (replayed step by step).
  const uint64_t kept_steps =
      scenario.routing().has_scores() && scenario.routing().scores().steps() > 1
          ? scenario.routing().scores().steps()
          : 1;
  MOESIM_RETURN_IF_ERROR(CheckFitsInMemory(
      kept_steps * EstimateWorkloadBytes(shape, !DrawsCounts(scenario.routing())),
      "the routing of " + std::to_string(world) + " GPUs x " + std::to_string(w.tokens_per_gpu) +
          " tokens x top-" + std::to_string(shape.top_k) + " x " + std::to_string(moe_layers) +
          " layers",
      "use fewer workload.tokens_per_gpu, workload.moe_layers or GPUs", AvailableHostBytes()));
  const pb::ExpertPlacementSpec& placement = scenario.plan().placement();
  const bool loads_from_routing =
      placement.kind() == pb::ExpertPlacementSpec::EPLB && placement.loads_file().empty();
  // Routing of several steps (a trace's, or router scores' over steps > 1): EPLB's loads from
  // every step, each step expanded for SimulateReplay, step `shown`'s routing as the workload's.
  auto replay = [&](std::vector<ReplayStep> steps, size_t shown) -> Status {
    std::vector<std::vector<uint64_t>> loads;  // EPLB's loads: every replayed step
    for (const ReplayStep& step : steps) {
      for (const LayerRouting& layer : step.layers) {
        if (loads_from_routing) AddRoutingLoads(layer, w.model.num_experts(), &loads);
      }
    }
    MOESIM_ASSIGN_OR_RETURN(
        w.placement, ResolvePlacement(scenario.plan().placement(), w.plan, w.model.num_experts(),
                                      moe_layers, gpus_per_node, loads, &file));
    for (const ReplayStep& step : steps) {
      Workload::Step expanded{step.step, {}};
      for (const LayerRouting& layer : step.layers) {
        expanded.layers.push_back(ExpandLayer(layer, w.plan, w.placement, w.capacity_factor));
      }
      w.replay.push_back(std::move(expanded));
    }
    w.routing = std::move(steps[shown].layers);
    w.layers = w.replay[shown].layers;
    return Status::Ok();
  };
  if (from_trace) {
    MOESIM_ASSIGN_OR_RETURN(std::vector<ReplayStep> steps,
                            LoadTraceRouting(scenario.routing().trace(), shape, &file));
    MOESIM_RETURN_IF_ERROR(replay(std::move(steps), 0));
    // Tokens per GPU as the report shows it: the largest of the first step's ranks.
    for (uint64_t t : w.layers.front().tokens_in) w.tokens_per_gpu = std::max(w.tokens_per_gpu, t);
    return w;
  }
  if (DrawsCounts(scenario.routing())) {  // routing_version 2: counts, no token's experts
    MOESIM_ASSIGN_OR_RETURN(std::vector<LayerCounts> counts,
                            ResolveSyntheticCounts(scenario.routing().synthetic(), shape, &file));
    std::vector<std::vector<uint64_t>> loads;  // EPLB's loads
    for (const LayerCounts& layer : counts) {
      if (loads_from_routing) AddCountLoads(layer, &loads);
    }
    MOESIM_ASSIGN_OR_RETURN(
        w.placement, ResolvePlacement(scenario.plan().placement(), w.plan, w.model.num_experts(),
                                      moe_layers, gpus_per_node, loads, &file));
    for (const LayerCounts& layer : counts) {
      w.layers.push_back(ExpandCounts(layer, w.plan, w.placement, w.capacity_factor));
    }
    return w;
  }
  if (scenario.routing().has_scores()) {
    MOESIM_ASSIGN_OR_RETURN(ScoreRouting routed,
                            ResolveScoreRouting(scenario.routing().scores(), shape, &file));
    w.router_figures = std::move(routed.figures);
    if (!routed.steps.empty()) {
      // Several steps: each is simulated, as a trace's steps are (sim/moe/replay.h); the last
      // one's routing is the workload's layers.
      std::vector<ReplayStep> steps;
      for (size_t s = 0; s < routed.steps.size(); ++s)
        steps.push_back({s, std::move(routed.steps[s])});
      MOESIM_RETURN_IF_ERROR(replay(std::move(steps), routed.steps.size() - 1));
      return w;
    }
    w.routing = std::move(routed.layers);
  } else {
    MOESIM_ASSIGN_OR_RETURN(w.routing,
                            ResolveRouting(scenario.routing(), shape, &file, &w.router_figures));
  }
  std::vector<std::vector<uint64_t>> loads;  // EPLB's loads
  for (const LayerRouting& layer : w.routing) {
    if (loads_from_routing) AddRoutingLoads(layer, w.model.num_experts(), &loads);
  }
  MOESIM_ASSIGN_OR_RETURN(
      w.placement, ResolvePlacement(scenario.plan().placement(), w.plan, w.model.num_experts(),
                                    moe_layers, gpus_per_node, loads, &file));
  for (const LayerRouting& layer : w.routing) {
    w.layers.push_back(ExpandLayer(layer, w.plan, w.placement, w.capacity_factor));
  }
  return w;
}

}  // namespace moesim::models
