// `moesim report RESULT.pb|RESULT.json -o FILE.html`: the HTML report (sim/report/html_report.h)
// of a Result written before, the page `moesim simulate --html` writes; a `moesim plan --json`
// table (a .json file) gives the plan page. `moesim result show FILE [--json]`: the same files
// printed, a Result as `moesim simulate` prints its phases and matrices, a plan table as `moesim
// plan` prints it.

#include <memory>
#include <string>
#include <variant>

#include "proto/atomic_file.h"
#include "sim/cli/command.h"
#include "sim/report/html_report.h"
#include "sim/report/report.h"
#include "sim/report/result_file.h"
#include "sim/step/step_report.h"

namespace moesim::sim {
namespace {

struct ReportOptions {
  std::string input;
  std::string output;
};

// The page for `path`: a Result (binary, or JSON in a .json file), or a PlanTable in JSON.
StatusOr<std::string> PageOf(const std::string& path) {
  MOESIM_ASSIGN_OR_RETURN(const ResultFile file, ReadResultFile(path));
  if (const pb::Result* result = std::get_if<pb::Result>(&file)) return HtmlResultPage(*result);
  if (const pb::StepResult* step = std::get_if<pb::StepResult>(&file)) return HtmlStepPage(*step);
  return HtmlPlanPage(std::get<pb::PlanTable>(file));
}

int Report(const ReportOptions& o, CommandIo& io) {
  if (const Status s = CheckOutputPath(o.output, "-o"); !s.ok()) return Fail(io, s.error());
  const StatusOr<std::string> page = PageOf(o.input);
  if (!page.ok()) return Fail(io, page.error());
  if (const Status s = WriteFileAtomically(o.output, *page, "the HTML report"); !s.ok())
    return Fail(io, s.error());
  return 0;
}

struct ShowOptions {
  std::string input;
  bool json = false;
};

int Show(const ShowOptions& o, CommandIo& io) {
  const StatusOr<ResultFile> file = ReadResultFile(o.input);
  if (!file.ok()) return Fail(io, file.error());
  if (const pb::Result* r = std::get_if<pb::Result>(&*file)) {
    if (o.json) return PrintJson(*r, io);
    io.out << "moesim result: " << o.input << ": " << r->scenario() << " (" << r->executor()
           << "), " << r->gpus() << " GPUs, total " << FormatNs(r->total_ns()) << "\n\n";
    PrintResultBody(*r, 0, 0, io.out);
    return 0;
  }
  if (const pb::StepResult* step = std::get_if<pb::StepResult>(&*file)) {
    if (o.json) return PrintJson(*step, io);
    // The step block's figures the report's batch and memory lines print, as the file keeps them.
    StepConfig config;
    config.global_batch = step->global_batch();
    config.seq_len = step->seq_len();
    config.micro_batch = step->micro_batch();
    config.capacity_factor = step->capacity_factor();
    PrintStepReport(*step, config, io.out);
    return 0;
  }
  const pb::PlanTable& table = std::get<pb::PlanTable>(*file);
  if (o.json) return PrintJson(table, io);
  PrintPlanTable(table, static_cast<uint32_t>(table.rows_size()), table.refused_size() > 0, io);
  if (table.refused_size() > 0) PrintRefusedPlans(table, io);
  return 0;
}

}  // namespace

void AddResultCommand(CLI::App& app, CommandAction* chosen) {
  CLI::App* result = app.add_subcommand("result", "Read a Result or plan table written before");
  result->require_subcommand(1);
  auto options = std::make_shared<ShowOptions>();
  CLI::App* show = result->add_subcommand(
      "show",
      "Print a Result (moesim simulate --json, moebench run --out) as moesim simulate prints its "
      "phases, or a plan table (moesim plan --json) as moesim plan prints it");
  show->add_option("file", options->input,
                   "Binary protobuf Result, or JSON ending .json (a Result or a plan table)")
      ->required();
  show->add_flag("--json", options->json, "Print it as JSON instead");
  show->callback(
      [options, chosen] { *chosen = [options](CommandIo& io) { return Show(*options, io); }; });
}

void AddReportCommand(CLI::App& app, CommandAction* chosen) {
  auto options = std::make_shared<ReportOptions>();
  CLI::App* cmd = app.add_subcommand(
      "report", "Draw a Result (or a plan table) as one self-contained HTML page with pictures");
  cmd->add_option("result", options->input,
                  "Result file: binary protobuf, or JSON (moesim simulate --json) ending .json")
      ->required();
  cmd->add_option("-o,--output", options->output, "HTML file to write")->required();
  cmd->callback(
      [options, chosen] { *chosen = [options](CommandIo& io) { return Report(*options, io); }; });
}

}  // namespace moesim::sim
