// `moebench run --device gpu`: a scenario's MoE layers on a GPU through the CUDA kernels' host API
// (backend/kernels/gpu_kernels.h: bf16 activations and weights, fp32 accumulation, CUDA events).
//
// What runs today: a one-GPU scenario (cluster.gpus = 1) in one process. The scenario's routing is
// imposed on the GPU router by masking every logit but the chosen experts' to -1e30, so the GPU's
// softmax top-k picks exactly the scenario's experts, with Mixtral's weights (softmax over the
// chosen). Phases: router = router + permutation + permute kernels; dispatch and combine move
// nothing between ranks (one rank) and combine is the weighted-sum kernel; expert = the up GEMM,
// SwiGLU and down GEMM. Times are gpu_kernels' medians over the iterations (its Benchmark reports
// no spread, so p10 = p90 = min = max = median).
//
// Not yet: several GPUs. The host API runs a whole layer on one device and exposes no buffer
// between permute and the expert GEMMs, so the NCCL dispatch cannot be spliced in; RunOnGpu says
// so. `moebench a2a --device gpu` measures the NCCL all-to-all(v) and `moebench gemm --device gpu`
// the experts meanwhile.
//
// --check compares each token's output with the CPU fp32 reference (backend/layer_check.h) within
// kGpuRelativeErrorBound: bf16 keeps 8 significant bits (u = 2^-9 relative rounding), and the
// activations, SwiGLU intermediates and outputs are each rounded to it, a few u per step.
#pragma once

#include <optional>

#include "backend/bench_scenario.h"
#include "backend/communicator.h"
#include "backend/moe_run.h"

namespace moesim::backend {

inline constexpr double kGpuRelativeErrorBound = 3e-2;

StatusOr<RunReport> RunOnGpu(const BenchScenario& s, Communicator& comm,
                             std::optional<uint32_t> gpus, const RunOptions& options);

}  // namespace moesim::backend
