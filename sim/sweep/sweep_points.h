// The points of a sweep: each `--set FIELD=VALUES` an axis, the points their cross product, and the
// scenario of each point (sim/sweep/sweep.h runs them).
//
//   MOESIM_ASSIGN_OR_RETURN(SweepAxis nic, ParseSetFlag("cluster.node.nics.gbit_per_s=1:8:x2"));
//   MOESIM_ASSIGN_OR_RETURN(SweepAxis ep, ParseSetFlag("plan.ep=8,16"));
//   PointCount({nic, ep})                     // 4 x 2 = 8
//   PointValues({nic, ep}, 1)                 // {0, 1}: nic 1, ep 16 (the last flag fastest)
//   MOESIM_ASSIGN_OR_RETURN(PointSpec p, MakePoint(base, {nic, ep}, 1));
//
// Values: a list "a,b,c" whose items are values or, for number fields, ranges: "start:stop:step"
// (start + i x step for i = 0, 1, ... up to stop, stop included when it lands on a step within
// 1e-9 of the step; printed with as many decimals as start and step have, so 0:1:0.1 gives 0.3,
// not 0.30000000000000004) and "start:stop:xF" (start, start x F, ... up to stop, F > 1).
//
// Presets and catalog models: a path into cluster.node.* while the cluster names a node_preset
// first writes the preset out as the node block that builds the same node (topology/presets.h
// NodeSpecOf); a path into model_spec.* while the scenario names a catalog model first copies the
// catalog's spec in. Setting cluster.node_preset drops a node block or NCCL topology the scenario
// had. Thread-safety: plain functions; MakePoint reads the catalog (files) and may run on threads.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "proto/scenario.pb.h"
#include "proto/status.h"
#include "proto/text_file.h"
#include "sim/sweep/sweep_field.h"

namespace moesim::sim {

// At most this many values on one axis and points in a sweep: a typo in a range (0:1e9:1) fails at
// once instead of filling the memory.
inline constexpr size_t kMaxSweepPoints = 100000;

struct SweepAxis {
  FieldPath path;
  std::vector<std::string> values;  // ranges expanded, in order
  // "--set plan.ep=VALUE" with each value: where a point's errors about this field are located.
  Location Where(const std::string& value) const;
};

// "FIELD=VALUES" (the text after --set): the path against pb::Scenario, the values expanded, each
// checked for its form and range (and a node preset or catalog model name for those fields).
StatusOr<SweepAxis> ParseSetFlag(std::string_view text);

// One item of a list for a number field: "start:stop:step" or "start:stop:xF" expanded; anything
// else is returned as it is. `integer`: the field takes whole numbers.
StatusOr<std::vector<std::string>> ExpandRange(const std::string& item, bool integer,
                                               const Location& where);

// Points of the cross product (1 with no axes); an error past kMaxSweepPoints, or when two axes
// name the same field.
StatusOr<size_t> PointCount(const std::vector<SweepAxis>& axes);
// Point `point`'s value index on each axis: the last axis varies fastest.
std::vector<size_t> PointValues(const std::vector<SweepAxis>& axes, size_t point);

// The scenario a sweep starts from: as parsed, with the file that locates its fields.
struct SweepBase {
  pb::Scenario spec;
  TextFile file;
};

// A point's scenario: the base with each axis' value set, in flag order, and a file that locates
// each set field (and a preset or catalog entry written out for it) at its --set.
struct PointSpec {
  pb::Scenario spec;
  TextFile file;
};
StatusOr<PointSpec> MakePoint(const SweepBase& base, const std::vector<SweepAxis>& axes,
                              size_t point);

}  // namespace moesim::sim
