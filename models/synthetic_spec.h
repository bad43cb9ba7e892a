// The scenario's `routing { synthetic { ... } }` block: its parameters checked and turned into
// calls of the generators in models/synthetic.h, one LayerRouting per simulated layer.
//
//   routing { synthetic { distribution: ZIPF zipf_alpha: 1.2 shuffle_experts: true seed: 3 } }
//   MOESIM_ASSIGN_OR_RETURN(std::vector<LayerRouting> layers,
//                           ResolveSynthetic(scenario.routing().synthetic(), shape, &file));
//
// Each parameter is accepted only with a distribution that uses it, and must be in range; errors
// name file:line:column (when `file` is given), the field, its value and what is valid. For
// MEASURED the counts file is read here: a relative path is resolved against the folder of `file`.
#pragma once

#include <vector>

#include "models/count_routing.h"
#include "models/routing.h"
#include "proto/scenario.pb.h"
#include "proto/status.h"
#include "proto/text_file.h"

namespace moesim::models {

StatusOr<std::vector<LayerRouting>> ResolveSynthetic(const pb::SyntheticRouting& spec,
                                                     const RoutingShape& shape,
                                                     const TextFile* file);

// True when `routing` is synthetic with routing_version 2: its per-rank work comes from counts
// (ResolveSyntheticCounts, then ExpandCounts), not from each token's experts.
bool DrawsCounts(const pb::Routing& routing);

// routing_version 2: the spec checked as ResolveSynthetic checks it, and each simulated layer's
// per-rank expert counts drawn (models/count_routing.h). UNIFORM and ZIPF, without router_groups,
// drift_period_steps or layer_correlation.
StatusOr<std::vector<LayerCounts>> ResolveSyntheticCounts(const pb::SyntheticRouting& spec,
                                                          const RoutingShape& shape,
                                                          const TextFile* file);

}  // namespace moesim::models
