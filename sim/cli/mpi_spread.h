// Spreading work over MPI ranks when moesim runs under mpirun or srun, and doing nothing special
// otherwise: a plain `moesim plan` is rank 0 of 1 and never touches MPI.
//
//   const MpiSpread spread = MpiSpread::Start();        // MPI_Init only under a launcher
//   for (i = spread.rank(); i < n; i += spread.size()) ...
//   all = spread.GatherRows(mine);                       // rank 0 gets everyone's, others nothing
//
// A launcher is recognised by its environment (OMPI_COMM_WORLD_SIZE from Open MPI's mpirun,
// PMI_SIZE or PMIX_RANK from srun and other PMI launchers). MPI is finalized once, at exit, by
// FinalizeMpi() (sim/cli/main.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proto/plan.pb.h"

namespace moesim::sim {

class MpiSpread {
 public:
  static MpiSpread Start();
  uint32_t rank() const { return rank_; }
  uint32_t size() const { return size_; }
  // Every rank's rows, on rank 0 (in rank order); an empty list elsewhere.
  std::vector<pb::PlanRow> GatherRows(const std::vector<pb::PlanRow>& mine) const;
  // Every rank's `mine` (a serialized message), on rank 0 (in rank order); an empty list
  // elsewhere. Without MPI, {mine}.
  std::vector<std::string> GatherBytes(const std::string& mine) const;

 private:
  uint32_t rank_ = 0, size_ = 1;
  bool mpi_ = false;
};

// MPI_Finalize when MPI was started; safe to call always.
void FinalizeMpi();

}  // namespace moesim::sim
