// `moesim simulate SCENARIO` when the scenario has a `step` block: the whole step (sim/step.h)
// instead of one MoE layer, as a table, JSON (--json) and a Perfetto timeline (--timeline).
#pragma once

#include <string>

#include "sim/command.h"
#include "sim/moe_layer.h"
#include "sim/scenario_loader.h"

namespace moesim::sim {

int RunScenarioStep(const LoadedScenario& scenario, Fidelity fidelity, bool json,
                    const std::string& timeline, CommandIo& io);

}  // namespace moesim::sim
