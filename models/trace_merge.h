// Merging routing traces (models/trace.h) into one: `moesim trace merge A B ... -o OUT`.
//
//   TraceMergeOptions options{.along = TraceAxis::kRank};
//   MOESIM_ASSIGN_OR_RETURN(TraceMergeSummary s, MergeTraces({"r0.trace", "r1.trace"}, "all.trace",
//                                                           options));
//
// The inputs must agree on what makes their records comparable: num_experts and top_k, and the
// model where both name one (an error names the field, both files and both values). Records are
// copied in the order of the inputs, each input's in its own order. With `along` set, each input's
// step, layer or rank is shifted past the inputs before it: by the previous inputs' extents along
// that axis (an input's extent: its header's num_layers / num_ranks where stated, else 1 + the
// largest index in its records; for steps, 1 + the largest step), so two 1-rank traces become one
// 2-rank trace. A (step, layer, rank) found in two inputs, after the shift, is an error naming the
// cell and both files: the merged trace would hold two routings of one rank's tokens. Inputs are
// streamed, one record in memory at a time (plus the set of cells seen). On an error no output is
// left behind.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proto/status.h"

namespace moesim::models {

enum class TraceAxis { kStep, kLayer, kRank };

// "step", "layer", "rank"; an error names the value and these.
StatusOr<TraceAxis> ParseTraceAxis(const std::string& text);

struct TraceMergeOptions {
  std::optional<TraceAxis> along;  // nullopt: records keep their steps, layers and ranks
};

struct TraceMergeSummary {
  uint64_t records = 0;
  uint64_t tokens = 0;
  uint32_t layers = 0;    // 1 + the largest layer written
  uint32_t ranks = 0;     // 1 + the largest rank written
  uint64_t max_step = 0;  // the largest step written
};

StatusOr<TraceMergeSummary> MergeTraces(const std::vector<std::string>& inputs,
                                        const std::string& output,
                                        const TraceMergeOptions& options);

}  // namespace moesim::models
