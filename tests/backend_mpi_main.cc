// main of moebench_mpi_tests: Catch2 under MPI. Every rank runs the same test cases in the same
// order (so collectives match); the exit status is the worst of all ranks'. Run it with mpirun
// -np N and a tag: "[mpi4]" tests need 4 ranks, "[mpi1]" tests one. Catch2's implementation is
// compiled once for every test binary (catch_impl.cc).
#include <mpi.h>

#include "catch_run.h"

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int status = moesim::testing::RunCatch(argc, argv);
  int worst = 0;
  MPI_Allreduce(&status, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return worst;
}
