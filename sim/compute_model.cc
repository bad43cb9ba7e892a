#include "sim/compute_model.h"

#include <algorithm>
#include <cmath>

namespace moesim::sim {

Rate PeakFlops(const topology::GpuSpec& gpu, pb::DType dtype) {
  switch (dtype) {
    case pb::FP8:
      return gpu.fp8_flops;
    case pb::FP32:
      return gpu.fp32_flops;
    default:
      return gpu.bf16_flops;  // BF16 and FP16 run at the same tensor-core rate
  }
}

Duration ComputeTime(const topology::GpuSpec& gpu, pb::DType dtype, uint64_t flops,
                     uint64_t bytes) {
  if (flops == 0 && bytes == 0) return Duration();
  const auto scaled = [](Rate r, double efficiency) {
    return Rate::PerSecond(static_cast<uint64_t>(std::llround(r.per_second() * efficiency)));
  };
  const Duration math = TimeFor(flops, scaled(PeakFlops(gpu, dtype), kGemmEfficiency));
  const Duration memory = TimeFor(bytes, scaled(gpu.hbm_bandwidth, kMemoryEfficiency));
  return std::max(math, memory) + kLaunchOverhead;
}

}  // namespace moesim::sim
