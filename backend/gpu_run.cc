#include "backend/gpu_run.h"

#include <cmath>

#include "backend/kernels/gpu_kernels.h"
#include "backend/layer_check.h"
#include "backend/layer_inputs.h"
#include "backend/measured_result.h"
#include "backend/router_step.h"
#include "models/model_spec.h"
#include "models/send_matrices.h"

namespace moesim::backend {
namespace {

// Where a GPU run cannot go: no device, too few devices, a plan for more GPUs than one.
Status CheckGpus(const BenchScenario& s, Communicator& comm, std::optional<uint32_t> gpus) {
  auto info = gpu::QueryDevice(static_cast<int>(comm.local_rank()));
  if (!info.ok()) return Error("--device gpu: " + info.error().message());
  const uint32_t on_node = std::min(s.ranks, std::max(s.gpus_per_node, 1u));
  if (auto last = gpu::QueryDevice(static_cast<int>(on_node) - 1); !last.ok()) {
    return InputError(s.file.Locate("cluster"), "cluster.gpus", std::to_string(s.ranks),
                      "the scenario needs " + std::to_string(on_node) +
                          " GPUs on this node, more than are visible here (" +
                          last.error().message() + ")",
                      "as many GPUs as CUDA_VISIBLE_DEVICES shows");
  }
  MOESIM_RETURN_IF_ERROR(CheckRankCount(s, gpus.value_or(comm.size()), "--gpus"));
  if (s.ranks > 1 || comm.size() > 1) {
    return Error(
        "--device gpu with " + std::to_string(s.ranks) +
        " GPUs is not implemented yet: gpu_kernels.h runs a whole layer on one GPU and exposes no "
        "buffer between permute and the expert GEMMs for an NCCL dispatch; measure the pieces with "
        "`moebench a2a --device gpu` (NCCL) and `moebench gemm --device gpu`, or use --device cpu");
  }
  return Status::Ok();
}

int64_t Ns(double ms) { return static_cast<int64_t>(std::llround(ms * 1e6)); }

}  // namespace

StatusOr<RunReport> RunOnGpu(const BenchScenario& s, Communicator& comm,
                             std::optional<uint32_t> gpus, const RunOptions& o) {
  MOESIM_RETURN_IF_ERROR(CheckGpus(s, comm, gpus));
  const models::Workload& w = s.workload;
  const uint32_t hidden = w.model.hidden_size(), ffn = w.model.expert_ffn_size();
  const uint32_t experts = w.model.num_experts(), top_k = w.model.top_k();
  const std::vector<float> router = RouterMatrix(o.seed, hidden, experts);
  std::optional<ExpertWeights> all;
  if (o.check) all = MakeExpertWeights(o.seed, 0, experts, hidden, ffn);
  pb::ModelSpec bf16 = w.model;
  bf16.set_dtype(pb::BF16);

  RunReport report;
  pb::Result& result = report.result;
  result.set_scenario(w.name);
  result.set_executor("measured");
  result.set_gpus(1);
  result.set_model(w.model.name());
  result.set_device("gpu");
  result.set_dtype("bf16");
  result.set_iterations(o.iterations);
  result.set_warmup_iterations(o.warmup);
  report.check.ran = o.check;
  report.check.bound = kGpuRelativeErrorBound;
  int64_t total = 0;
  for (uint32_t l = 0; l < w.layers.size(); ++l) {
    const std::vector<uint32_t>& chosen = w.routing[l].experts[0];
    const uint64_t tokens = w.routing[l].tokens(0);
    gpu::GpuLayerConfig config;
    config.max_tokens = static_cast<uint32_t>(tokens);
    config.hidden = hidden;
    config.ffn = ffn;
    config.router.num_experts = experts;
    config.router.top_k = top_k;
    MOESIM_ASSIGN_OR_RETURN(std::unique_ptr<gpu::GpuLayer> layer, gpu::GpuLayer::Create(config));
    MOESIM_RETURN_IF_ERROR(all ? layer->UploadWeights(*all) : layer->RandomWeights(o.seed));
    const std::vector<float> x = TokenBatch(o.seed, l, 0, tokens, hidden);
    std::vector<float> logits(tokens * experts);
    RouterLogits(x.data(), tokens, hidden, router.data(), experts, logits.data());
    std::vector<float> masked(logits.size(), -1e30f);  // only the scenario's experts can win
    for (uint64_t slot = 0; slot < chosen.size(); ++slot) {
      const uint64_t i = slot / top_k * experts + chosen[slot];
      masked[i] = logits[i];
    }
    MOESIM_RETURN_IF_ERROR(layer->UploadLogits(masked, static_cast<uint32_t>(tokens)));
    MOESIM_RETURN_IF_ERROR(layer->UploadActivations(x));
    if (o.check) {
      if (auto ran = layer->Run(); !ran.ok()) return ran.error();
      MOESIM_ASSIGN_OR_RETURN(gpu::GpuLayerOutputs out, layer->Download());
      const std::vector<float> ref = ReferenceOutput(w, l, 0, o.seed, router);
      double worst = 0;
      for (uint64_t t = 0; t < tokens; ++t) {
        double diff = 0, scale = 0;
        for (uint32_t i = 0; i < hidden; ++i) {
          diff = std::max(diff, std::abs(double{out.y[t * hidden + i]} - ref[t * hidden + i]));
          scale = std::max(scale, std::abs(double{ref[t * hidden + i]}));
        }
        const double rel = scale > 0 ? diff / scale : diff;
        if (!(rel <= kGpuRelativeErrorBound)) {
          return Error("layer " + std::to_string(l) + " token " + std::to_string(t) +
                       ": the GPU's output differs from the CPU reference by " +
                       std::to_string(rel) + " of its largest value (bound " +
                       std::to_string(kGpuRelativeErrorBound) + ")");
        }
        worst = std::max(worst, rel);
      }
      report.check.rows_checked += chosen.size();
      report.check.max_relative_error = std::max(report.check.max_relative_error, worst);
    }
    MOESIM_ASSIGN_OR_RETURN(gpu::GpuLayerTimes t, layer->Benchmark(o.warmup, o.iterations));
    const int64_t times[] = {Ns(t.router_ms + t.permutation_ms + t.permute_ms), 0,
                             Ns(t.gemm_up_ms + t.swiglu_ms + t.gemm_down_ms), Ns(t.combine_ms)};
    const char* names[] = {"router", "dispatch", "expert", "combine"};
    for (int p = 0; p < 4; ++p) {
      PhaseSamples samples{names[p], w.layers[l].layer, {times[p]}, {times[p]}, {},
                           {},       std::nullopt};
      models::OpCost cost;
      if (p == 0) cost = models::RouterCost(bf16, tokens);
      for (uint64_t n : w.layers[l].expert_tokens[0]) {
        if (p != 2) break;
        cost.flops += models::ExpertFfnCost(bf16, n).flops;
        cost.bytes += models::ExpertFfnCost(bf16, n).bytes;
      }
      samples.rank_flops = {cost.flops};
      samples.rank_bytes = {cost.bytes.value};
      if (p == 1 || p == 3) samples.link_bytes = 0;  // one rank: nothing crosses
      total += AddMeasuredPhase(result, samples);
    }
    models::AddSendMatrices(result, w.layers[l].layer, w.layers[l].dispatch_tokens, hidden * 2);
  }
  result.set_total_ns(total);
  return report;
}

}  // namespace moesim::backend
