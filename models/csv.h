// The small comma-separated files moesim reads (measured expert counts, placements, loads): a fixed
// header line, then rows of plain fields (no quoting), as many as the header names; blank lines are
// skipped and CRLF line ends accepted. Errors are located at file:line:column.
//
//   MOESIM_ASSIGN_OR_RETURN(std::vector<CsvRow> rows,
//                           SplitCsv(text, "p.csv", "layer,expert,load", "not the header"));
//   rows[0].fields[2];    // "17"; rows[0].columns[2] is where it starts, for errors
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "proto/status.h"

namespace moesim::models {

// One data row: its line, its fields (views into the text) and the column (from 1) of each.
struct CsvRow {
  int line = 0;
  std::vector<std::string_view> fields;
  std::vector<int> columns;
};

// `header_reason` is what a wrong first line is called in the error ("not the header"). An empty
// text is an error too.
StatusOr<std::vector<CsvRow>> SplitCsv(std::string_view text, const std::string& name,
                                       std::string_view header, std::string_view header_reason);

}  // namespace moesim::models
