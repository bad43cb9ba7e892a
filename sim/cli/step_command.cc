#include "sim/cli/step_command.h"

#include <sstream>

#include "proto/atomic_file.h"
#include "sim/report/html_report.h"
#include "sim/step/scenario_run.h"
#include "sim/step/step_report.h"

namespace moesim::sim {

int RunScenarioStep(const LoadedScenario& s, Fidelity fidelity, FlowOptions flow, bool json,
                    const StepOutputs& outputs, const std::optional<pb::HardwareProfile>& hardware,
                    CommandIo& io) {
  auto fail = [&](const Error& e) {
    io.err << "moesim: error: " << e.message() << "\n";
    return 1;
  };
  auto step = SimulateScenarioStep(s, fidelity, hardware, flow);
  if (!step.ok()) return fail(step.error());
  const pb::StepResult& result = step->result;
  if (!outputs.timeline.empty()) {
    std::ostringstream text;
    WriteStepTimeline(result, text);
    const Status written = WriteFileAtomically(outputs.timeline, text.str(), "the timeline");
    if (!written.ok()) return fail(written.error());
  }
  if (!outputs.html.empty()) {
    const Status written =
        WriteFileAtomically(outputs.html, HtmlStepPage(result), "the HTML report");
    if (!written.ok()) return fail(written.error());
  }
  if (!json) {
    PrintStepReport(result, step->config, io.out);
    return 0;
  }
  return PrintJson(result, io);
}

}  // namespace moesim::sim
