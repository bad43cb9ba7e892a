// `moesim sweep`: one scenario run at every point of a cross product of field values, one row per
// point (total, components, bottleneck, memory, change against the first point that ran).
//
//   MOESIM_ASSIGN_OR_RETURN(SweepBase base, LoadSweepBase("scenarios/mixtral-8x7b-h100-64.pbtxt"));
//   MOESIM_ASSIGN_OR_RETURN(SweepAxis ep, ParseSetFlag("plan.ep=2,4,8"));
//   std::vector<pb::SweepRow> rows = RunSweepPoints(base, {ep}, SweepRun{.threads = 2});
//   pb::SweepTable table = MakeSweepTable(base, {ep}, Fidelity::kAnalytical, std::move(rows));
//
// Each point is what `moesim simulate` gives for the scenario with those values written in
// (sim/step/scenario_run.h: a step block's step, else the MoE layers), validated as a scenario file
// is: a point whose scenario the loader refuses gets a row with the error, located at the --set
// ("--set plan.ep=7: plan.ep = 7: ..."), and the others run. Deterministic: the same rows, bit for
// bit, on any number of threads or MPI ranks (each point is simulated alone, from its own inputs).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "proto/sweep.pb.h"
#include "sim/network/network_model.h"
#include "sim/sweep/sweep_points.h"

namespace moesim::sim {

// The scenario file at `path`, parsed (fields range-checked) but not resolved: a sweep may change
// what would not resolve as written.
StatusOr<SweepBase> LoadSweepBase(const std::string& path);

struct SweepRun {
  Fidelity fidelity = Fidelity::kAnalytical;
  FlowOptions flow;  // the flow model's tolerance (sim/network/flow_model.h), at flow fidelity
  uint32_t threads = 1;
  // Points i with i % stride == offset (an MPI rank's share); all with the defaults.
  uint32_t offset = 0, stride = 1;
  // Called from one thread now and then with the points done of this share.
  std::function<void(size_t)> progress;
};

// One point: its scenario made, resolved and simulated; the row carries the error if any step
// failed. Components in the order the run produced them; delta_pct is MakeSweepTable's.
pb::SweepRow RunSweepPoint(const SweepBase& base, const std::vector<SweepAxis>& axes, size_t point,
                           Fidelity fidelity, FlowOptions flow = {});

// The points of this share on `run.threads` threads, their rows in point order.
std::vector<pb::SweepRow> RunSweepPoints(const SweepBase& base, const std::vector<SweepAxis>& axes,
                                         const SweepRun& run);

// Every row (from any ranks, in any order) as the table: rows in point order, one component list
// for all (a component a row lacks is 0 there), the change against the first row that ran.
pb::SweepTable MakeSweepTable(const SweepBase& base, const std::vector<SweepAxis>& axes,
                              Fidelity fidelity, std::vector<pb::SweepRow> rows);

}  // namespace moesim::sim
