// moesim: the simulator's command line. Everything lives in RunMoesim; main only turns it into an
// exit status, and any exception that escapes into one line (proto/guarded_main.h), never an
// abort.
#include <iostream>

#include "proto/guarded_main.h"
#include "proto/protobuf_log.h"
#include "sim/cli/cli.h"
#include "sim/cli/mpi_spread.h"

int main(int argc, char** argv) {
  moesim::SilenceProtobufLogs();  // readers fold what protobuf says into their own errors
  const std::vector<std::string> args(argv + 1, argv + argc);
  const int status = moesim::RunGuarded("moesim", args, std::cerr, [&] {
    return moesim::sim::RunMoesim(args, std::cout, std::cerr);
  });
  moesim::sim::FinalizeMpi();  // `moesim plan` under mpirun started MPI
  return status;
}
