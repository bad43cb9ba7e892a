// backend/run/ owns one MoE layer run for real on CPU or GPU ranks: inputs, the rank's layer,
// checks and measured Results. It may include backend/comm/, backend/kernels/, the timing of
// backend/bench/time_stats.h, and topology/, models/, proto/; never sim/.
//
// Running a scenario's MoE layers for real on the CPU, one rank per process, and measuring them:
// the heart of `moebench run`.
//
//   RunOptions options;  options.iterations = 20;  options.check = true;
//   MOESIM_ASSIGN_OR_RETURN(RunReport report, RunMoeLayers(scenario, comm, options));
//   report.result;         // rank 0: the measured Result (executor "measured"); elsewhere empty
//
// Per iteration, per layer, the four phases run in order (backend/run/moe_layer_rank.h): router
// (logits, combine weights, layout and permute), dispatch (counts, rows, regroup), expert (grouped
// SwiGLU), combine (rows back, weighted sum). Each is timed on every rank from a barrier to its
// end with the steady clock; a phase's time in an iteration is its slowest rank's (as the
// simulator's Phase.time_ns), and the Result reports the median over the timed iterations with
// p10/p90/min/max, and each rank's own median. Warm-up iterations run first, untimed.
//
// With `check`, one untimed pass first verifies every layer on every rank
// (backend/run/layer_check.h) and the run fails if any rank finds a fault.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "backend/comm/communicator.h"
#include "backend/kernels/gpu_kernels.h"
#include "backend/run/bench_scenario.h"
#include "proto/result.pb.h"
#include "proto/status.h"

namespace moesim::backend {

struct RunOptions {
  uint32_t warmup = 2;       // untimed iterations
  uint32_t iterations = 10;  // timed iterations, >= 1
  bool check = false;
  uint64_t seed = 1;                            // inputs and weights (backend/run/layer_inputs.h)
  gpu::GemmApi gemm_api = gpu::GemmApi::kAuto;  // --device gpu: how the expert GEMMs are issued
  bool fp8 = false;  // --device gpu: FP8 expert GEMMs (GpuEpLayerConfig::fp8), bf16 otherwise
  // Called before each step with its name ("layer 0 dispatch, iteration 3"); may be empty.
  std::function<void(const std::string&)> progress;
  // Called after each whole iteration (warm-up ones included) with how many are done of
  // warmup + iterations; may be empty. moebench run's progress lines.
  std::function<void(uint32_t done, uint32_t total)> iteration_done;
};

struct CheckReport {
  bool ran = false;
  bool dispatch_checked = false;  // stamps verified after dispatch (the CPU path)
  uint64_t rows_checked = 0;      // received rows verified, all ranks and layers
  double max_relative_error = 0;  // output against the reference, all ranks and layers
  double bound = 0;               // the relative error allowed
};

struct RunReport {
  pb::Result result;  // complete on rank 0 only
  CheckReport check;  // complete on rank 0 only
};

// The error a rank returns when it stopped because another rank failed (that rank prints why).
inline constexpr std::string_view kStoppedByPeer = "stopped: another rank failed (see its message)";

// Every rank learns whether any rank's `mine` failed: the failing rank gets its own message with
// "rank R: " in front, the others kStoppedByPeer. Collective.
Status AgreeAcrossRanks(Communicator& comm, const Status& mine);

// Requires comm.size() == s.ranks (CheckRankCount). Errors found on one rank (out of memory, a
// failed check) are returned there with "rank R: " in front; the other ranks return
// kStoppedByPeer, so no rank is left waiting.
StatusOr<RunReport> RunMoeLayers(const BenchScenario& s, Communicator& comm,
                                 const RunOptions& options);

}  // namespace moesim::backend
