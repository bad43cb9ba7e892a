#include "backend/bench/gemm_bench.h"

#include <cmath>

#include "backend/bench/time_stats.h"
#include "backend/kernels/gpu_kernels.h"
#include "backend/run/host_memory.h"
#include "backend/run/layer_inputs.h"
#include "backend/run/measured_result.h"
#include "models/model_spec.h"

namespace moesim::backend {
namespace {

models::OpCost Cost(const pb::GemmShape& shape, pb::DType dtype) {
  pb::ModelSpec spec;
  spec.set_hidden_size(shape.hidden());
  spec.set_expert_ffn_size(shape.ffn());
  spec.set_dtype(dtype);
  models::OpCost one = models::ExpertFfnCost(spec, shape.tokens_per_expert());
  one.flops *= shape.experts();
  one.bytes.value *= shape.experts();
  return one;
}

pb::Result NewResult(Communicator& comm, const char* device, const char* dtype,
                     const GemmOptions& o) {
  pb::Result r;
  r.set_scenario("grouped SwiGLU expert GEMMs");
  r.set_executor("measured");
  r.set_gpus(comm.size());
  r.set_device(device);
  r.set_dtype(dtype);
  r.set_iterations(o.iterations);
  r.set_warmup_iterations(o.warmup);
  return r;
}

// Adds shape `index`'s phase from this rank's samples (slowest over ranks per sample).
void AddGemmPhase(Communicator& comm, pb::Result& result, uint32_t index,
                  const pb::GemmShape& shape, pb::DType dtype,
                  const std::vector<int64_t>& samples) {
  std::vector<int64_t> slowest(comm.rank() == 0 ? samples.size() : 0);
  comm.ReduceMax(samples, slowest);
  const int64_t median = Summarize(samples).median;
  std::vector<int64_t> medians(comm.rank() == 0 ? comm.size() : 0);
  comm.Gather(std::span<const int64_t>(&median, 1), medians);
  if (comm.rank() != 0) return;
  const models::OpCost cost = Cost(shape, dtype);
  PhaseSamples p{"gemm", index, slowest, medians, {}, {}, std::nullopt};
  p.rank_flops.assign(comm.size(), cost.flops);
  p.rank_bytes.assign(comm.size(), cost.bytes.value);
  result.set_total_ns(result.total_ns() + AddMeasuredPhase(result, p));
  *result.mutable_phases(result.phases_size() - 1)->mutable_gemm_shape() = shape;
}

}  // namespace

StatusOr<pb::Result> MeasureCpuGemms(Communicator& comm, const std::vector<pb::GemmShape>& shapes,
                                     const GemmOptions& o) {
  pb::Result result = NewResult(comm, "cpu", "fp32", o);
  for (uint32_t i = 0; i < shapes.size(); ++i) {
    const pb::GemmShape& s = shapes[i];
    const uint64_t rows = s.tokens_per_expert() * s.experts();
    // x, y: rows*h; weights 3*h*f per expert; the kernel's gate, up, activation: rows*f each.
    HostMemoryNeed need;
    need.buffers = 4.0 * (2.0 * rows * s.hidden() + 3.0 * rows * s.ffn());
    need.weights = 4.0 * 3.0 * s.hidden() * s.ffn() * s.experts();
    const Status fits = CheckHostMemory(need, comm.ranks_on_node(), AvailableHostBytes());
    if (comm.AnyRank(!fits.ok())) {
      return fits.ok() ? Error("another rank is out of host memory")
                       : Error("gemm shape " + std::to_string(i) + ": " + fits.error().message());
    }
    const ExpertWeights w = MakeExpertWeights(o.seed, 0, s.experts(), s.hidden(), s.ffn());
    const std::vector<float> x = TokenBatch(o.seed, 0, comm.rank(), rows, s.hidden());
    std::vector<float> y(x.size());
    const std::vector<uint64_t> counts(s.experts(), s.tokens_per_expert());
    std::vector<int64_t> samples;
    for (uint32_t it = 0; it < o.warmup + o.iterations; ++it) {
      comm.Barrier();
      const int64_t start = NowNs();
      GroupedSwiGlu(x.data(), counts, w, y.data());
      if (it >= o.warmup) samples.push_back(NowNs() - start);
    }
    AddGemmPhase(comm, result, i, s, pb::FP32, samples);
  }
  return result;
}

StatusOr<pb::Result> MeasureGpuGemms(Communicator& comm, const std::vector<pb::GemmShape>& shapes,
                                     const GemmOptions& o) {
  const int device = static_cast<int>(comm.local_rank());
  const auto info = gpu::QueryDevice(device);
  if (comm.AnyRank(!info.ok())) {
    return info.ok() ? Error("another rank has no GPU")
                     : Error("--device gpu: " + info.error().message());
  }
  std::vector<gpu::GroupedGemmShape> gpu_shapes;
  for (const pb::GemmShape& s : shapes) {
    gpu_shapes.push_back(
        {s.experts(), static_cast<uint32_t>(s.tokens_per_expert()), s.hidden(), s.ffn()});
  }
  const bool fp8 = o.dtype == "fp8";
  auto points = fp8 ? gpu::SweepFp8GroupedGemm(gpu_shapes, o.warmup, o.iterations, device)
                    : gpu::SweepGroupedGemm(gpu_shapes, o.gemm_api, o.warmup, o.iterations, device);
  if (comm.AnyRank(!points.ok())) {
    return points.ok() ? Error("another rank's GPU GEMMs failed") : points.error();
  }
  pb::Result result = NewResult(comm, "gpu", fp8 ? "fp8" : "bf16", o);
  result.set_scenario(result.scenario() + " on " + info->name +
                      (fp8 ? std::string(", FP8 E4M3 with 1x128 activation and 128x128 weight "
                                         "scales (cuBLASLt, a call per expert)")
                           : ", GEMM API " + std::string(gpu::GemmApiName(o.gemm_api))));
  for (uint32_t i = 0; i < shapes.size(); ++i) {
    const gpu::GroupedGemmPoint& p = (*points)[i];
    auto ns = [](double ms) { return static_cast<int64_t>(std::llround(ms * 1e6)); };
    AddGemmPhase(comm, result, i, shapes[i], fp8 ? pb::FP8 : pb::BF16,
                 {ns(p.up.median_ms + p.down.median_ms)});
    if (comm.rank() == 0) {
      pb::Phase* phase = result.mutable_phases(result.phases_size() - 1);
      phase->set_time_p10_ns(0);
      phase->set_time_p90_ns(0);
      phase->set_time_min_ns(ns(p.up.min_ms + p.down.min_ms));
      phase->set_time_max_ns(ns(p.up.max_ms + p.down.max_ms));
    }
  }
  return result;
}

}  // namespace moesim::backend
