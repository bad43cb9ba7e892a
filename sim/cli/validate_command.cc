// `moesim validate SCENARIO... --measured RESULT... [--hardware PROFILE] [--json] [--html FILE]`:
// predicted against measured, op by op, with relative errors and their median and worst
// (sim/calibration/validation.h). The i-th --measured is a run of the i-th scenario.
#include <memory>
#include <optional>

#include "proto/atomic_file.h"
#include "proto/checked.h"
#include "sim/calibration/validation.h"
#include "sim/cli/command.h"
#include "sim/compute/profile_predict.h"
#include "sim/report/html_report.h"

namespace moesim::sim {
namespace {

struct ValidateOptions {
  std::vector<std::string> scenarios;
  std::vector<std::string> measured;
  std::string hardware;
  bool json = false;
  std::string html;  // HTML page path, or empty
};

int Run(const ValidateOptions& o, CommandIo& io) {
  if (o.measured.size() != o.scenarios.size()) {
    return Fail(io, InputError({}, "--measured", std::to_string(o.measured.size()) + " file(s)",
                               "one measured Result per scenario, in the same order",
                               std::to_string(o.scenarios.size())));
  }
  if (!o.html.empty()) {
    if (Status s = CheckOutputPath(o.html, "--html"); !s.ok()) return Fail(io, s.error());
  }
  std::optional<pb::HardwareProfile> profile;
  if (!o.hardware.empty()) {
    auto p = LoadHardwareProfile(o.hardware);
    if (!p.ok()) return Fail(io, p.error());
    profile = std::move(*p);
  }
  std::vector<LoadedScenario> scenarios;
  std::vector<MeasuredFile> measured;
  for (size_t i = 0; i < o.scenarios.size(); ++i) {
    auto s = LoadScenario(o.scenarios[i]);
    if (!s.ok()) return Fail(io, s.error());
    scenarios.push_back(std::move(*s));
    auto m = ReadMeasured(o.measured[i]);
    if (!m.ok()) return Fail(io, m.error());
    measured.push_back(std::move(*m));
  }
  std::vector<ValidationCase> cases;
  for (size_t i = 0; i < scenarios.size(); ++i) cases.push_back({&scenarios[i], &measured[i]});
  auto report = Validate(cases, profile ? &*profile : nullptr);
  if (!report.ok()) return Fail(io, report.error());
  if (Status s = CheckReportedFigures(*report, "the validation"); !s.ok()) return Fail(io, s.error());
  if (!o.html.empty()) {
    const Status written =
        WriteFileAtomically(o.html, HtmlValidationPage(*report), "the HTML report");
    if (!written.ok()) return Fail(io, written.error());
  }
  if (o.json) return PrintJson(*report, io);
  PrintValidation(*report, io.out);
  return 0;
}

}  // namespace

void AddValidateCommand(CLI::App& app, CommandAction* chosen) {
  auto o = std::make_shared<ValidateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "validate",
      "Predicted against measured, op by op (router, dispatch, expert, combine, collectives, "
      "step), with relative errors and their median and worst");
  cmd->add_option("scenarios", o->scenarios, "Scenario files (.pbtxt)")->required();
  cmd->add_option("--measured", o->measured,
                  "The measured Result of each scenario (moebench run --out), in order")
      ->required();
  cmd->add_option("--hardware", o->hardware,
                  "A hardware profile (moesim calibrate --out); without: datasheet figures only");
  cmd->add_flag("--json", o->json, "Print the report as JSON");
  cmd->add_option("--html", o->html,
                  "Also write the report as one self-contained HTML page: per op, measured and "
                  "predicted side by side with the error");
  cmd->callback([o, chosen] { *chosen = [o](CommandIo& io) { return Run(*o, io); }; });
}

}  // namespace moesim::sim
