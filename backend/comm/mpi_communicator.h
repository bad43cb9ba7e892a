// The Communicator over MPI_COMM_WORLD: one process per rank, started by mpirun (or alone, as a
// world of one). The process must have called MPI_Init_thread (moebench's main does) and must not
// have called MPI_Finalize.
//
//   MpiCommunicator comm;                 // MPI_COMM_WORLD
//   comm.AllToAll(counts, received);      // MPI_Alltoall of uint64 counts
#pragma once

#include <mpi.h>

#include <cstdint>
#include <map>

#include "backend/comm/communicator.h"

namespace moesim::backend {

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator();
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  uint32_t rank() const override { return rank_; }
  uint32_t size() const override { return size_; }
  uint32_t ranks_on_node() const override { return local_size_; }
  uint32_t local_rank() const override { return local_rank_; }

  void Barrier() override;
  void AllToAll(std::span<const uint64_t> send, std::span<uint64_t> recv) override;
  Status AllToAllV(const void* send, std::span<const uint64_t> send_units, void* recv,
                   std::span<const uint64_t> recv_units, uint64_t unit_bytes) override;
  Status AllToAllEqual(const void* send, void* recv, uint64_t units, uint64_t unit_bytes) override;
  void Broadcast(void* data, uint64_t bytes) override;
  void ReduceMax(std::span<const int64_t> in, std::span<int64_t> out) override;
  void ReduceMax(std::span<const double> in, std::span<double> out) override;
  void Gather(std::span<const int64_t> in, std::span<int64_t> out) override;
  bool AnyRank(bool mine) override;

 private:
  // A contiguous datatype of `bytes` bytes, committed once per size and freed with the object.
  StatusOr<MPI_Datatype> UnitType(uint64_t bytes);

  uint32_t rank_ = 0, size_ = 1, local_size_ = 1, local_rank_ = 0;
  std::map<uint64_t, MPI_Datatype> unit_types_;
};

}  // namespace moesim::backend
