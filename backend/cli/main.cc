// moebench: the real backend's command line. main initialises MPI (threads: the watchdog may call
// MPI_Abort while the main thread waits in a collective), runs RunMoebench, and finalises.
#include <mpi.h>

#include <iostream>

#include "backend/cli/cli.h"

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  const int status = moesim::backend::RunMoebench(std::vector<std::string>(argv + 1, argv + argc),
                                                  std::cout, std::cerr);
  std::cout.flush();
  MPI_Finalize();
  return status;
}
