// NumPy .npy files (numpy.org/doc/stable/reference/generated/numpy.lib.format.html): the header of a
// 2-D array and, for floats, the whole array. Used by `moesim trace import npy` (integer expert
// ids, models/trace_import.h) and by routing from a file of router logits (models/score_routing.h).
//
//   MOESIM_ASSIGN_OR_RETURN(NpyFile f, OpenNpy(path, /*allow_float=*/false));  // f.in at the data
//   MOESIM_ASSIGN_OR_RETURN(NpyMatrix logits, ReadNpyFloats(path));   // <f4 or <f8, as doubles
//
// Accepted: format versions 1-3, C order, little-endian, exactly 2 dimensions. Every error names the
// file and the header field or element at fault, and what is valid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "proto/status.h"

namespace moesim::models {

struct NpyHeader {
  char kind = 0;  // 'i', 'u' or 'f'
  size_t itemsize = 0;
  uint64_t rows = 0, columns = 0;
  uint64_t data_offset = 0;  // bytes from the start of the file to the first element
};

// Reads the header at the start of `in`: integers (<i1..<i8, <u1..<u8) always, and floats (<f4,
// <f8) with allow_float. `input` names the file in errors.
StatusOr<NpyHeader> ReadNpyHeader(std::ifstream& in, const std::string& input, bool allow_float);

// A .npy opened at its first element, its data checked to be exactly rows x columns elements.
struct NpyFile {
  std::ifstream in;
  NpyHeader header;
  uint64_t count = 0;  // rows x columns
};
StatusOr<NpyFile> OpenNpy(const std::string& path, bool allow_float);

// A whole 2-D float array, row-major.
struct NpyMatrix {
  uint64_t rows = 0, columns = 0;
  std::vector<double> values;  // rows x columns; float32 converts exactly
};

// Reads a .npy of float32 or float64 whose data is exactly rows x columns elements; refuses one
// that would not fit in memory (proto/host_memory.h) and any element that is not finite, naming
// its [row, column].
StatusOr<NpyMatrix> ReadNpyFloats(const std::string& path);

}  // namespace moesim::models
