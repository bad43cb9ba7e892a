// A Result as a timeline in Chrome trace event JSON, for Perfetto (ui.perfetto.dev) or
// chrome://tracing: one process per node, one track per GPU with its phases (each GPU's own time in
// each phase; phases start together, after the slowest GPU of the phase before), and one counter
// track per link class with the bytes that class carried in each phase, so a user sees which GPU
// and which kind of link held a phase up.
//
//   WriteTimeline(result, cluster, out);   // moesim simulate SCENARIO --timeline trace.json
#pragma once

#include <ostream>
#include <vector>

#include "proto/result.pb.h"
#include "topology/cluster.h"

namespace moesim::sim {

void WriteTimeline(const pb::Result& result, const topology::Cluster& cluster, std::ostream& out);

// A replayed trace's every step (SimulateReplay's `every_step`), one after another, each phase
// named with its step ("step 3: dispatch L0"), and one more process with a slice per step.
void WriteReplayTimeline(const std::vector<pb::Result>& steps, const topology::Cluster& cluster,
                         std::ostream& out);

}  // namespace moesim::sim
