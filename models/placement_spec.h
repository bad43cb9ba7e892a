// From a scenario's `plan { placement { ... } }` to an ExpertPlacement (models/placement.h).
//
//   plan { ep: 8  placement { kind: EPLB  redundant_experts: 8  num_groups: 8 } }
//
//   std::vector<std::vector<uint64_t>> loads;            // [layer][expert], from the routing
//   for (const LayerRouting& l : routing) AddRoutingLoads(l, &loads);
//   MOESIM_ASSIGN_OR_RETURN(ExpertPlacement p,
//       ResolvePlacement(scenario.plan().placement(), plan, model.num_experts(), layers,
//                        /*gpus_per_node=*/8, loads, &file));
//
// EPLB runs with num_gpus = ep (one EP group's ranks) and num_nodes = the nodes that EP group
// spans, when its ranks fill each node in one block of equal size (as with the default order);
// otherwise, or when gpus_per_node is unknown (0), with one node. Every EP group gets the same
// placement.
#pragma once

#include <cstdint>
#include <vector>

#include "models/placement.h"
#include "models/plan.h"
#include "models/routing.h"
#include "proto/scenario.pb.h"
#include "proto/status.h"
#include "proto/text_file.h"

namespace moesim::models {

// Adds each expert's selections in `routing` (all ranks) to loads[routing.layer][expert], growing
// `loads` as needed.
void AddRoutingLoads(const LayerRouting& routing, uint32_t num_experts,
                     std::vector<std::vector<uint64_t>>* loads);

// Checks the spec (fields only where its kind uses them, files readable and valid) and builds the
// placement of `layers` simulated layers. `routing_loads` ([layer][expert]) feeds EPLB when the
// spec names no loads_file. Relative paths start at `file`'s folder. The placement remembers
// gpus_per_node for the replica choice.
StatusOr<ExpertPlacement> ResolvePlacement(const pb::ExpertPlacementSpec& spec, const Plan& plan,
                                           uint32_t num_experts, uint32_t layers,
                                           uint32_t gpus_per_node,
                                           const std::vector<std::vector<uint64_t>>& routing_loads,
                                           const TextFile* file);

}  // namespace moesim::models
