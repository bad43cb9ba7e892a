// backend/cli/ owns the `moebench` command: main and one *_command.cc per subcommand. It may
// include every part of backend/ (and models/, proto/), never sim/; with sim/cli/, the only
// place that links CLI11.
//
// The `moebench` command line, as a function so tests can run it in-process and read what it
// prints. MPI must be initialised (moebench's main does; a test's main does) and not finalised;
// every rank of the job calls RunMoebench with the same arguments.
//
//   std::ostringstream out, err;
//   int status = RunMoebench({"run", "scenarios/seed_example.pbtxt", "--check"}, out, err);
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace moesim::backend {

// `args` excludes the program name. Exit status as backend/cli/command.h says.
int RunMoebench(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace moesim::backend
