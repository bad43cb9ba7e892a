// backend/comm/ owns how moebench ranks talk: the communicator interface; the MPI, thread and NCCL
// communicators; the watchdog. It may include proto/ only, never the layer or the kernels.
//
// How the ranks of a moebench run talk to each other: the few collectives an MoE layer and its
// timing need. MpiCommunicator (backend/comm/mpi_communicator.h) is the CPU path over MPI, one
// process per rank; the GPU path moves activations with NCCL (backend/bench/nccl_alltoall.h) and
// uses this interface for everything on the host.
//
//   comm.AllToAll(send_counts, recv_counts);                        // notify: counts first
//   comm.AllToAllV(rows, send_rows, recv, recv_rows, row_bytes);    // then the payload
//
// Every rank must make the same calls in the same order (MPI's rule for collectives). A
// Communicator is used by one thread at a time.
#pragma once

#include <cstdint>
#include <span>

#include "proto/status.h"

namespace moesim::backend {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual uint32_t rank() const = 0;
  virtual uint32_t size() const = 0;
  // Ranks running on this rank's machine (for the host-memory check), this one included, and
  // this rank's index among them (which GPU of the machine it drives).
  virtual uint32_t ranks_on_node() const = 0;
  virtual uint32_t local_rank() const = 0;

  virtual void Barrier() = 0;
  // send holds size() equal blocks; block j goes to rank j; recv block i came from rank i.
  virtual void AllToAll(std::span<const uint64_t> send, std::span<uint64_t> recv) = 0;
  // Rank j gets send_units[j] units of `unit_bytes` bytes from `send` (blocks laid out in rank
  // order, no gaps); recv_units[i] units arrive from rank i, laid out in rank order. Errors when a
  // count does not fit the transport's counts (MPI: int).
  virtual Status AllToAllV(const void* send, std::span<const uint64_t> send_units, void* recv,
                           std::span<const uint64_t> recv_units, uint64_t unit_bytes) = 0;
  // Every rank sends `units` units of `unit_bytes` bytes to every rank (MPI_Alltoall): block j
  // of `send` goes to rank j, block i of `recv` came from rank i. `send` == `recv`: in place
  // (MPI_IN_PLACE), the buffer's blocks replaced by what arrives.
  virtual Status AllToAllEqual(const void* send, void* recv, uint64_t units,
                               uint64_t unit_bytes) = 0;
  // Rank 0's `bytes` at `data` copied to every rank's `data`.
  virtual void Broadcast(void* data, uint64_t bytes) = 0;
  // Element-wise maximum over ranks, delivered to rank 0 (`out` is untouched elsewhere).
  virtual void ReduceMax(std::span<const int64_t> in, std::span<int64_t> out) = 0;
  virtual void ReduceMax(std::span<const double> in, std::span<double> out) = 0;
  // Rank i's `in` lands at out[i * in.size() ...] on rank 0.
  virtual void Gather(std::span<const int64_t> in, std::span<int64_t> out) = 0;
  // Whether any rank passed true; every rank gets the answer.
  virtual bool AnyRank(bool mine) = 0;
};

}  // namespace moesim::backend
