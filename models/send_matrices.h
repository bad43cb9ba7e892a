// A layer's dispatch and combine traffic as both executors report it in a Result: one SendMatrix
// per phase, tokens and bytes per (source rank, destination rank), rows as JSON arrays.
//
//   AddSendMatrices(result, /*layer=*/0, work.dispatch_tokens, /*token_bytes=*/hidden * 2);
#pragma once

#include <cstdint>

#include "models/dispatch.h"
#include "proto/result.pb.h"

namespace moesim::models {

// Appends "dispatch" (`dispatch` itself) and "combine" (its transpose); bytes = tokens x
// `token_bytes`. Counts below 2^53 are exact as JSON numbers (doubles).
void AddSendMatrices(pb::Result& result, uint32_t layer, const TrafficMatrix& dispatch,
                     uint64_t token_bytes);

}  // namespace moesim::models
