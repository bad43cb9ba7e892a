// The expert FFN's grouped GEMM at fixed shapes: every expert gets `tokens_per_expert` rows, and
// GroupedSwiGlu (gate, up, silu x up, down) runs over all of them, as the expert phase of a layer
// does. `moebench gemm` sweeps shapes on the CPU kernels (Eigen) or the GPU's (gpu_kernels.h).
//
//   MOESIM_ASSIGN_OR_RETURN(pb::Result r, MeasureCpuGemms(comm, shapes, options));
//   r.phases(0).name() == "gemm";  r.phases(0).flops() == 6 * T * E * h * f;
//
// Each shape is a phase "gemm" whose layer is the shape's index and gemm_shape its shape; time as
// in `moebench run` (the slowest rank per iteration, median over iterations; every rank runs the
// same shapes at once, so with several ranks per node they share the node's cores and memory).
// FLOPs: 6*n*h*f per expert (models::ExpertFfnCost: three GEMMs of 2*n*h*f); bytes: its fp32 bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/comm/communicator.h"
#include "backend/kernels/gpu_kernels.h"
#include "proto/result.pb.h"
#include "proto/status.h"

namespace moesim::backend {

struct GemmOptions {
  uint32_t warmup = 1;
  uint32_t iterations = 5;
  uint64_t seed = 1;
  gpu::GemmApi gemm_api = gpu::GemmApi::kAuto;  // --device gpu
  // --device gpu: "bf16" (cuBLAS, gemm_api) or "fp8" (E4M3 with DeepSeek-V3's block scales through
  // cuBLASLt, a call per expert: gpu::SweepFp8GroupedGemm; hidden and ffn multiples of 128).
  std::string dtype = "bf16";
};

StatusOr<pb::Result> MeasureCpuGemms(Communicator& comm, const std::vector<pb::GemmShape>& shapes,
                                     const GemmOptions& options);

// The same on this rank's GPU through gpu::SweepGroupedGemm (bf16, cuBLAS) or, with dtype "fp8",
// gpu::SweepFp8GroupedGemm: time = median of the up projection + median of the down projection
// (the SwiGLU elementwise between them, and FP8's quantization of the activations, are not timed
// there); min and max the sums of theirs; p10/p90 are not reported (0).
StatusOr<pb::Result> MeasureGpuGemms(Communicator& comm, const std::vector<pb::GemmShape>& shapes,
                                     const GemmOptions& options);

}  // namespace moesim::backend
