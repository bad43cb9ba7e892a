// Which experts each token goes to, per rank and per layer: given explicitly in the scenario, or drawn
// from a seeded synthetic distribution.
//
//   LayerRouting r = UniformRouting({.ranks = 4, .tokens_per_rank = 4, .num_experts = 8, .top_k = 1},
//                                   /*seed=*/7, /*layer=*/0);
//   r.experts[rank][t * r.top_k + j]   // the j-th expert of token t on `rank`
#pragma once

#include <cstdint>
#include <vector>

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
};

struct LayerRouting {
  uint32_t layer = 0;
  uint32_t top_k = 0;
  // experts[rank] holds tokens * top_k expert ids, token-major.
  std::vector<std::vector<uint32_t>> experts;

  uint64_t tokens(uint32_t rank) const { return experts.at(rank).size() / top_k; }
};

// Each token picks top_k distinct experts, every set equally likely (Floyd's sampling). The stream of
// (rank, layer) depends only on (seed, layer, rank): adding ranks does not change existing ones.
LayerRouting UniformRouting(const RoutingShape& shape, uint64_t seed, uint32_t layer);

// The routing of every layer (index = layer), from the scenario's `routing` block. Checks explicit
// routing against `shape`: every (rank, layer) given once, tokens_per_rank * top_k ids each, ids in
// range, no expert twice for one token.
StatusOr<std::vector<LayerRouting>> ResolveRouting(const pb::Routing& spec, const RoutingShape& shape,
                                                   const TextFile* file);

}  // namespace moesim::models
