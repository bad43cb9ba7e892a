// Traffic matrices in nccl-tests' alltoallv_perf format (NCCL_TESTS_ALLTOALLV_MATRIX_FILE), so a
// scenario's dispatch bytes can be replayed by nccl-tests, by `moebench a2a --matrix` or both:
// `moesim simulate --export-alltoallv FILE` writes one, moebench reads it.
//
//   WriteAlltoallvMatrix(bytes, out);      //  "0 8192 0 8192\n8192 0 ..."
//   MOESIM_ASSIGN_OR_RETURN(TrafficMatrix m, ReadAlltoallvMatrix("dispatch.txt", /*ranks=*/4));
//
// The format, as nccl-tests src/alltoallv.cu reads it: whitespace-separated non-negative numbers
// (strtod), one matrix row per line; cell [i][j] is the bytes rank i sends to rank j (the diagonal
// is what a rank keeps, and nccl-tests sends it to itself). Every row has the same number of
// columns and the matrix is square; its size may exceed the number of ranks, in which case only
// the first `ranks` rows and columns are used. Each value is rounded down to a multiple of 16
// bytes, as nccl-tests aligns every per-peer size. (nccl-tests' optional
// NCCL_TESTS_ALLTOALLV_MATRIX_SCALE factor is not applied here.)
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "models/dispatch.h"
#include "proto/status.h"

namespace moesim::models {

// nccl-tests rounds every per-peer size down to this many bytes.
inline constexpr uint64_t kAlltoallvAlignBytes = 16;

// One line per row, values separated by one space, integers.
void WriteAlltoallvMatrix(const TrafficMatrix& bytes, std::ostream& out);

// The -b and -e nccl-tests' alltoallv_perf needs for `bytes` (src/alltoallv.cu, matrix mode: -b
// and -e equal, and at least the largest bytes a rank sends or receives, as it allocates its
// buffers from -e): that largest total, each cell first rounded down to 16 bytes as it reads it.
uint64_t AlltoallvRunBytes(const TrafficMatrix& bytes);
Status WriteAlltoallvMatrixFile(const TrafficMatrix& bytes, const std::string& path);

// Parses `text` (named `name` in errors, which give line:column) and keeps the first `ranks` rows
// and columns, each cell rounded down to a multiple of 16. Errors: a value that is not a
// non-negative number, rows of different lengths, a non-square or empty matrix, a matrix smaller
// than `ranks`.
StatusOr<TrafficMatrix> ParseAlltoallvMatrix(std::string_view text, const std::string& name,
                                             uint32_t ranks);
StatusOr<TrafficMatrix> ReadAlltoallvMatrix(const std::string& path, uint32_t ranks);

}  // namespace moesim::models
