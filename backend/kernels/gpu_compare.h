// Every CUDA kernel of one MoE layer against the CPU reference, on fresh random inputs, with the
// device outputs poisoned (NaN) before the run so that an unwritten element shows.
//
//   MOESIM_ASSIGN_OR_RETURN(std::vector<KernelCheck> checks, CompareWithCpu(CompareConfig{}));
//   for (const KernelCheck& c : checks) if (!c.pass) ...
//
// Each kernel is fed the GPU's own upstream outputs (widened to float), so that one kernel's error
// does not hide or inflate another's; "layer" then runs the whole CPU pipeline from the inputs.
// Both sides start from the same bf16-rounded activations and weights.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/kernels/cpu_kernels.h"
#include "backend/kernels/gpu_kernels.h"
#include "proto/status.h"

namespace moesim::backend::gpu {

struct KernelCheck {
  std::string kernel;        // router, permutation, permute, grouped_swiglu, combine, layer
  double max_rel_error = 0;  // max |gpu - cpu| / max |cpu| over the output (scale-relative)
  double rms_rel_error = 0;  // ||gpu - cpu||_2 / ||cpu||_2
  uint64_t mismatches = 0;   // integer outputs (expert ids, rows, counts) that differ
  uint64_t nans = 0;         // NaN in a GPU output (a poisoned element left unwritten)
  double bound = 0;          // pass needs max_rel_error <= bound, no mismatch, no NaN
  bool pass = false;
};

struct CompareConfig {
  std::string name = "mixtral-like";
  uint32_t tokens = 256, hidden = 512, ffn = 1024;
  RouterConfig router{.num_experts = 8, .top_k = 2};
  // The last `empty_experts` experts get logit -30, so they receive no token (empty buckets).
  uint32_t empty_experts = 0;
  GemmApi gemm = GemmApi::kGroupedBatched;
  uint64_t seed = 1;
  double bound = 1e-2;         // bf16 outputs: grouped SwiGLU, combine, layer
  double router_bound = 1e-5;  // fp32 router weights (expf differs between host and device)
  int device = 0;
};

StatusOr<std::vector<KernelCheck>> CompareWithCpu(const CompareConfig& config);

}  // namespace moesim::backend::gpu
