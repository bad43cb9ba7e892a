// moesim: the simulator's command line. Everything lives in RunMoesim; main only turns it into an
// exit status.
#include <iostream>

#include "sim/cli/cli.h"
#include "sim/cli/mpi_spread.h"

int main(int argc, char** argv) {
  const int status =
      moesim::sim::RunMoesim(std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr);
  moesim::sim::FinalizeMpi();  // `moesim plan` under mpirun started MPI
  return status;
}
