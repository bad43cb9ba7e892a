// How the expert GEMMs are issued (gpu_kernels.h): names, and what `auto` picks. Plain C++, built
// with and without CUDA.
#include "backend/kernels/gpu_kernels.h"

namespace moesim::backend::gpu {

const char* GemmApiName(GemmApi api) {
  switch (api) {
    case GemmApi::kGroupedBatched:
      return "cublasGemmGroupedBatchedEx";
    case GemmApi::kPerExpertLoop:
      return "cublasGemmEx loop";
    case GemmApi::kAuto:
      break;
  }
  return "auto";
}

GemmApi ResolveGemmApi(GemmApi api, std::span<const uint64_t> offsets) {
  if (api != GemmApi::kAuto) return api;
  uint64_t rows = 0, experts = 0;
  for (size_t e = 0; e + 1 < offsets.size(); ++e) {
    const uint64_t r = offsets[e + 1] - offsets[e];
    rows += r;
    experts += r > 0;
  }
  // rows / experts < kLoopMinRowsPerExpert, in integers.
  const bool small = rows < kLoopMinRowsPerExpert * experts;
  return experts >= kGroupedMinExperts && small ? GemmApi::kGroupedBatched
                                                : GemmApi::kPerExpertLoop;
}

}  // namespace moesim::backend::gpu
