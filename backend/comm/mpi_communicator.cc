#include "backend/comm/mpi_communicator.h"

#include <climits>
#include <string>
#include <vector>

namespace moesim::backend {

MpiCommunicator::MpiCommunicator() {
  int rank = 0, size = 1, local = 1, local_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  MPI_Comm_size(node, &local);
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_free(&node);
  rank_ = static_cast<uint32_t>(rank);
  size_ = static_cast<uint32_t>(size);
  local_size_ = static_cast<uint32_t>(local);
  local_rank_ = static_cast<uint32_t>(local_rank);
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  for (auto& [bytes, type] : unit_types_) MPI_Type_free(&type);
}

void MpiCommunicator::Barrier() { MPI_Barrier(MPI_COMM_WORLD); }

void MpiCommunicator::AllToAll(std::span<const uint64_t> send, std::span<uint64_t> recv) {
  const int per_rank = static_cast<int>(send.size() / size_);
  MPI_Alltoall(send.data(), per_rank, MPI_UINT64_T, recv.data(), per_rank, MPI_UINT64_T,
               MPI_COMM_WORLD);
}

StatusOr<MPI_Datatype> MpiCommunicator::UnitType(uint64_t bytes) {
  // MPI counts and displacements are int: units of one row keep them small.
  if (bytes == 0 || bytes > INT_MAX) {
    return Error("all-to-all unit of " + std::to_string(bytes) + " bytes: MPI needs 1 to " +
                 std::to_string(INT_MAX));
  }
  auto it = unit_types_.find(bytes);
  if (it != unit_types_.end()) return it->second;
  MPI_Datatype type;
  MPI_Type_contiguous(static_cast<int>(bytes), MPI_BYTE, &type);
  MPI_Type_commit(&type);
  unit_types_.emplace(bytes, type);
  return type;
}

Status MpiCommunicator::AllToAllV(const void* send, std::span<const uint64_t> send_units,
                                  void* recv, std::span<const uint64_t> recv_units,
                                  uint64_t unit_bytes) {
  MOESIM_ASSIGN_OR_RETURN(const MPI_Datatype unit, UnitType(unit_bytes));
  // A displacement is the units before a peer's block: the sums must fit an int too.
  std::vector<int> sc(size_), sd(size_), rc(size_), rd(size_);
  uint64_t send_offset = 0, recv_offset = 0;
  for (uint32_t j = 0; j < size_; ++j) {
    if (send_offset + send_units[j] > INT_MAX || recv_offset + recv_units[j] > INT_MAX) {
      return Error("all-to-all(v) of more than " + std::to_string(INT_MAX) + " rows of " +
                   std::to_string(unit_bytes) + " bytes on rank " + std::to_string(rank_) +
                   ": beyond MPI's int counts");
    }
    sc[j] = static_cast<int>(send_units[j]);
    sd[j] = static_cast<int>(send_offset);
    rc[j] = static_cast<int>(recv_units[j]);
    rd[j] = static_cast<int>(recv_offset);
    send_offset += send_units[j];
    recv_offset += recv_units[j];
  }
  MPI_Alltoallv(send, sc.data(), sd.data(), unit, recv, rc.data(), rd.data(), unit, MPI_COMM_WORLD);
  return Status::Ok();
}

Status MpiCommunicator::AllToAllEqual(const void* send, void* recv, uint64_t units,
                                      uint64_t unit_bytes) {
  MOESIM_ASSIGN_OR_RETURN(const MPI_Datatype unit, UnitType(unit_bytes));
  if (units * size_ > INT_MAX) {
    return Error("all-to-all of " + std::to_string(units) + " units per rank: beyond MPI's int");
  }
  // In place: MPI ignores the send count and type.
  MPI_Alltoall(send == recv ? MPI_IN_PLACE : send, static_cast<int>(units), unit, recv,
               static_cast<int>(units), unit, MPI_COMM_WORLD);
  return Status::Ok();
}

void MpiCommunicator::Broadcast(void* data, uint64_t bytes) {
  MPI_Bcast(data, static_cast<int>(bytes), MPI_BYTE, 0, MPI_COMM_WORLD);
}

void MpiCommunicator::ReduceMax(std::span<const int64_t> in, std::span<int64_t> out) {
  MPI_Reduce(in.data(), out.data(), static_cast<int>(in.size()), MPI_INT64_T, MPI_MAX, 0,
             MPI_COMM_WORLD);
}

void MpiCommunicator::ReduceMax(std::span<const double> in, std::span<double> out) {
  MPI_Reduce(in.data(), out.data(), static_cast<int>(in.size()), MPI_DOUBLE, MPI_MAX, 0,
             MPI_COMM_WORLD);
}

void MpiCommunicator::Gather(std::span<const int64_t> in, std::span<int64_t> out) {
  MPI_Gather(in.data(), static_cast<int>(in.size()), MPI_INT64_T, out.data(),
             static_cast<int>(in.size()), MPI_INT64_T, 0, MPI_COMM_WORLD);
}

bool MpiCommunicator::AnyRank(bool mine) {
  int local = mine ? 1 : 0, any = 0;
  MPI_Allreduce(&local, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any != 0;
}

}  // namespace moesim::backend
