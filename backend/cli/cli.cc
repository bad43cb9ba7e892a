#include "backend/cli/cli.h"

#include <CLI/CLI.hpp>
#include <map>

#include "backend/cli/command.h"
#include "backend/comm/mpi_communicator.h"
#include "backend/run/moe_run.h"
#include "proto/atomic_file.h"
#include "proto/serialize.h"

namespace moesim::backend {

int CommandIo::Fail(const Error& e) const {
  // Input errors are the same on every rank: rank 0 says it once. A rank's own runtime failure
  // ("rank 2: ...") is said by that rank; the others stopped because of it and stay quiet.
  const std::string own = "rank " + std::to_string(comm.rank()) + ": ";
  if (root() ? e.message() != kStoppedByPeer : e.message().rfind(own, 0) == 0) {
    err << "moebench: error: " << e.message() << "\n";
  }
  return 1;
}

void AddGemmApiOption(CLI::App* cmd, gpu::GemmApi* api) {
  static const std::map<std::string, gpu::GemmApi> kNames = {
      {"auto", gpu::GemmApi::kAuto},
      {"loop", gpu::GemmApi::kPerExpertLoop},
      {"grouped", gpu::GemmApi::kGroupedBatched}};
  cmd->add_option_function<std::string>(
         "--gemm-api", [api](const std::string& name) { *api = kNames.at(name); },
         "--device gpu: how the expert GEMMs are issued: loop (one cublasGemmEx per expert), "
         "grouped (one cublasGemmGroupedBatchedEx), auto (grouped for " +
             std::to_string(gpu::kGroupedMinExperts) + "+ experts under " +
             std::to_string(gpu::kLoopMinRowsPerExpert) + " rows each, else loop)")
      ->check(CLI::IsMember({"auto", "loop", "grouped"}))
      ->default_str("auto");
}

Status CheckOutOption(const std::string& path, const CommandIo& io) {
  const Status mine = path.empty() || !io.root() ? Status::Ok() : CheckOutputPath(path, "--out");
  if (!io.comm.AnyRank(!mine.ok())) return Status::Ok();
  if (!mine.ok()) return mine;
  return Error(std::string(kStoppedByPeer));  // rank 0 says why
}

Status WriteResult(const google::protobuf::Message& result, const std::string& path, bool json,
                   CommandIo& io) {
  if (!io.root()) return Status::Ok();
  if (!path.empty()) {
    MOESIM_RETURN_IF_ERROR(
        WriteFileAtomically(path, DeterministicBytes(result), "the result file"));
  }
  if (json) {
    MOESIM_ASSIGN_OR_RETURN(const std::string text, DeterministicJson(result));
    io.out << text;
  }
  return Status::Ok();
}

int RunMoebench(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  MpiCommunicator comm;
  CLI::App app{
      "moebench runs a Mixture-of-Experts scenario for real and measures it: the same scenario\n"
      "file as moesim, one rank per GPU (mpirun -np N), a measured Result in moesim's schema.",
      "moebench"};
  app.set_version_flag("--version", "moebench 0.1.0");
  app.require_subcommand(1, 1);
  CommandAction chosen;
  AddRunCommand(app, &chosen);
  AddA2aCommand(app, &chosen);
  AddGemmCommand(app, &chosen);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them back to front
  // Help and parse errors go to rank 0's streams only.
  std::ostringstream sink;
  std::ostream& help_out = comm.rank() == 0 ? out : sink;
  std::ostream& help_err = comm.rank() == 0 ? err : sink;
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e, help_out, help_err);
    return code == 0 ? 0 : 2;
  }
  CommandIo io{out, err, comm};
  return chosen(io);
}

}  // namespace moesim::backend
