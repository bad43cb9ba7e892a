// Routing replayed from a trace file: `routing { trace { file: "run.trace" } }` in a scenario. The
// trace is streamed record by record (models/trace.h) and gathered into one LayerRouting per
// (step, simulated layer); records of layers beyond the simulated ones are skipped.
//
//   MOESIM_ASSIGN_OR_RETURN(std::vector<ReplayStep> steps, LoadTraceRouting(spec, shape, &file));
//   steps[0].layers[0].experts[rank]   // step 0's routing of layer 0 on `rank`
#pragma once

#include <cstdint>
#include <vector>

#include "models/routing.h"
#include "proto/scenario.pb.h"
#include "proto/status.h"
#include "proto/text_file.h"

namespace moesim::models {

struct ReplayStep {
  uint64_t step = 0;                 // the trace's step number
  std::vector<LayerRouting> layers;  // index = simulated layer
};

// Checks the trace against `shape` (num_experts, top_k, ranks, layers; tokens_per_rank when not 0):
// every step must hold every rank of every simulated layer; a rank beyond the cluster's, a step
// that misses one, a model mismatch, or a different token count are located errors naming the
// trace's record. Steps come out in increasing step order.
StatusOr<std::vector<ReplayStep>> LoadTraceRouting(const pb::TraceRouting& spec,
                                                   const RoutingShape& shape, const TextFile* file);

}  // namespace moesim::models
