// Catch2's implementation, compiled once for every test binary (moesim_tests, moebench_tests,
// moebench_mpi_tests): its single header's body is the longest compile of the suite, and each
// binary used to compile it again with its own main. The mains are in test_main.cc and
// backend_mpi_main.cc.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "catch_run.h"

namespace moesim::testing {

int RunCatch(int argc, char** argv) { return Catch::Session().run(argc, argv); }

}  // namespace moesim::testing
