// Runs the Catch2 session of a test binary: parses the command line, runs the selected test
// cases, returns the exit status (Catch::Session().run(argc, argv)). Defined in catch_impl.cc,
// the one place Catch2's implementation is compiled, since Catch::Session is declared only there.
#pragma once

namespace moesim::testing {

int RunCatch(int argc, char** argv);

}  // namespace moesim::testing
