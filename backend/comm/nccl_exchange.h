// The expert-parallel exchange of `moebench run --device gpu` over NCCL: the notify step (the
// per-(rank, expert) counts, so every rank knows what it will receive, as DeepEP does first) and
// the rows themselves, on the caller's CUDA stream, between the buffers a GpuEpLayer owns
// (backend/kernels/gpu_kernels.h). NCCL is bootstrapped over the Communicator: rank 0 makes the
// ncclUniqueId and broadcasts it (MPI, one process per GPU; or threads of one process).
//
//   MOESIM_ASSIGN_OR_RETURN(auto nccl, NcclExchange::Create(comm, /*device=*/comm.local_rank(),
//                                                           /*counts_per_peer=*/local_experts));
//   MOESIM_ASSIGN_OR_RETURN(std::vector<uint64_t> recv_counts,
//                           nccl->ExchangeCounts(send_counts, layer.stream()));
//   MOESIM_RETURN_IF_ERROR(nccl->ExchangeRows(layer.send_rows(), send_rows, layer.recv_rows(),
//                                             recv_rows, layer.row_bytes(), equal,
//                                             layer.stream()));
//
// Uneven splits go as ncclSend/ncclRecv pairs inside one ncclGroupStart/ncclGroupEnd, skipping
// empty blocks (nccl-tests' alltoallv); `equal_splits` (every rank sends every rank the same
// count, which the caller must know globally, e.g. from the scenario's send matrix) uses
// ncclAlltoAll. No CUDA types here: built without CUDA or NCCL, Create returns an Error
// (backend/comm/nccl_exchange_stub.cc). Every CUDA and NCCL failure is an Error naming
// host:file:line. Collective: every rank makes the same calls in the same order. Compiled, not yet
// run on a GPU.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "backend/comm/communicator.h"
#include "proto/status.h"

namespace moesim::backend {

class NcclExchange {
 public:
  // A communicator of comm.size() ranks on CUDA device `device`; counts_per_peer is how many
  // uint64 counts ExchangeCounts sends each peer (the local experts).
  static StatusOr<std::unique_ptr<NcclExchange>> Create(Communicator& comm, int device,
                                                        uint32_t counts_per_peer);
  ~NcclExchange();
  NcclExchange(const NcclExchange&) = delete;
  NcclExchange& operator=(const NcclExchange&) = delete;

  // send: [size() x counts_per_peer], block j to rank j. Returns block i from rank i. Waits for
  // the stream (the host needs the counts).
  StatusOr<std::vector<uint64_t>> ExchangeCounts(std::span<const uint64_t> send, void* stream);
  // send_rows[j] rows of row_bytes from `send` (rank order, no gaps) to rank j; recv_rows[i]
  // from rank i into `recv`. Enqueued on `stream`; does not wait.
  Status ExchangeRows(const void* send, std::span<const uint64_t> send_rows, void* recv,
                      std::span<const uint64_t> recv_rows, uint64_t row_bytes, bool equal_splits,
                      void* stream);

  struct Impl;

 private:
  explicit NcclExchange(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace moesim::backend
