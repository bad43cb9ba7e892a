// Runs the `moesim` command line in-process, as a user would from a shell, and keeps what it
// printed.
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "sim/cli/cli.h"

namespace moesim::testing {

struct MoesimRun {
  int status;
  std::string out;
  std::string err;
};

inline MoesimRun Moesim(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int status = sim::RunMoesim(args, out, err);
  return {status, out.str(), err.str()};
}

}  // namespace moesim::testing
