// A CollectiveSweep as nccl-tests prints it (src/util.cu: writeResultHeader, writeBenchmarkLine,
// writeResultFooter), for `moesim collective` (predicted) and `moebench a2a` (measured), so that
// scripts that parse nccl-tests' output read ours unchanged:
//
//   #                                                              out-of-place in-place # size
//   count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
//   #        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)
//   (GB/s)  (GB/s)
//        1048576        262144     float     sum      -1    24.90   42.12   73.70
//        N/A    24.90   42.12   73.70    N/A
//   # Out of bounds values : 0 OK
//   # Avg bus bandwidth    : 73.7
//   #
//
// Figures in nccl-tests' widths (7 for time, 6 for the bandwidths: two decimals, fewer when the
// figure is wider, then an exponent). Columns a row adds after nccl-tests' (moesim's protocol,
// algorithm, busiest link) come last, where a parser that splits on blanks takes the first 13.
#pragma once

#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "proto/result.pb.h"

namespace moesim {

struct NcclTestsTable {
  std::string_view redop = "none";  // "sum" for the reducing collectives
  // The in-place half: a row's measured in-place figures (CollectiveRow.in_place_*) where it has
  // them, else the same row again (a prediction that does not tell the two apart); or nothing
  // (a measurement that ran out-of-place only; then no extra columns either, or they would stand
  // where a parser looks for the in-place figures).
  bool in_place = true;
  // #wrong per row: the count when the data was checked, nullopt for nccl-tests' "N/A"; the
  // in-place half's apart (absent: the same as the out-of-place half's).
  std::vector<std::optional<uint64_t>> wrong, in_place_wrong;
  // Headings and per-row text of the columns after nccl-tests' (empty: none).
  std::string extra_heading;
  std::function<std::string(const pb::CollectiveRow&)> extra;
};

// nccl-tests' fixed-width figure: "%*.2f", else "%*.1f", else "%*.0f", else an exponent.
std::string NcclTestsFigure(double value, int width);

// The column headings, every row, and the footer: out-of-bounds values (the rows' #wrong summed,
// 0 when unchecked) and the average busbw over the rows, both halves counted as nccl-tests counts
// them.
void WriteNcclTestsTable(const pb::CollectiveSweep& sweep, const NcclTestsTable& table,
                         std::ostream& out);

}  // namespace moesim
