// sim/cli/ owns the `moesim` command: the command table, one *_command.cc per subcommand, MPI
// spreading. It may include every part of sim/ (and topology/, models/, proto/), and is the only
// part that links CLI11 and MPI.
//
// The `moesim` command line, as a function so tests can run it in-process and read what it prints.
//
//   std::ostringstream out, err;
//   int status = RunMoesim({"simulate", "scenarios/seed_example.pbtxt", "--json"}, out, err);
//
// Exit status: 0 success, 1 bad input (one line on `err` naming file:line:column, field and what is
// valid), 2 bad command line.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "proto/status.h"

namespace moesim::sim {

// `args` excludes the program name.
int RunMoesim(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// `moesim simulate --json --fidelity FIDELITY` on a scenario given as text instead of a file (the
// Python module's moesim.simulate(text)): the same output and exit status, with `name` standing
// for the file in error locations ("<string>:3:9: ..."). Paths the text names (traces, cluster
// files, hardware_profile) are relative to name's folder: the working directory for a bare name.
int SimulateScenarioText(std::string_view text, const std::string& name,
                         const std::string& fidelity, std::ostream& out, std::ostream& err);

// The scenario `moesim` runs when none is given: $MOESIM_DEFAULT_SCENARIO if set, else
// scenarios/default.pbtxt in moesim's data folder (proto/data_dir.h); the error says where it
// looked.
StatusOr<std::string> DefaultScenarioPath();

}  // namespace moesim::sim
