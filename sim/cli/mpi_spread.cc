#include "sim/cli/mpi_spread.h"

#include <mpi.h>

#include <cstdlib>
#include <string>

namespace moesim::sim {
namespace {

bool UnderLauncher() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

}  // namespace

MpiSpread MpiSpread::Start() {
  MpiSpread s;
  if (!UnderLauncher()) return s;
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  }
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  s.rank_ = static_cast<uint32_t>(rank);
  s.size_ = static_cast<uint32_t>(size);
  s.mpi_ = true;
  return s;
}

std::vector<std::string> MpiSpread::GatherBytes(const std::string& bytes) const {
  if (!mpi_ || size_ == 1) return {bytes};
  int length = static_cast<int>(bytes.size());
  std::vector<int> lengths(size_), offsets(size_);
  MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::string all;
  if (rank_ == 0) {
    int total = 0;
    for (uint32_t r = 0; r < size_; ++r) {
      offsets[r] = total;
      total += lengths[r];
    }
    all.resize(static_cast<size_t>(total));
  }
  MPI_Gatherv(bytes.data(), length, MPI_BYTE, all.data(), lengths.data(), offsets.data(), MPI_BYTE,
              0, MPI_COMM_WORLD);
  std::vector<std::string> parts;
  if (rank_ != 0) return parts;
  for (uint32_t r = 0; r < size_; ++r) parts.push_back(all.substr(offsets[r], lengths[r]));
  return parts;
}

std::vector<pb::PlanRow> MpiSpread::GatherRows(const std::vector<pb::PlanRow>& mine) const {
  if (!mpi_ || size_ == 1) return mine;
  pb::PlanTable pack;
  for (const pb::PlanRow& r : mine) *pack.add_rows() = r;
  std::vector<pb::PlanRow> rows;
  for (const std::string& bytes : GatherBytes(pack.SerializeAsString())) {
    pb::PlanTable part;
    part.ParseFromString(bytes);
    for (pb::PlanRow& row : *part.mutable_rows()) rows.push_back(std::move(row));
  }
  return rows;
}

void FinalizeMpi() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
}

}  // namespace moesim::sim
