// Many CSV or .npy files into one trace: which (step, layer, rank) each file holds, read from its
// base name by a pattern, and the file list checked as a whole before anything is imported.
//
//   MOESIM_ASSIGN_OR_RETURN(TraceNamePattern p, TraceNamePattern::Parse("r{rank}_l{layer}.csv"));
//   MOESIM_ASSIGN_OR_RETURN(std::vector<std::string> files, ExpandTraceGlobs({"dump/*.csv"}));
//   MOESIM_ASSIGN_OR_RETURN(TraceFileGrid grid, PlaceTraceFiles(files, p, {}));
//   ImportTraceFiles("csv", grid.inputs, grid.source, "run.trace", options);  // trace_import.h
//
// A pattern is literal text with the placeholders {step}, {layer} and {rank}, each at most once,
// each matching a run of decimal digits; the whole base name must match. A coordinate without a
// placeholder takes the default given (--step, --layer, --rank). Two placeholders side by side
// ("{rank}{layer}") are refused: the digits could split anywhere.
//
// The grid: ranks 0..R-1 (R = 1 + the largest rank named), and every step and every layer named;
// each (step, layer, rank) of it must be one file. A missing cell is an error naming the first
// missing one in (step, layer, rank) order, a cell named twice an error naming both files. The
// inputs come out sorted by (step, layer, rank), so the trace does not depend on the order of the
// arguments. Plain functions, no state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/trace_import.h"
#include "proto/status.h"

namespace moesim::models {

class TraceNamePattern {
 public:
  // Errors name the pattern and what is wrong: an unknown or repeated placeholder, an unclosed
  // brace, two placeholders side by side, no placeholder at all.
  static StatusOr<TraceNamePattern> Parse(const std::string& pattern);

  struct Cell {
    std::optional<uint64_t> step;
    std::optional<uint32_t> layer, rank;
  };
  // The coordinates `base_name` gives, or nullopt when it does not match. Error: a number past
  // its field's range (uint64 steps, uint32 layers and ranks).
  StatusOr<std::optional<Cell>> Match(const std::string& base_name) const;

  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::string regex_;                // the pattern as an ECMAScript regex, one group per field
  std::vector<std::string> fields_;  // the group's field, in order
};

// Each argument with a glob(3) character (*, ? or [) is expanded, in glob's sorted order (so that
// a quoted "dump/*.csv" of 10,000 files does not pass through argv); the others are kept as they
// are. Error: a pattern that matches no file, naming it.
StatusOr<std::vector<std::string>> ExpandTraceGlobs(const std::vector<std::string>& args);

struct TraceFileGrid {
  std::vector<TraceImportInput> inputs;  // sorted by (step, layer, rank)
  uint32_t ranks = 0;                    // R
  uint32_t layers = 0;                   // 1 + the largest layer
  uint32_t distinct_layers = 0;          // the layers named
  uint64_t steps = 0;                    // distinct steps
  std::string source;                    // for the header: "N files matching PATTERN"
};

// Places `files` by `pattern` (defaults for the coordinates it lacks) and checks the grid.
StatusOr<TraceFileGrid> PlaceTraceFiles(const std::vector<std::string>& files,
                                        const TraceNamePattern& pattern,
                                        const TraceImportInput& defaults);

}  // namespace moesim::models
