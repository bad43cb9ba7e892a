// `moesim report RESULT.pb|RESULT.json -o FILE.html`: the HTML report (sim/report/html_report.h)
// of a Result written before, the page `moesim simulate --html` writes; a `moesim plan --json`
// table (a .json file) gives the plan page.

#include <memory>
#include <string>
#include <variant>

#include "proto/atomic_file.h"
#include "sim/cli/command.h"
#include "sim/report/html_report.h"
#include "sim/report/result_file.h"

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

}  // namespace

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
