// backend/bench/ owns the nccl-tests-style sweeps (all-to-all over MPI or NCCL, grouped GEMM) and
// the timing statistics every part uses. It may include backend/run/ (the GEMM sweep's inputs and
// measured Result), backend/comm/, backend/kernels/, models/, proto/; never sim/.
//
// All-to-all(v) bandwidth as nccl-tests measures it (src/alltoall.cu, src/alltoallv.cu), on the
// CPU over MPI or on GPUs over NCCL (backend/bench/nccl_alltoall.h): `moebench a2a`.
//
//   A2aOptions o;  o.warmup = 5;  o.iterations = 20;
//   MOESIM_ASSIGN_OR_RETURN(pb::CollectiveRow row, MeasureAllToAll(comm, 1 << 20, o));
//   row.time_us();  row.algbw_gbps();  row.busbw_gbps();
//
// Definitions (nccl-tests): `size` is the bytes one rank sends in all (size / ranks to each rank,
// itself included), count = size / 4 floats; time = `iterations` back-to-back calls after
// `warmup` untimed ones, divided by `iterations`, the slowest rank's (nccl-tests' -a 3; its
// default averages over ranks); algbw = size / time; busbw = algbw x (n - 1) / n. For a matrix
// (alltoallv), size = the largest bytes any rank sends or receives (diagonal included), as
// nccl-tests' alltoallv_perf reports. Data are rank-seeded and checked after the timed calls;
// `wrong` counts elements that did not arrive as sent, over all ranks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "backend/comm/communicator.h"
#include "models/dispatch.h"
#include "proto/result.pb.h"

namespace moesim::backend {

struct A2aOptions {
  uint32_t warmup = 5;       // nccl-tests' -w default
  uint32_t iterations = 20;  // nccl-tests' -n default
};

struct A2aRow {
  pb::CollectiveRow row;  // size, count, type, time, algbw, busbw (complete on rank 0)
  uint64_t wrong = 0;     // elements that arrived wrong, all ranks (rank 0)
  // The in-place half's (row.in_place_*), where it was measured.
  std::optional<uint64_t> in_place_wrong;
};

// nccl-tests' row for `size` bytes per rank on `ranks` ranks, `slowest_ns` being the slowest
// rank's time for `iterations` back-to-back calls: time per call, algbw, busbw.
pb::CollectiveRow A2aRowOf(uint64_t size, int64_t slowest_ns, uint32_t iterations, uint32_t ranks);

// The per-rank size is rounded down to whole floats for every rank (at least one each). Then the
// in-place half, as nccl-tests runs it: the same calls with one buffer for send and receive
// (MPI_IN_PLACE), timed the same way, then the buffer seeded again, one more call, and checked.
StatusOr<A2aRow> MeasureAllToAll(Communicator& comm, uint64_t size_bytes, const A2aOptions& o);

// `bytes` [i][j]: bytes rank i sends rank j (multiples of 16, models/alltoallv_matrix.h), for
// every rank of comm. Counts must fit MPI's int in 16-byte units.
StatusOr<A2aRow> MeasureAllToAllV(Communicator& comm, const models::TrafficMatrix& bytes,
                                  const A2aOptions& o);

// The value element `index` of the block rank `src` sends rank `dst` carries (exact in fp32), as
// nccl-tests seeds its buffers by rank so that a misplaced block is caught.
inline float A2aExpectedValue(uint32_t src, uint32_t dst, uint64_t index) {
  return static_cast<float>((src * 131u + dst * 7u + index) % 8192u);
}

// nccl-tests' all-to-all bus factor: (n - 1) / n.
double AllToAllBusFactor(uint32_t ranks);

}  // namespace moesim::backend
