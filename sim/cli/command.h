// How `moesim` subcommands plug into the command line: each command file registers its subcommand
// on the CLI11 app and, when the user picks it, stores what to run. RunMoesim (cli.cc) parses, then
// runs the chosen action. Keeping one file per command keeps cli.cc small.
//
//   void AddTopoCommand(CLI::App& app, CommandAction* chosen) {
//     auto options = std::make_shared<TopoOptions>();
//     CLI::App* cmd = app.add_subcommand("topo", "...");
//     cmd->add_option(...);
//     cmd->callback([options, chosen] { *chosen = [options](CommandIo& io) { return ...; }; });
//   }
#pragma once

#include <google/protobuf/message.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

#include "proto/plan.pb.h"
#include "proto/scenario.pb.h"
#include "proto/status.h"

namespace moesim::sim {

struct CommandIo {
  std::ostream& out;
  std::ostream& err;
};

// Returns the exit status: 0 success, 1 bad input (one line on io.err, "moesim: error: ...").
using CommandAction = std::function<int(CommandIo&)>;

// Prints `error` as the one line every command fails with ("moesim: error: ..."); returns 1.
int Fail(CommandIo& io, const Error& error);

// Prints `message` as indented JSON with every field, zeros included (a layer 0 or a zero count is
// data, not a default), as every --json does; returns the exit status.
int PrintJson(const google::protobuf::Message& message, CommandIo& io);

// --placement: contiguous, round-robin, eplb[:REDUNDANT[:GROUPS]] (DeepSeek's EPLB) or a
// placement CSV FILE.csv (models/placement_file.h), as a scenario's plan { placement { ... } }.
StatusOr<pb::ExpertPlacementSpec> ParsePlacementFlag(const std::string& text);

// --router-groups G --router-group-topk M (moesim trace gen, moesim plan): OK when neither is set
// or the group limit applies to `experts` experts of top-k `top_k`; otherwise the option at fault,
// its value and what is valid.
Status CheckRouterGroupOptions(uint32_t groups, uint32_t top, uint32_t experts, uint32_t top_k);

// `moesim simulate`; also what `moesim` alone runs (RunDefaultSimulate).
void AddSimulateCommand(CLI::App& app, CommandAction* chosen);
// `moesim topo list|show|dot|route` (topo_command.cc).
void AddTopoCommand(CLI::App& app, CommandAction* chosen);
// `moesim collective` (collective_command.cc): nccl-tests, predicted.
void AddCollectiveCommand(CLI::App& app, CommandAction* chosen);
int RunDefaultSimulate(CommandIo& io);

// `moesim model list | show NAME|FILE [--json] | compare A B`: the model catalog, parameters and
// FLOPs per token (sim/cli/model_command.cc).
void AddModelCommand(CLI::App& app, CommandAction* chosen);

// `moesim trace gen | import | stats`: routing trace files (sim/cli/trace_command.cc).
void AddTraceCommand(CLI::App& app, CommandAction* chosen);

// `moesim placement show SCENARIO`: the experts and replicas each EP rank holds
// (placement_command.cc).
void AddPlacementCommand(CLI::App& app, CommandAction* chosen);

// `moesim plan`: every valid parallel plan simulated for a whole step, ranked (plan_command.cc).
void AddPlanCommand(CLI::App& app, CommandAction* chosen);
// The plan table as `moesim plan` prints it: the header and the first `top` rows; and
// (--show-refused) each refused plan with the rule that refused it, in enumeration order.
void PrintPlanTable(const pb::PlanTable& t, uint32_t top, bool show_refused, CommandIo& io);
void PrintRefusedPlans(const pb::PlanTable& t, CommandIo& io);

// `moesim calibrate` (calibrate_command.cc) and `moesim validate` (validate_command.cc): hardware
// profiles fitted from measurements, and predictions checked against them.
void AddCalibrateCommand(CLI::App& app, CommandAction* chosen);
void AddValidateCommand(CLI::App& app, CommandAction* chosen);

// `moesim sweep SCENARIO --set FIELD=VALUES ...`: a scenario over a cross product of field values
// (sweep_command.cc).
void AddSweepCommand(CLI::App& app, CommandAction* chosen);

// `moesim report RESULT -o FILE.html`: a Result drawn as an HTML page; `moesim result show FILE
// [--json]`: a Result or plan table written before, printed (report_command.cc).
void AddReportCommand(CLI::App& app, CommandAction* chosen);
void AddResultCommand(CLI::App& app, CommandAction* chosen);
// `moesim export chakra SCENARIO -o DIR`: the step as Chakra execution traces for ASTRA-sim
// (export_command.cc).
void AddExportCommand(CLI::App& app, CommandAction* chosen);

}  // namespace moesim::sim
