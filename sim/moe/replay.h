// Routing replayed from a trace, step after step (a step is one training iteration): each step's
// MoE layers are simulated like any scenario's, and the Result describes the slowest step, with
// every step's total beside it.
//
//   pb::Result r = SimulateReplay(*MakeNetworkModel(cluster, Fidelity::kAnalytical), workload);
//   r.steps(i).total_ns();   // step i of the trace
//   r.replayed_step();       // the slowest step, whose phases and matrices r holds
#pragma once

#include <vector>

#include "sim/moe/moe_layer.h"

namespace moesim::sim {

// Requires workload.replay to be non-empty (routing from a trace). `every_step`, when given,
// receives each step's own Result in trace order (replayed_step set to its step), for a timeline
// of the whole replay.
pb::Result SimulateReplay(const NetworkModel& net, const models::Workload& workload,
                          std::vector<pb::Result>* every_step = nullptr);

}  // namespace moesim::sim
