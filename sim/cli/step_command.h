// `moesim simulate SCENARIO` when the scenario has a `step` block: the whole step (sim/step/step.h)
// instead of one MoE layer, as a table, JSON (--json) and a Perfetto timeline (--timeline).
#pragma once

#include <optional>
#include <string>

#include "proto/hardware.pb.h"
#include "sim/cli/command.h"
#include "sim/moe/moe_layer.h"
#include "sim/moe/scenario_loader.h"

namespace moesim::sim {

// Files a step writes beside its report: the Perfetto timeline, the HTML page; empty: none.
struct StepOutputs {
  std::string timeline, html;
};

// `hardware`: a HardwareProfile whose figures replace the assumed ones (sim/step/step.h).
int RunScenarioStep(const LoadedScenario& scenario, Fidelity fidelity, FlowOptions flow, bool json,
                    const StepOutputs& outputs, const std::optional<pb::HardwareProfile>& hardware,
                    CommandIo& io);

}  // namespace moesim::sim
