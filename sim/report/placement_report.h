// Expert placements shown: which experts (and replicas) each EP rank holds, as the Result's
// PlacementReport (DeepSeek EPLB's phy2log, logcnt and log2phy) and as text, the `Placement`
// section of `moesim simulate` and what `moesim placement show` prints.
//
//   pb::PlacementReport report = PlacementToProto(workload.placement, /*layers=*/4);
//   PrintPlacement(report, /*max_ranks=*/16, std::cout);
#pragma once

#include <cstdint>
#include <ostream>

#include "models/placement.h"
#include "proto/result.pb.h"

namespace moesim::sim {

// The placement of layers 0 .. layers-1; a single entry (layer 0, same_for_every_layer) when they
// are all the same.
pb::PlacementReport PlacementToProto(const models::ExpertPlacement& placement, uint32_t layers);

// Per layer (once when every layer is the same), one line per EP rank: its slots and the logical
// expert in each, in slot order, a replicated expert marked `*`; then each replicated expert with
// the EP ranks holding it. At most `max_ranks` EP ranks per layer are listed (0: all), the rest
// counted in one line.
void PrintPlacement(const pb::PlacementReport& report, uint32_t max_ranks, std::ostream& out);

}  // namespace moesim::sim
