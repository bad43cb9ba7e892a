// A scenario resolved into the work both executors run: the model, the plan, the routing of each
// simulated MoE layer, and each layer expanded into per-rank traffic and expert loads.
//
//   MOESIM_ASSIGN_OR_RETURN(Workload w, ResolveWorkload(scenario, file, /*world=*/cluster.gpus()));
//   w.layers[0].dispatch_tokens      // the seed example's [1, 2, 0, 1] row for rank 0
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "models/dispatch.h"
#include "models/plan.h"
#include "models/routing.h"
#include "models/wire_dtype.h"
#include "proto/model.pb.h"
#include "proto/result.pb.h"
#include "proto/scenario.pb.h"
#include "proto/status.h"
#include "proto/text_file.h"

namespace moesim::models {

struct Workload {
  std::string name;
  AllToAllAlgo alltoall_algo = AllToAllAlgo::kDirect;
  // kDeepEpNormal's chunk, tokens of one sender's message to one node (workload.
  // alltoall_chunk_tokens; models/dispatch.h kDeepEpChunkTokens).
  uint32_t chunk_tokens = kDeepEpChunkTokens;
  // How a token travels in dispatch and in combine (workload.dispatch_dtype, combine_dtype;
  // models/wire_dtype.h); nullopt: the model's dtype.
  std::optional<WireDtype> dispatch_dtype, combine_dtype;
  pb::ModelSpec model;
  Plan plan;
  ExpertPlacement placement;
  uint64_t tokens_per_gpu = 0;
  // workload.capacity_factor; 0: no capacity (models/dispatch.h ExpandLayer).
  double capacity_factor = 0;
  // The all-to-all kernels' own rates per GPU, GB/s (workload.dispatch_kernel_gbps, ...;
  // sim/moe/moe_layer.h); nullopt: the links only. The RDMA ones only with a relay by node.
  std::optional<double> dispatch_kernel_gbps, combine_kernel_gbps;
  std::optional<double> dispatch_rdma_kernel_gbps, combine_rdma_kernel_gbps;
  // Index = layer; empty for routing_version 2 (models/count_routing.h), which draws no tokens.
  std::vector<LayerRouting> routing;
  std::vector<LayerWork> layers;      // index = layer
  // Routing replayed from a trace: every step's layers (the fields above hold the first step's).
  struct Step {
    uint64_t step = 0;
    std::vector<LayerWork> layers;
  };
  std::vector<Step> replay;
  // Routing from router scores (routing.scores): the router's figures per step and layer, which
  // `simulate` copies into the Result (models/score_routing.h). Empty for other routing.
  std::vector<pb::RouterFigures> router_figures;
};

// Resolves the model (catalog or inline), the plan for `world` GPUs, the routing and the expert
// placement (EPLB from the routing's own loads unless the plan names a loads file), then expands
// each layer. `gpus_per_node` (0 = unknown) lets EPLB see nodes and the replica choice prefer the
// sender's node. Every error names `file`'s path and the offending field's line:column.
// With a `step` block only the model and the plan are resolved (no routing, no layers).
// Bytes a workload of this shape holds, estimated before any of it is allocated: per layer, the
// expert ids (4 bytes x ranks x tokens x top_k), the dispatch matrix and its copy (2 x 8 bytes x
// ranks^2, dense at worst) and per-expert token counts (8 bytes x ranks x experts, at worst).
// ResolveWorkload refuses a workload that would not fit (proto/host_memory.h).
//   {8 ranks, 1 layer, 4096 tokens, 8 experts, top-2}: 4*8*4096*2 + 16*64 + 8*64 = 263,680 bytes.
// `per_token` false (routing_version 2, models/count_routing.h): no expert ids are held.
double EstimateWorkloadBytes(const RoutingShape& shape, bool per_token = true);

StatusOr<Workload> ResolveWorkload(const pb::Scenario& scenario, const TextFile& file,
                                   uint32_t world, uint32_t gpus_per_node = 0);

}  // namespace moesim::models
