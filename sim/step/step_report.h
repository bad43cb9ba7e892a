// What `moesim simulate` shows for a scenario with a `step` block: the step report as a table, as a
// StepResult (JSON), and as a Perfetto timeline of the whole 1F1B pipeline.
//
//   PrintStepReport(result, out);
//   WriteStepTimeline(result, pipeline_stages, out);   // --timeline step.json
#pragma once

#include <ostream>

#include "models/memory.h"
#include "models/plan.h"
#include "proto/plan.pb.h"
#include "sim/step/step.h"

namespace moesim::sim {

std::string_view ToString(StepMode mode);

pb::StepResult ToStepResult(const StepReport& report, const models::Plan& plan,
                            const models::MemoryBreakdown& memory, uint64_t gpu_memory_bytes);

void PrintStepReport(const pb::StepResult& result, const StepConfig& config, std::ostream& out);

// One process per pipeline stage with a compute and a communication track: each micro-batch's
// forward and backward in 1F1B order (a stage starts a forward when the stage before has finished
// it, a backward when the stage after has), then the gradient reduction and the optimizer; and
// one more process with the slowest stage's first micro-batch op by op.
void WriteStepTimeline(const pb::StepResult& result, std::ostream& out);

}  // namespace moesim::sim
