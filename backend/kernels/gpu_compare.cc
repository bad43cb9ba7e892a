#include "backend/kernels/gpu_compare.h"

#include <cmath>
#include <random>

#include "backend/kernels/bf16.h"

namespace moesim::backend::gpu {
namespace {

std::vector<float> Uniform(uint64_t n, float scale, std::mt19937_64& rng, bool bf16) {
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = bf16 ? RoundToBf16(dist(rng)) : dist(rng);
  return v;
}

KernelCheck CompareFloats(std::string kernel, std::span<const float> gpu,
                          std::span<const float> cpu, double bound) {
  KernelCheck c;
  c.kernel = std::move(kernel);
  c.bound = bound;
  double max_diff = 0, max_ref = 0, diff2 = 0, ref2 = 0;
  if (gpu.size() != cpu.size()) c.mismatches = std::max(gpu.size(), cpu.size());
  for (size_t i = 0; i < std::min(gpu.size(), cpu.size()); ++i) {
    if (std::isnan(gpu[i])) {
      ++c.nans;
      continue;
    }
    const double d = std::fabs(double{gpu[i]} - cpu[i]);
    max_diff = std::max(max_diff, d);
    max_ref = std::max(max_ref, std::fabs(double{cpu[i]}));
    diff2 += d * d;
    ref2 += double{cpu[i]} * cpu[i];
  }
  c.max_rel_error = max_ref > 0 ? max_diff / max_ref : max_diff;
  c.rms_rel_error = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  c.pass = c.nans == 0 && c.mismatches == 0 && c.max_rel_error <= bound;
  return c;
}

template <typename A, typename B>
uint64_t Mismatches(const std::vector<A>& a, const std::vector<B>& b) {
  uint64_t n = a.size() > b.size() ? a.size() - b.size() : b.size() - a.size();
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) n += uint64_t(a[i]) != uint64_t(b[i]);
  return n;
}

KernelCheck ComparePermutation(const Permutation& gpu, const Permutation& cpu) {
  KernelCheck c;
  c.kernel = "permutation";
  // An empty CPU permutation means the GPU's expert ids were out of range: everything differs.
  c.mismatches = Mismatches(gpu.bucket_counts, cpu.bucket_counts) +
                 Mismatches(gpu.bucket_offsets, cpu.bucket_offsets) +
                 Mismatches(gpu.row_of_slot, cpu.row_of_slot) +
                 Mismatches(gpu.slot_of_row, cpu.slot_of_row);
  c.pass = c.mismatches == 0;
  return c;
}

}  // namespace

StatusOr<std::vector<KernelCheck>> CompareWithCpu(const CompareConfig& config) {
  const RouterConfig& r = config.router;
  MOESIM_RETURN_IF_ERROR(CheckRouterConfig(r));
  if (config.empty_experts >= r.num_experts || r.top_k > r.num_experts - config.empty_experts) {
    return Error("CompareWithCpu: empty_experts " + std::to_string(config.empty_experts) +
                 " leaves fewer than top_k experts");
  }
  const uint32_t tokens = config.tokens, hidden = config.hidden, ffn = config.ffn;
  const uint64_t matrix = uint64_t{r.num_experts} * hidden * ffn;
  std::mt19937_64 rng(config.seed);
  const std::vector<float> x = Uniform(uint64_t{tokens} * hidden, 1.0f, rng, true);
  std::vector<float> logits = Uniform(uint64_t{tokens} * r.num_experts, 2.0f, rng, false);
  for (uint32_t t = 0; t < tokens; ++t) {
    for (uint32_t e = r.num_experts - config.empty_experts; e < r.num_experts; ++e) {
      logits[uint64_t{t} * r.num_experts + e] = -30.0f;
    }
  }
  ExpertWeights w{r.num_experts, hidden, ffn, {}, {}, {}};
  w.gate = Uniform(matrix, 1.0f / std::sqrt(float(hidden)), rng, true);
  w.up = Uniform(matrix, 1.0f / std::sqrt(float(hidden)), rng, true);
  w.down = Uniform(matrix, 1.0f / std::sqrt(float(ffn)), rng, true);

  GpuLayerConfig lc{.max_tokens = std::max(tokens, 1u),
                    .hidden = hidden,
                    .ffn = ffn,
                    .router = r,
                    .gemm = config.gemm,
                    .device = config.device};
  MOESIM_ASSIGN_OR_RETURN(std::unique_ptr<GpuLayer> layer, GpuLayer::Create(lc));
  MOESIM_RETURN_IF_ERROR(layer->UploadWeights(w));
  MOESIM_RETURN_IF_ERROR(layer->UploadLogits(logits, tokens));
  MOESIM_RETURN_IF_ERROR(layer->UploadActivations(x));
  MOESIM_RETURN_IF_ERROR(layer->Poison());
  StatusOr<GpuLayerTimes> ran = layer->Run();
  if (!ran.ok()) return ran.error();
  MOESIM_ASSIGN_OR_RETURN(GpuLayerOutputs g, layer->Download());

  const uint32_t k = r.top_k;
  const uint64_t slots = uint64_t{tokens} * k;
  std::vector<KernelCheck> checks;

  const RouterOutput routed = RouterTopK(logits, tokens, r);
  KernelCheck router =
      CompareFloats("router", g.routing.weights, routed.weights, config.router_bound);
  router.mismatches += Mismatches(g.routing.experts, routed.experts);
  router.pass = router.pass && router.mismatches == 0;
  checks.push_back(router);

  const Permutation perm = BuildPermutation(g.routing.experts, r.num_experts);
  checks.push_back(ComparePermutation(g.permutation, perm));
  if (perm.row_of_slot.size() != slots) return checks;  // the rest needs a valid permutation

  std::vector<float> permuted(slots * hidden);
  Permute(x.data(), hidden, perm, k, permuted.data());
  checks.push_back(CompareFloats("permute", g.permuted, permuted, 0.0));

  std::vector<float> expert_out(slots * hidden);
  GroupedSwiGlu(g.permuted.data(), perm.bucket_counts, w, expert_out.data());
  checks.push_back(CompareFloats("grouped_swiglu", g.expert_out, expert_out, config.bound));

  std::vector<float> y(uint64_t{tokens} * hidden);
  UnpermuteCombine(g.expert_out.data(), hidden, perm, g.routing.weights, k, y.data());
  checks.push_back(CompareFloats("combine", g.y, y, config.bound));

  // The whole layer on the CPU from the same inputs.
  const Permutation cpu_perm = BuildPermutation(routed.experts, r.num_experts);
  Permute(x.data(), hidden, cpu_perm, k, permuted.data());
  GroupedSwiGlu(permuted.data(), cpu_perm.bucket_counts, w, expert_out.data());
  UnpermuteCombine(expert_out.data(), hidden, cpu_perm, routed.weights, k, y.data());
  checks.push_back(CompareFloats("layer", g.y, y, config.bound));
  return checks;
}

}  // namespace moesim::backend::gpu
