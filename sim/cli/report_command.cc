// `moesim report RESULT.pb|RESULT.json -o FILE.html`: the HTML report (sim/report/html_report.h)
// of a Result written before, the page `moesim simulate --html` writes; a `moesim plan --json`
// table (a .json file) gives the plan page.

#include <google/protobuf/util/json_util.h>

#include <memory>
#include <string>

#include "proto/atomic_file.h"
#include "proto/input_file.h"
#include "proto/protobuf_log.h"
#include "sim/cli/command.h"
#include "sim/report/html_report.h"

namespace moesim::sim {
namespace {

struct ReportOptions {
  std::string input;
  std::string output;
};

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The page for `path`: a Result (binary, or JSON in a .json file), or a PlanTable in JSON.
StatusOr<std::string> PageOf(const std::string& path) {
  MOESIM_ASSIGN_OR_RETURN(const std::string bytes, ReadInputFile(path));
  std::string why;
  if (EndsWith(path, ".json")) {
    MOESIM_RETURN_IF_ERROR(CheckJsonDepth(bytes, Location{path, 1, 1}));
    pb::Result result;
    const auto as_result = google::protobuf::util::JsonStringToMessage(bytes, &result);
    if (as_result.ok()) return HtmlResultPage(result);
    pb::PlanTable table;
    if (google::protobuf::util::JsonStringToMessage(bytes, &table).ok()) return HtmlPlanPage(table);
    const std::string said(as_result.message());
    why = ": " + Printable(std::string_view(said).substr(0, said.find('\n')), 200);
  } else {
    ProtobufLogCapture protobuf_says;
    pb::Result result;
    if (result.ParseFromString(bytes)) return HtmlResultPage(result);
    why = protobuf_says.Reason();
  }
  return InputError(Location{path}, "", "", "not a Result (proto/result.proto)" + why,
                    "what `moesim simulate --json` prints, in a file ending .json, a binary "
                    "Result (`moebench run --out`), or `moesim plan --json` in a .json file");
}

int Report(const ReportOptions& o, CommandIo& io) {
  if (const Status s = CheckOutputPath(o.output, "-o"); !s.ok()) {
    io.err << "moesim: error: " << s.error().message() << "\n";
    return 1;
  }
  const StatusOr<std::string> page = PageOf(o.input);
  if (!page.ok()) {
    io.err << "moesim: error: " << page.error().message() << "\n";
    return 1;
  }
  if (const Status s = WriteFileAtomically(o.output, *page, "the HTML report"); !s.ok()) {
    io.err << "moesim: error: " << s.error().message() << "\n";
    return 1;
  }
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
