#include "sim/cli/step_command.h"

#include <cmath>
#include <sstream>

#include "proto/atomic_file.h"
#include "proto/checked.h"
#include "sim/report/html_report.h"
#include "sim/step/step.h"
#include "sim/step/step_report.h"

namespace moesim::sim {

int RunScenarioStep(const LoadedScenario& s, Fidelity fidelity, bool json,
                    const StepOutputs& outputs, const std::optional<pb::HardwareProfile>& hardware,
                    CommandIo& io) {
  auto fail = [&](const Error& e) {
    io.err << "moesim: error: " << e.message() << "\n";
    return 1;
  };
  const models::Workload& w = s.workload;
  auto config = StepConfigFromSpec(s.spec.step(), s.file, fidelity);
  if (!config.ok()) return fail(config.error());
  config->hardware = hardware;
  if (auto k = KernelModel::Defaults(s.cluster.gpu_spec(), w.model.dtype(), config->expert_gemm,
                                     s.file.Locate("step.expert_gemm"));
      !k.ok()) {
    return fail(k.error());
  }
  auto layer = StepMoeLayer(w.model, w.plan, s.spec.routing(), s.spec.plan().placement(),
                            s.cluster.gpus_per_node(), *config, &s.file);
  if (!layer.ok()) return fail(layer.error());
  auto report = SimulateStep(s.cluster, w.model, w.plan, *layer, *config);
  if (!report.ok()) return fail(report.error());
  const models::MemoryBreakdown memory =
      StepMemory(w.model, w.plan, *config, report->micro_batches, *layer);
  pb::StepResult result =
      ToStepResult(*report, w.plan, memory,
                   static_cast<uint64_t>(std::llround(s.cluster.gpu_spec().hbm_gb * 1e9)));
  result.set_scenario(w.name);
  result.set_model(w.model.name());
  result.set_fidelity(std::string(ToString(fidelity)));
  if (const Status sane = CheckReportedFigures(result, "the step of scenario " + w.name);
      !sane.ok()) {
    return fail(sane.error());
  }
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
    PrintStepReport(result, *config, io.out);
    return 0;
  }
  return PrintJson(result, io);
}

}  // namespace moesim::sim
