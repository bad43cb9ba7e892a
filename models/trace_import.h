// Importing routing from where users have it into a moesim trace (models/trace.h):
//   - Megatron-Core router trace JSONL: one JSON object per line,
//       {"step": 0, "layer": 3, "rank": 1, "num_tokens": 2, "topk": 2, "top_indices": [[5, 1], [0,
//       7]]}
//     (top_indices flat token-major or one list per token; top_scores optional, same shape; other
//     fields ignored). One record per line. Parsed with protobuf's JSON parser into
//     pb::MegatronRouterLine.
//   - CSV of per-token expert ids: one token per line, top_k ids separated by commas; an optional
//     first line that is not numbers (a header) is skipped.
//   - NumPy .npy: an integer array of shape [tokens, top_k] (dtypes <i1..<i8, <u1..<u8, little-
//     endian, C order), as np.save writes top-k indices.
// CSV and .npy have no steps, layers or ranks: their tokens become one (step, layer, rank), given
// in the options (or, for many files, one per file: ImportTraceFiles, models/trace_files.h), cut
// into records of at most tokens_per_record tokens. Errors name the input file
// and the line (JSONL, CSV) or the field of the .npy header, and what would be valid. On an error
// the output file is removed, so no partial trace is left behind.
//
//   TraceImportOptions options{.num_experts = 64};
//   MOESIM_ASSIGN_OR_RETURN(TraceImportSummary s, ImportTrace("npy", "topk.npy", "t.moetrace",
//   options));
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proto/status.h"

namespace moesim::models {

struct TraceImportOptions {
  // Routed experts E; required (ids are checked < E).
  uint32_t num_experts = 0;
  // Experts per token; absent: taken from the input (topk, CSV columns, .npy shape[1]); present:
  // the input must agree.
  std::optional<uint32_t> top_k;
  // Written to the header's `model` (may be empty).
  std::string model;
  // CSV and .npy: the (step, layer, rank) of every token, and the most tokens per record (>= 1).
  uint64_t step = 0;
  uint32_t layer = 0;
  uint32_t rank = 0;
  uint64_t tokens_per_record = 1 << 16;
  // Written to the header's num_layers / num_ranks (0: not stated), when the caller knows them.
  uint32_t num_layers = 0;
  uint32_t num_ranks = 0;
};

struct TraceImportSummary {
  uint32_t top_k = 0;
  uint64_t tokens = 0;
  uint64_t records = 0;
};

// Formats: "megatron-jsonl", "csv", "npy".
std::vector<std::string> TraceImportFormats();

StatusOr<TraceImportSummary> ImportTrace(const std::string& format, const std::string& input,
                                         const std::string& output,
                                         const TraceImportOptions& options);

// One input file of many and, for CSV and .npy, the (step, layer, rank) of all its tokens.
struct TraceImportInput {
  std::string path;
  uint64_t step = 0;
  uint32_t layer = 0;
  uint32_t rank = 0;
};

// Many files into one trace, read in the order given (options.step/layer/rank are ignored: each
// input has its own). Every file must agree on top_k; a CSV or .npy file without tokens is an
// error naming it (its cell would be missing). `source` describes the inputs in the header.
StatusOr<TraceImportSummary> ImportTraceFiles(const std::string& format,
                                              const std::vector<TraceImportInput>& inputs,
                                              const std::string& source, const std::string& output,
                                              const TraceImportOptions& options);

}  // namespace moesim::models
