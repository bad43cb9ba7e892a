// What `moesim simulate` shows for a scenario with a `step` block: the step report as a table, as a
// StepResult (JSON), and as a Perfetto timeline of the whole 1F1B pipeline.
//
//   PrintStepReport(result, out);
//   WriteStepTimeline(result, pipeline_stages, out);   // --timeline step.json
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "models/memory.h"
#include "models/plan.h"
#include "proto/plan.pb.h"
#include "sim/step/step.h"

namespace moesim::sim {

std::string_view ToString(StepMode mode);

pb::StepResult ToStepResult(const StepReport& report, const models::Plan& plan,
                            const models::MemoryBreakdown& memory, uint64_t gpu_memory_bytes);

void PrintStepReport(const pb::StepResult& result, const StepConfig& config, std::ostream& out);

// One micro-batch on the slowest stage, summed by (pass, op) in the order they first run.
struct OpSum {
  std::string pass, name;
  uint32_t count = 0;
  int64_t ns = 0;
  bool communication = false;
};
std::vector<OpSum> SumOps(const pb::StepResult& result);

// One forward or backward of one micro-batch on one pipeline stage, in ns from the step's start.
struct PipelineSlice {
  uint32_t stage = 0;
  bool forward = true;
  uint32_t micro_batch = 0;
  int64_t start_ns = 0, end_ns = 0;
};
// The pipeline as 1F1B runs it: stage s does min(m, p - s - 1) warm-up forwards, then alternates a
// forward and a backward, then drains the backwards (inference: forwards only); a stage starts a
// forward when the stage before has finished it, a backward when the stage after has. Each slice
// lasts the stage's forward or backward time (at least 1 ns). Slices in the order they are
// placed: stage by stage, as far as each can go, sweeping until all are placed.
std::vector<PipelineSlice> PipelineSlices(const pb::StepResult& result);

// One process per pipeline stage with a compute and a communication track: each micro-batch's
// forward and backward (PipelineSlices), then the gradient reduction and the optimizer; and
// one more process with the slowest stage's first micro-batch op by op.
void WriteStepTimeline(const pb::StepResult& result, std::ostream& out);

}  // namespace moesim::sim
