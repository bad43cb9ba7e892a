// What `moesim simulate` computes for a loaded scenario, as functions that a command or a sweep
// (sim/sweep/sweep.h) calls alike, so that both give the same numbers:
//
//   MOESIM_ASSIGN_OR_RETURN(LoadedScenario s, LoadScenario("scenarios/seed_example.pbtxt"));
//   MOESIM_ASSIGN_OR_RETURN(auto hardware, ScenarioHardware(s, ""));
//   if (s.spec.has_step()) {
//     MOESIM_ASSIGN_OR_RETURN(ScenarioStep step, SimulateScenarioStep(s, Fidelity::kAnalytical,
//                                                                     hardware));
//   } else {
//     MOESIM_ASSIGN_OR_RETURN(pb::Result r, SimulateScenarioLayers(s, Fidelity::kAnalytical,
//                                                                  hardware));
//   }
//
// Thread-safety: plain functions of their arguments; a LoadedScenario may be shared by threads.
#pragma once

#include <optional>
#include <string>

#include "proto/hardware.pb.h"
#include "proto/plan.pb.h"
#include "proto/result.pb.h"
#include "sim/moe/scenario_loader.h"
#include "sim/network/network_model.h"
#include "sim/step/step.h"

namespace moesim::sim {

// The profile at `override_path` (`--hardware`) when not empty, else the scenario's
// hardware_profile (relative to the scenario file), else none.
StatusOr<std::optional<pb::HardwareProfile>> ScenarioHardware(const LoadedScenario& scenario,
                                                              const std::string& override_path);

// A scenario with a step block: the whole step, checked for reportable figures.
struct ScenarioStep {
  StepConfig config;
  pb::StepResult result;
  StepReport report;        // what `result` was made of, every stage's ops included
  models::LayerWork layer;  // the MoE layer of one EP group the step priced
};
// `flow`: the flow model's options (sim/network/flow_model.h), at flow fidelity.
StatusOr<ScenarioStep> SimulateScenarioStep(const LoadedScenario& scenario, Fidelity fidelity,
                                            const std::optional<pb::HardwareProfile>& hardware,
                                            FlowOptions flow = {});

// A scenario without one: its MoE layers (a replay's steps when it replays a trace), priced by the
// network model at `fidelity`, or by `hardware`'s measured figures; with the critical path (not
// for a replay). The send matrices are there; drops, expert loads and placement are the caller's.
// A replay also fills `replay_steps`, when given, with every step's Result (SimulateReplay).
StatusOr<pb::Result> SimulateScenarioLayers(const LoadedScenario& scenario, Fidelity fidelity,
                                            const std::optional<pb::HardwareProfile>& hardware,
                                            std::vector<pb::Result>* replay_steps = nullptr,
                                            FlowOptions flow = {});

}  // namespace moesim::sim
