#include "models/alltoallv_matrix.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <vector>

#include "proto/atomic_file.h"
#include "proto/input_file.h"

namespace moesim::models {

void WriteAlltoallvMatrix(const TrafficMatrix& bytes, std::ostream& out) {
  for (uint32_t i = 0; i < bytes.ranks(); ++i) {
    for (uint32_t j = 0; j < bytes.ranks(); ++j) out << (j == 0 ? "" : " ") << bytes.at(i, j);
    out << "\n";
  }
}

uint64_t AlltoallvRunBytes(const TrafficMatrix& bytes) {
  uint64_t largest = 0;
  for (uint32_t i = 0; i < bytes.ranks(); ++i) {
    uint64_t sent = 0, received = 0;
    for (uint32_t j = 0; j < bytes.ranks(); ++j) {
      sent += bytes.at(i, j) / kAlltoallvAlignBytes * kAlltoallvAlignBytes;
      received += bytes.at(j, i) / kAlltoallvAlignBytes * kAlltoallvAlignBytes;
    }
    largest = std::max({largest, sent, received});
  }
  return largest;
}

Status WriteAlltoallvMatrixFile(const TrafficMatrix& bytes, const std::string& path) {
  std::ostringstream text;
  WriteAlltoallvMatrix(bytes, text);
  return WriteFileAtomically(path, text.str(), "the all-to-all(v) matrix");
}

StatusOr<TrafficMatrix> ParseAlltoallvMatrix(std::string_view text, const std::string& name,
                                             uint32_t ranks) {
  // Rows as nccl-tests counts them: a newline ends a row only when the row has values, so blank
  // lines are skipped.
  std::vector<std::vector<double>> rows;
  std::vector<double> row;
  int line = 1, column = 1;
  const std::string owned(text);  // strtod needs a terminated string
  const char* p = owned.c_str();
  while (*p != '\0') {
    if (std::isspace(static_cast<unsigned char>(*p))) {
      if (*p == '\n') {
        if (!row.empty()) rows.push_back(std::move(row));
        row.clear();
        ++line;
        column = 1;
      } else {
        ++column;
      }
      ++p;
      continue;
    }
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(p, &end);
    const bool separated = *end == '\0' || std::isspace(static_cast<unsigned char>(*end));
    // 1.8e19 bytes is past uint64's range; nccl-tests rejects what overflows size_t.
    if (end == p || errno == ERANGE || !separated || !(v >= 0) || v >= 1.8e19) {
      std::string bad(p, std::strcspn(p, " \t\r\n"));
      return InputError(
          Location{name, line, column},
          "row " + std::to_string(rows.size()) + " column " + std::to_string(row.size()), bad,
          "not a byte count", "a non-negative number");
    }
    row.push_back(v);
    column += static_cast<int>(end - p);
    p = end;
  }
  if (!row.empty()) rows.push_back(std::move(row));
  if (rows.empty()) return InputError(Location{name}, "", "", "empty all-to-all(v) matrix");
  for (size_t i = 1; i < rows.size(); ++i) {
    if (rows[i].size() != rows[0].size()) {
      return InputError(Location{name}, "row " + std::to_string(i),
                        std::to_string(rows[i].size()) + " values", "rows have different lengths",
                        std::to_string(rows[0].size()) + " values, as row 0");
    }
  }
  if (rows.size() != rows[0].size()) {
    return InputError(Location{name}, "matrix",
                      std::to_string(rows.size()) + "x" + std::to_string(rows[0].size()),
                      "not square", "N rows of N values");
  }
  if (rows.size() < ranks) {
    return InputError(Location{name}, "matrix",
                      std::to_string(rows.size()) + "x" + std::to_string(rows.size()),
                      "smaller than the " + std::to_string(ranks) + " ranks of this run",
                      "at least " + std::to_string(ranks) + " rows and columns");
  }
  TrafficMatrix m(ranks);
  for (uint32_t i = 0; i < ranks; ++i) {
    for (uint32_t j = 0; j < ranks; ++j) {
      const auto bytes = static_cast<uint64_t>(rows[i][j]);
      m.at(i, j) = bytes / kAlltoallvAlignBytes * kAlltoallvAlignBytes;
    }
  }
  return m;
}

StatusOr<TrafficMatrix> ReadAlltoallvMatrix(const std::string& path, uint32_t ranks) {
  MOESIM_ASSIGN_OR_RETURN(const std::string text, ReadInputFile(path));
  return ParseAlltoallvMatrix(text, path, ranks);
}

}  // namespace moesim::models
