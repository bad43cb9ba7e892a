// Reading a Result or a plan table that moesim or moebench wrote before: what `moesim report`
// draws and the Python module's moesim.read_result returns.
//
//   MOESIM_ASSIGN_OR_RETURN(ResultFile file, ReadResultFile("seed.json"));
//   if (const pb::Result* result = std::get_if<pb::Result>(&file)) ...
//
// A file ending .json is JSON: a Result (`moesim simulate --json`), else a PlanTable (`moesim plan
// --json`), else a StepResult (`moesim simulate --json` of a scenario with a step block); any
// other file is a binary Result (`moebench run --out`). A file that is none of these is an error
// naming it, what protobuf said, and what is valid. Thread-safe (no state).
#pragma once

#include <string>
#include <variant>

#include "proto/plan.pb.h"
#include "proto/result.pb.h"
#include "proto/status.h"

namespace moesim::sim {

using ResultFile = std::variant<pb::Result, pb::PlanTable, pb::StepResult>;

StatusOr<ResultFile> ReadResultFile(const std::string& path);

}  // namespace moesim::sim
