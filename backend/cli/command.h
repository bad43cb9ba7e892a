// How `moebench` subcommands plug into the command line (as sim/cli/command.h does for moesim):
// each command file registers its subcommand on the CLI11 app and, when the user picks it, stores
// what to run. RunMoebench (backend/cli/cli.cc) parses, then runs the chosen action on every rank.
//
// Output: only rank 0 prints results; input errors (the same on every rank) are printed by rank 0
// alone, a rank's own runtime failure ("rank 2: ...": a failed check, memory) by that rank. Exit
// status: 0 success, 1 bad input or a failed run, 2 bad command line.
#pragma once

#include <google/protobuf/message.h>

#include <CLI/CLI.hpp>
#include <functional>
#include <ostream>

#include "backend/comm/communicator.h"
#include "backend/kernels/gpu_kernels.h"
#include "proto/status.h"

namespace moesim::backend {

struct CommandIo {
  std::ostream& out;
  std::ostream& err;
  Communicator& comm;

  bool root() const { return comm.rank() == 0; }
  // Prints "moebench: error: ..." where the policy above says, and returns 1.
  int Fail(const Error& e) const;
};

using CommandAction = std::function<int(CommandIo&)>;

// `moebench run SCENARIO`: a scenario's MoE layers, measured (run_command.cc).
void AddRunCommand(CLI::App& app, CommandAction* chosen);
// `moebench a2a`: an all-to-all(v) sweep in nccl-tests' columns (a2a_command.cc).
void AddA2aCommand(CLI::App& app, CommandAction* chosen);
// `moebench gemm`: grouped SwiGLU GEMM shapes, GFLOP/s (gemm_command.cc).
void AddGemmCommand(CLI::App& app, CommandAction* chosen);

// `--gemm-api auto|loop|grouped`: how --device gpu issues the expert GEMMs (gpu::GemmApi).
void AddGemmApiOption(CLI::App* cmd, gpu::GemmApi* api);

// Before the measurement: --out `path` (when not empty) can be written (proto/atomic_file.h,
// CheckOutputPath), checked by rank 0, which is the rank that writes it. Collective: every rank
// gets the error (rank 0 its text, the others kStoppedByPeer), so no rank goes on alone.
Status CheckOutOption(const std::string& path, const CommandIo& io);

// Writes `result` in binary to `path` (when not empty; atomically, errors with errno's text) and,
// with `json`, as JSON on io.out (rank 0 only).
Status WriteResult(const google::protobuf::Message& result, const std::string& path, bool json,
                   CommandIo& io);

}  // namespace moesim::backend
