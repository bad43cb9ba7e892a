// A layer's dispatch and combine traffic as both executors report it in a Result: one SendMatrix
// per phase, tokens and bytes per (source rank, destination rank), rows as JSON arrays.
//
//   AddSendMatrices(result, /*layer=*/0, work.dispatch_tokens, /*token_bytes=*/hidden * 2);
//
// The Result's matrices are dense (every cell a JSON number, 4 n² of them per layer), so they are
// written only up to kMaxSendMatrixRanks ranks: at 16,384 GPUs they would take ~70 GiB of memory
// for what `moesim simulate --export-alltoallv` or the workload's TrafficMatrix gives directly.
#pragma once

#include <cstdint>

#include "models/dispatch.h"
#include "proto/result.pb.h"

namespace moesim::models {

// The widest matrix a Result carries: 2,048 ranks (the largest shipped scenario,
// scenarios/deepseek-v3-h800-2048.pbtxt), 4 M cells, about 1 GiB of protobuf Values per layer.
inline constexpr uint32_t kMaxSendMatrixRanks = 2048;

// Appends "dispatch" (`dispatch` itself) and "combine" (its transpose); bytes = tokens x
// `token_bytes`. Counts below 2^53 are exact as JSON numbers (doubles). Appends nothing when
// `dispatch` has more than kMaxSendMatrixRanks ranks.
void AddSendMatrices(pb::Result& result, uint32_t layer, const TrafficMatrix& dispatch,
                     uint64_t token_bytes);
// The same with a token of `dispatch_token_bytes` in dispatch and `combine_token_bytes` in combine
// (a dispatch in FP8 and a combine in BF16, models/wire_dtype.h).
void AddSendMatrices(pb::Result& result, uint32_t layer, const TrafficMatrix& dispatch,
                     uint64_t dispatch_token_bytes, uint64_t combine_token_bytes);

}  // namespace moesim::models
