// `moebench run --device gpu`: a scenario's MoE layers on GPUs, one rank per GPU, the experts
// exchanged over NCCL, through the staged host API of backend/kernels/gpu_kernels.h (GpuEpLayer:
// bf16 activations and weights, fp32 accumulation, CUDA events; --dtype fp8: FP8 expert GEMMs).
//
//   mpirun -np 8 moebench run SCENARIO --device gpu     # one process per GPU (MPI or srun)
//   moebench run SCENARIO --device gpu --gpus 8         # one process, one thread per GPU
//   moebench run SCENARIO --device gpu --gpus 1         # one GPU: NCCL with one rank
//
// Per rank and layer, in DeepEP's protocol, with the layout of backend/kernels/rank_layout.h
// (the CPU path's, so both move the same rows in the same order):
//   router    router top-k on the device over logits masked to the scenario's chosen experts
//             (every other logit -1e30, so the GPU picks exactly the scenario's routing, with
//             Mixtral's weights: softmax over the chosen), each slot's bucket (destination rank,
//             local expert), the stable permutation and the rows copied into send order; the
//             counts come back to the host.
//   dispatch  notify (ncclAlltoAll of the per-(rank, expert) counts), the rows (grouped
//             ncclSend/ncclRecv; ncclAlltoAll where the scenario's splits are all equal), the
//             regroup to expert-major order.
//   expert    gate/up grouped GEMM (cuBLAS), SwiGLU, down grouped GEMM of the local experts.
//   combine   regroup back, the rows back over NCCL (the transpose), the weighted unpermute.
// As on the CPU path, each phase starts after a host barrier with the GPU idle and is timed
// between CUDA events on the rank's stream; a phase's time in an iteration is its slowest rank's,
// and the Result holds the median over iterations with p10/p90/min/max (run_result.h). Warm-up
// iterations first, untimed.
//
// --check first runs each layer once on poisoned buffers and compares each token's output with
// the CPU fp32 reference (backend/run/layer_check.h) within kGpuRelativeErrorBound: bf16 keeps 8
// significant bits (u = 2^-9 relative rounding), and the activations, SwiGLU intermediates and
// outputs are each rounded to it, a few u per step. It also checks that the GPU's send counts
// equal the scenario's (its send-matrix row). No row stamps here: bf16 holds token indices
// exactly only to 256.
//
// Errors: a rank count that does not fit the plan, more GPUs on a node than are visible (the
// message says how many are), out of device memory (the buffer and the bytes needed), any CUDA,
// cuBLAS or NCCL failure (host:file:line). A dead or stalled peer is ended by the caller's
// watchdog (run_command.cc, --timeout-s), which sees progress before every phase.
//
// Memory: one GpuEpLayer per layer, each with its rank's expert weights (a real model shares
// nothing between layers either).
//
// Status: compiled with CUDA 13 and NCCL. On one H200 the bf16 path ran with --gpus 1 (--check
// passed, results/gpu/h200-2026-11-28); several ranks and --dtype fp8 have not run on a GPU yet
// (backend/gpu-check.sh runs both kinds on one GPU).
#pragma once

#include <optional>

#include "backend/comm/communicator.h"
#include "backend/run/bench_scenario.h"
#include "backend/run/moe_run.h"

namespace moesim::backend {

inline constexpr double kGpuRelativeErrorBound = 3e-2;
// --dtype fp8, as a share of the largest output of the layer on the rank (not of the token's own:
// FP8's error scales with the terms a GEMM sums, so a token whose output cancels errs by more than
// its own largest value). E4M3 keeps 4 significant bits (2^-4 relative rounding) where bf16 keeps
// 8, on both operands of both GEMMs: the check's inputs through the CPU emulation of the FP8
// experts (Fp8ExpertFfnReference) err by 11 % of the largest output at hidden 512, ffn 256
// (tests/backend_fp8_test.cc), less on wider GEMMs (5.5-9.7 % at hidden 4096-7168, ffn 256-2048:
// moebench_tests "[.fp8-shapes]" -s). A wrong scale or layout is off by about the output itself.
inline constexpr double kGpuFp8RelativeErrorBound = 0.25;

// comm: the MPI world (one process per GPU), or a world of one with `gpus` = N > 1 to drive N
// GPUs from threads of this process. `gpus`, when given with several MPI ranks, must equal them.
StatusOr<RunReport> RunOnGpu(const BenchScenario& s, Communicator& comm,
                             std::optional<uint32_t> gpus, const RunOptions& options);

}  // namespace moesim::backend
