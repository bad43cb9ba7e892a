#include "sim/cli/cli.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "models/synthetic.h"
#include "proto/data_dir.h"
#include "proto/did_you_mean.h"
#include "proto/serialize.h"
#include "sim/cli/command.h"

namespace moesim::sim {

Status CheckRouterGroupOptions(uint32_t groups, uint32_t top, uint32_t experts, uint32_t top_k) {
  if (groups == 0 && top == 0) return Status::Ok();
  const models::GroupLimitFault fault =
      models::CheckGroupLimit(models::GroupLimit{groups, top}, experts, top_k);
  if (fault == models::GroupLimitFault::kGroups) {
    return InputError(
        Location{}, "--router-groups", std::to_string(groups),
        "must divide the " + std::to_string(experts) + " experts into at most 64 groups",
        "a divisor of " + std::to_string(experts) + " from 1 to 64");
  }
  if (fault == models::GroupLimitFault::kTop) {
    return InputError(Location{}, "--router-group-topk", std::to_string(top),
                      "must be 1 to --router-groups and hold a token's top-k experts",
                      "groups of at least top-k = " + std::to_string(top_k) + " experts together");
  }
  return Status::Ok();
}

StatusOr<std::string> DefaultScenarioPath() {
  if (const char* env = std::getenv("MOESIM_DEFAULT_SCENARIO"); env != nullptr && *env != '\0') {
    return std::string(env);
  }
  MOESIM_ASSIGN_OR_RETURN(const std::string data, DataDir());
  return data + "/scenarios/default.pbtxt";
}

namespace {

// For arguments CLI11 did not expect: the first word that names no command where a command could
// stand, when a command's name is near it ("simulte" for "simulate", "trace stat" for "trace
// stats"), as one error line; none otherwise (CLI11's own message then).
std::optional<std::string> MistypedCommand(const CLI::App& app,
                                           const std::vector<std::string>& args) {
  const CLI::App* level = &app;
  std::string path = "moesim";
  for (const std::string& word : args) {
    if (word.empty() || word[0] == '-') continue;
    std::vector<std::string> names;
    const CLI::App* next = nullptr;
    for (const CLI::App* sub : level->get_subcommands([](const CLI::App*) { return true; })) {
      names.push_back(sub->get_name());
      if (sub->get_name() == word) next = sub;
    }
    if (next != nullptr) {
      level = next;
      path += " " + word;
      continue;
    }
    if (names.empty()) return std::nullopt;
    const std::optional<std::string> closest = ClosestName(word, names);
    if (!closest) return std::nullopt;
    return "\"" + Printable(word, 80) + "\" is not a command of " + path + " (did you mean \"" +
           *closest + "\"?); valid: " + Join(names);
  }
  return std::nullopt;
}

}  // namespace

int RunMoesim(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app{
      "moesim predicts what a Mixture-of-Experts layer costs on a GPU cluster under a parallel "
      "plan:\n"
      "the dispatch and combine all-to-alls, the expert FFNs, phase by phase.\n"
      "With no command, runs `simulate` on the default scenario.",
      "moesim"};
  app.set_version_flag("--version", "moesim 0.1.0");
  app.require_subcommand(0, 1);

  CommandAction chosen;
  AddSimulateCommand(app, &chosen);
  AddTopoCommand(app, &chosen);
  AddCollectiveCommand(app, &chosen);
  AddTraceCommand(app, &chosen);
  AddModelCommand(app, &chosen);
  AddPlanCommand(app, &chosen);
  AddSweepCommand(app, &chosen);
  AddPlacementCommand(app, &chosen);
  AddCalibrateCommand(app, &chosen);
  AddValidateCommand(app, &chosen);
  AddReportCommand(app, &chosen);
  AddResultCommand(app, &chosen);
  AddExportCommand(app, &chosen);

  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them back to front
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    // --help and --version are ParseErrors that exit 0; a word that names no command but is near
    // one ("simulte") gets the nearest, whatever CLI11 made of it (extra arguments, a missing
    // subcommand).
    if (e.get_exit_code() != 0) {
      if (std::optional<std::string> typo = MistypedCommand(app, args)) {
        err << "moesim: error: " << *typo << "\n";
        return 2;
      }
    }
    const int code = app.exit(e, out, err);
    return code == 0 ? 0 : 2;
  }
  CommandIo io{out, err};
  return chosen ? chosen(io) : RunDefaultSimulate(io);
}

StatusOr<pb::ExpertPlacementSpec> ParsePlacementFlag(const std::string& text) {
  pb::ExpertPlacementSpec p;
  if (text == "contiguous") return p;
  if (text == "round-robin") {
    p.set_kind(pb::ExpertPlacementSpec::ROUND_ROBIN);
    return p;
  }
  if (text == "eplb" || text.starts_with("eplb:")) {
    p.set_kind(pb::ExpertPlacementSpec::EPLB);
    unsigned redundant = 0, groups = 1;
    const int n = text == "eplb" ? 0 : std::sscanf(text.c_str() + 5, "%u:%u", &redundant, &groups);
    if (text == "eplb" || n >= 1) {
      p.set_redundant_experts(redundant);
      p.set_num_groups(groups);
      return p;
    }
  }
  if (text.ends_with(".csv")) {
    p.set_kind(pb::ExpertPlacementSpec::FROM_FILE);
    p.set_file(text);
    return p;
  }
  return InputError({}, "--placement", text, "not a placement",
                    "contiguous, round-robin, eplb[:REDUNDANT[:GROUPS]] or FILE.csv "
                    "(layer,expert,ep_rank)");
}

int Fail(CommandIo& io, const Error& error) {
  io.err << "moesim: error: " << error.message() << "\n";
  return 1;
}

int PrintJson(const google::protobuf::Message& message, CommandIo& io) {
  const StatusOr<std::string> text = DeterministicJson(message);
  if (!text.ok()) return Fail(io, text.error());
  io.out << *text;
  return 0;
}

}  // namespace moesim::sim
