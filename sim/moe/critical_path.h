// Who finishes last, and why: the per-rank critical path through a run's MoE layers.
//
// A Result times each phase as its slowest rank (the phases table: a barrier between phases).
// Real ranks do not wait for a barrier: each starts a phase as soon as its own inputs are there.
// Here, with each rank's own time in each phase (Phase.rank_time_ns) and who sends to whom (the
// layer's dispatch matrix), rank r
//   routes      when its previous layer's combine is done at r (0 for the first layer);
//   dispatches  once every rank sending it tokens has routed: its dispatch ends
//               max(r's and its senders' router ends) + r's dispatch time;
//   computes    its experts when its dispatch has ended;
//   combines    once every rank holding its tokens' experts has computed: its combine ends
//               max(r's and those ranks' expert ends) + r's combine time.
// The rank whose last combine ends latest finishes last; walking back through what each step
// waited for gives the critical path. Its end is at most the phases' sum (the barrier total):
// every step starts no later than under barriers (up to the rounding of each rank's phase time
// to whole ns, 1 ns per phase).
//
// An approximation where it matters to say so: a rank's all-to-all time is taken as its own
// (Phase.rank_time_ns: its bytes over its links, as the phase model timed it), starting when its
// last sender is ready, not re-solved for the ranks that actually overlap.
//
//   pb::Result r = SimulateMoeLayers(cluster, workload);
//   AddCriticalPath(workload.layers, r);   // fills r.critical_path(), r.dataflow_total_ns()
#pragma once

#include <vector>

#include "models/dispatch.h"
#include "proto/result.pb.h"

namespace moesim::sim {

// Adds the critical path to `result` when every phase of every layer in `layers` is there with
// one time per rank of the dispatch matrix; otherwise leaves it without (a replay's phases, a
// Result of other phases).
void AddCriticalPath(const std::vector<models::LayerWork>& layers, pb::Result& result);

}  // namespace moesim::sim
