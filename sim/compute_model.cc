#include "sim/compute_model.h"

#include <algorithm>
#include <cmath>

#include "models/model_spec.h"

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

ComputeRates ComputeRates::Datasheet(const topology::GpuSpec& gpu, pb::DType dtype) {
  return ComputeRates{PeakFlops(gpu, dtype), 0.0, gpu.hbm_bandwidth, Duration()};
}

namespace {

Rate Scaled(Rate r, double factor) {
  return Rate::PerSecond(static_cast<uint64_t>(std::llround(static_cast<double>(r.per_second()) * factor)));
}

}  // namespace

ComputeRates ComputeRates::Assumed(const topology::GpuSpec& gpu, pb::DType dtype) {
  const ComputeRates d = Datasheet(gpu, dtype);
  return ComputeRates{Scaled(d.flops, kGemmEfficiency), 0.0, Scaled(d.memory, kMemoryEfficiency),
                      kLaunchOverhead};
}

ComputeRates ComputeRates::With(const pb::GpuProfile& p) const {
  ComputeRates r = *this;
  if (p.has_gemm_peak_tflops()) r.flops = Scaled(Rate::PerSecond(1'000'000'000'000), p.gemm_peak_tflops());
  if (p.has_gemm_n_half()) r.n_half = p.gemm_n_half();
  if (p.has_memory_bandwidth_gbps())
    r.memory = Scaled(Rate::PerSecond(1'000'000'000), p.memory_bandwidth_gbps());
  if (p.has_launch_overhead_ns())
    r.launch = Duration::Picoseconds(static_cast<int64_t>(std::llround(p.launch_overhead_ns() * 1e3)));
  return r;
}

Duration ComputeTime(const ComputeRates& rates, uint64_t flops, uint64_t bytes) {
  if (flops == 0 && bytes == 0) return Duration();
  return std::max(TimeFor(flops, rates.flops), TimeFor(bytes, rates.memory)) + rates.launch;
}

Duration ExpertTime(const ComputeRates& rates, const pb::ModelSpec& model,
                    const std::vector<uint64_t>& expert_tokens) {
  uint64_t flops = 0, bytes = 0, active = 0;
  for (uint64_t n : expert_tokens) {
    const models::OpCost c = models::ExpertFfnCost(model, n);
    flops += c.flops;
    bytes += c.bytes.value;
    if (n > 0) active += models::ExpertFfnCost(model, 1).flops;
  }
  if (flops == 0 && bytes == 0) return Duration();
  // The half-rate point as extra work: (flops + active x n_half) / rate.
  const auto penalty =
      static_cast<uint64_t>(std::ceil(static_cast<double>(active) * rates.n_half));
  return std::max(TimeFor(flops + penalty, rates.flops), TimeFor(bytes, rates.memory)) +
         rates.launch;
}

}  // namespace moesim::sim
