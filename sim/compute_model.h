// What a compute op costs on one GPU: max(FLOPs / achieved rate, bytes / achieved HBM bandwidth)
// plus one kernel launch. "Achieved" is the datasheet peak (topology/gpu_specs.cc) times an
// efficiency. The efficiencies and the launch overhead below are ASSUMPTIONS, typical of large
// bf16 GEMMs and streaming kernels on Hopper, until calibration (moesim calibrate) fits them from
// measured runs:
//   GEMM 70% of peak, memory-bound kernels 80% of HBM bandwidth, 4 us per launch.
// The MoE-layer report of `moesim simulate` (sim/moe_layer.h) uses raw peaks and no launch, so
// that its hand-computed seed figures stay exact; whole steps use these.
//
//   Duration t = ComputeTime(gpu, pb::BF16, /*flops=*/2 * n * h * f, /*bytes=*/...);
#pragma once

#include <cstdint>

#include "proto/model.pb.h"
#include "proto/units.h"
#include "topology/gpu_specs.h"

namespace moesim::sim {

inline constexpr double kGemmEfficiency = 0.70;
inline constexpr double kMemoryEfficiency = 0.80;
inline constexpr Duration kLaunchOverhead = Duration::Nanoseconds(4000);

// The datasheet dense tensor rate for `dtype` (BF16 and FP16 alike).
Rate PeakFlops(const topology::GpuSpec& gpu, pb::DType dtype);

// Zero work costs nothing (no launch).
Duration ComputeTime(const topology::GpuSpec& gpu, pb::DType dtype, uint64_t flops, uint64_t bytes);

}  // namespace moesim::sim
