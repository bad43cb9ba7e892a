// moebench: the real backend's command line. main initialises MPI (threads: the watchdog may call
// MPI_Abort while the main thread waits in a collective), runs RunMoebench, and finalises. An
// exception that escapes becomes one line (proto/guarded_main.h), never an abort; with other
// ranks, which may be waiting for this one in a collective, the job is then ended with MPI_Abort.
#include <mpi.h>

#include <iostream>

#include "backend/cli/cli.h"
#include "proto/guarded_main.h"
#include "proto/protobuf_log.h"

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  moesim::SilenceProtobufLogs();  // readers fold what protobuf says into their own errors
  const std::vector<std::string> args(argv + 1, argv + argc);
  bool threw = false;
  const int status = moesim::RunGuarded(
      "moebench", args, std::cerr,
      [&] { return moesim::backend::RunMoebench(args, std::cout, std::cerr); }, &threw);
  std::cout.flush();
  int ranks = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  if (threw && ranks > 1) MPI_Abort(MPI_COMM_WORLD, status);
  MPI_Finalize();
  return status;
}
