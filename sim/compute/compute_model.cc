#include "sim/compute/compute_model.h"

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
  ComputeRates r;
  r.flops = PeakFlops(gpu, dtype);
  r.memory = gpu.hbm_bandwidth;
  return r;
}

namespace {

Rate Scaled(Rate r, double factor) {
  return Rate::PerSecond(
      static_cast<uint64_t>(std::llround(static_cast<double>(r.per_second()) * factor)));
}

}  // namespace

ComputeRates ComputeRates::With(const pb::GpuProfile& p) const {
  ComputeRates r = *this;
  if (p.has_gemm_peak_tflops())
    r.flops = Scaled(Rate::PerSecond(1'000'000'000'000), p.gemm_peak_tflops());
  if (p.has_gemm_n_half()) r.n_half = p.gemm_n_half();
  if (p.has_memory_bandwidth_gbps())
    r.memory = Scaled(Rate::PerSecond(1'000'000'000), p.memory_bandwidth_gbps());
  if (p.has_launch_overhead_ns())
    r.launch =
        Duration::Picoseconds(static_cast<int64_t>(std::llround(p.launch_overhead_ns() * 1e3)));
  if (p.has_large_gemms()) {
    const pb::GpuProfile::GemmBand& b = p.large_gemms();
    r.large_min_flops = static_cast<uint64_t>(std::ceil(b.min_flops()));
    r.large_flops = Scaled(Rate::PerSecond(1'000'000'000'000), b.gemm_peak_tflops());
    r.large_n_half = b.gemm_n_half();
    r.large_launch =
        Duration::Picoseconds(static_cast<int64_t>(std::llround(b.launch_overhead_ns() * 1e3)));
  }
  return r;
}

ComputeRates ComputeRates::ForGemm(uint64_t op_flops) const {
  ComputeRates r = *this;
  if (large_min_flops > 0 && op_flops >= large_min_flops) {
    r.flops = large_flops;
    r.n_half = large_n_half;
    r.launch = large_launch;
  }
  return r;
}

Duration ComputeTime(const ComputeRates& all, uint64_t flops, uint64_t bytes) {
  if (flops == 0 && bytes == 0) return Duration();
  const ComputeRates rates = all.ForGemm(flops);
  return std::max(TimeFor(flops, rates.flops), TimeFor(bytes, rates.memory)) + rates.launch;
}

Duration ExpertTime(const ComputeRates& all, const pb::ModelSpec& model,
                    const std::vector<uint64_t>& expert_tokens) {
  uint64_t flops = 0, bytes = 0, active = 0;
  for (uint64_t n : expert_tokens) {
    const models::OpCost c = models::ExpertFfnCost(model, n);
    flops += c.flops;
    bytes += c.bytes.value;
    if (n > 0) active += models::ExpertFfnCost(model, 1).flops;
  }
  if (flops == 0 && bytes == 0) return Duration();
  const ComputeRates rates = all.ForGemm(flops);
  // The half-rate point as extra work: (flops + active x n_half) / rate.
  const auto penalty = static_cast<uint64_t>(std::ceil(static_cast<double>(active) * rates.n_half));
  return std::max(TimeFor(flops + penalty, rates.flops), TimeFor(bytes, rates.memory)) +
         rates.launch;
}

}  // namespace moesim::sim
