#include "models/csv.h"

#include <algorithm>

namespace moesim::models {

StatusOr<std::vector<CsvRow>> SplitCsv(std::string_view text, const std::string& name,
                                       std::string_view header, std::string_view header_reason) {
  const size_t columns = static_cast<size_t>(std::count(header.begin(), header.end(), ',')) + 1;
  std::vector<CsvRow> rows;
  int line_number = 0;
  while (!text.empty()) {
    const size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF files
    if (line_number == 1) {
      if (line != header) {
        return InputError(Location{name, 1, 1}, "header", std::string(line),
                          std::string(header_reason), std::string(header));
      }
      continue;
    }
    if (line.empty()) continue;
    CsvRow row{line_number, {}, {}};
    for (size_t start = 0;;) {
      const size_t comma = line.find(',', start);
      row.fields.push_back(line.substr(start, comma - start));
      row.columns.push_back(static_cast<int>(start) + 1);
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    if (row.fields.size() != columns) {
      return InputError(Location{name, line_number, 1}, "row",
                        std::to_string(row.fields.size()) + " fields", "wrong number of columns",
                        std::to_string(columns) + " (" + std::string(header) + ")");
    }
    rows.push_back(std::move(row));
  }
  if (line_number == 0) {
    return InputError(Location{name}, "header", "", "empty file", std::string(header));
  }
  return rows;
}

}  // namespace moesim::models
