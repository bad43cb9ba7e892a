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
  bool overlapped = false;  // in a steady pair that runs in P
  int64_t start_ns = 0, end_ns = 0;
};
// The pipeline the report prices, laid out (sim/step/schedule.h, LayOutPipeline): 1F1B's shape,
// every stage at the slowest device's F, B and P, the schedule's bubble as warm-up and drain.
// It ends at the report's pipeline_ns, to the rounding of F, B, P and the bubble to whole ns
// (tests/step_timeline_end_test.cc holds every scenario to it). Empty without stage times.
std::vector<PipelineSlice> PipelineSlices(const pb::StepResult& result);

// One process per pipeline stage with a compute and a communication track: each micro-batch's
// forward and backward (PipelineSlices), then the gradient reduction and the optimizer; and
// one more process with the slowest stage's first micro-batch op by op.
void WriteStepTimeline(const pb::StepResult& result, std::ostream& out);

}  // namespace moesim::sim
