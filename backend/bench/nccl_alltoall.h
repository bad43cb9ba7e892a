// All-to-all(v) between GPUs over NCCL, one GPU per MPI rank (the GPU of its index on its node),
// timed as nccl-tests times it (backend/bench/a2a_bench.h has the definitions): `moebench a2a
// --device gpu`. NCCL is bootstrapped over MPI: rank 0 makes the ncclUniqueId and broadcasts it.
// Equal splits use ncclAlltoAll; a matrix uses ncclSend/ncclRecv pairs inside one
// ncclGroupStart/ncclGroupEnd, skipping empty blocks (nccl-tests' alltoallv_perf).
//
//   MOESIM_ASSIGN_OR_RETURN(std::unique_ptr<NcclAllToAll> nccl, NcclAllToAll::Create(comm));
//   MOESIM_ASSIGN_OR_RETURN(A2aRow row, nccl->Measure(64 << 20, options));
//
// No CUDA types here: where moebench was built without CUDA and NCCL, Create returns an Error
// saying so (backend/bench/nccl_alltoall_stub.cc). Every CUDA and NCCL failure is an Error naming
// host:file:line and the call. Collective: every rank makes the same calls.
#pragma once

#include <memory>

#include "backend/bench/a2a_bench.h"
#include "backend/comm/communicator.h"
#include "models/dispatch.h"
#include "proto/status.h"

namespace moesim::backend {

class NcclAllToAll {
 public:
  static StatusOr<std::unique_ptr<NcclAllToAll>> Create(Communicator& comm);
  ~NcclAllToAll();

  StatusOr<A2aRow> Measure(uint64_t size_bytes, const A2aOptions& options);
  StatusOr<A2aRow> MeasureV(const models::TrafficMatrix& bytes, const A2aOptions& options);

  struct Impl;

 private:
  explicit NcclAllToAll(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace moesim::backend
