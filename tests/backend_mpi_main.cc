// main of moebench_mpi_tests: Catch2 under MPI. Every rank runs the same test cases in the same
// order (so collectives match); the exit status is the worst of all ranks'. Run it with mpirun
// -np N and a tag: "[mpi4]" tests need 4 ranks, "[mpi1]" tests one.
#define CATCH_CONFIG_RUNNER
#include <mpi.h>

#include <catch2/catch.hpp>

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  Catch::Session session;
  int status = session.applyCommandLine(argc, argv);
  if (status == 0) status = session.run();
  int worst = 0;
  MPI_Allreduce(&status, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return worst;
}
