// Which experts each token goes to, per rank and per layer: given explicitly in the scenario, drawn
// from a seeded synthetic distribution (the generators are in models/synthetic.h), or chosen by a
// router from drawn router scores (models/score_routing.h).
//
//   MOESIM_ASSIGN_OR_RETURN(std::vector<LayerRouting> layers,
//                           ResolveRouting(scenario.routing(), shape, &file));
//   layers[l].experts[rank][t * layers[l].top_k + j]   // the j-th expert of token t on `rank`
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proto/result.pb.h"
#include "proto/scenario.pb.h"
#include "proto/status.h"
#include "proto/text_file.h"

namespace moesim::models {

// The size of the routing a scenario needs.
struct RoutingShape {
  uint32_t ranks = 0;
  uint32_t layers = 1;
  uint64_t tokens_per_rank = 0;
  uint32_t num_experts = 0;
  uint32_t top_k = 0;
  // The model's router (routing.scores without a router of its own uses it).
  pb::ModelSpec::RouterKind router = pb::ModelSpec::ROUTER_KIND_UNSPECIFIED;
};

// An expert slot of a token that its router did not dispatch (a drop, or fewer experts than the
// slots). Every reader of LayerRouting::experts skips it.
inline constexpr uint32_t kNotDispatched = UINT32_MAX;

struct LayerRouting {
  uint32_t layer = 0;
  uint32_t top_k = 0;
  // experts[rank] holds tokens * top_k slots, token-major: token t's experts are
  // experts[rank][t * top_k .. t * top_k + top_k), each an expert id or kNotDispatched (only from
  // routers that drop, models/score_routing.h; ids first, then the unused slots).
  std::vector<std::vector<uint32_t>> experts;
  // Where the routing came from when a reader should know (e.g. measured counts scaled to this
  // scenario's token count); empty otherwise.
  std::string note = {};

  uint64_t tokens(uint32_t rank) const { return experts.at(rank).size() / top_k; }
};

// The routing of every layer (index = layer), from the scenario's `routing` block. Checks explicit
// routing against `shape`: every (rank, layer) given once, tokens_per_rank * top_k ids each, ids in
// range, no expert twice for one token. Checks synthetic routing's parameters (each only where its
// distribution uses it, each in range) and, for MEASURED, the counts file: readable, holding the
// model, domain and layers asked for, with the model's number of experts, and no expert with more
// selections than the layer has tokens. A relative counts_file is resolved against the folder of
// `file` (the working directory when `file` is null).
// Score routing (models/score_routing.h) gives the last step's routing, and the router's figures
// per step and layer into `router_figures` when given (left empty for the other sources).
StatusOr<std::vector<LayerRouting>> ResolveRouting(
    const pb::Routing& spec, const RoutingShape& shape, const TextFile* file,
    std::vector<pb::RouterFigures>* router_figures = nullptr);

// Expert capacity, Megatron-Core's get_capacity: ceil((tokens x top_k / experts) x factor)
// places per expert, evaluated in double in that order so that a factor such as 1.1 rounds as it
// does there (100 tokens, 1 expert: 100 x 1.1 = 110.00000000000001 -> 111). 0 when factor <= 0 or
// there are no experts (no dropping). One rank's tokens for a per-sender capacity (dispatch.h),
// the batch's for a router's (routers.h).
uint64_t ExpertCapacity(uint64_t tokens, uint32_t top_k, uint32_t experts, double factor);

}  // namespace moesim::models
