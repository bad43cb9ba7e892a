// The two small CSV files a placement may come from.
//
// Placement, header `layer,expert,ep_rank`: one row per physical expert (an expert listed twice in
// a layer has two replicas). An EP rank's slots are its rows in file order. `layer` is a layer
// index or `*` for every layer that has no rows of its own; rows of layers the scenario does not
// simulate are ignored. Every simulated layer must place every expert at least once.
//
//   layer,expert,ep_rank
//   *,0,0
//   *,1,1
//   0,1,0            <- layer 0 has its own rows: expert 1 on EP ranks 0 and 1, expert 0 on 1
//   0,0,1
//   0,1,1
//
// Loads, header `layer,expert,load`: a measured load (tokens, or any non-negative number) for
// every expert of every simulated layer, as EPLB takes them.
//
// Errors name the file, line and column, the field, the value and what is valid.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "models/eplb.h"
#include "models/placement.h"
#include "proto/status.h"

namespace moesim::models {

struct PlacementShape {
  uint32_t num_experts = 0;
  uint32_t ep = 0;
  uint32_t layers = 1;  // simulated layers: 0 .. layers-1
};

// Parses a placement CSV held in `text`, named `name` in errors.
StatusOr<std::vector<LayerPlacement>> ParsePlacementCsv(std::string_view text,
                                                        const std::string& name,
                                                        const PlacementShape& shape);
// Parses a loads CSV: the result is [layer][expert], layers 0 .. shape.layers-1.
StatusOr<LoadMatrix> ParseLoadsCsv(std::string_view text, const std::string& name,
                                   const PlacementShape& shape);

// Reads a whole file; errors name it.
StatusOr<std::string> ReadTextFile(const std::string& path);

}  // namespace moesim::models
