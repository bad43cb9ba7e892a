// One GPU, one Mixtral-8x7B MoE layer (8 experts, hidden 4096, ffn 14336, top-2, softmax router):
// 4,096 and 16,384 tokens, uniform and Zipf(1.2) routing, both ways of issuing the expert GEMMs.
// Times each op (median of 20 after 3 warm-ups) and the expert GEMMs' achieved rate.
#include <algorithm>
#include <cstdio>

#include "backend/kernels/cpu_kernels.h"
#include "backend/kernels/cuda/check_common.h"
#include "backend/kernels/gpu_kernels.h"

namespace moesim::backend::gpu {

bool RunMixtral(const CheckOptions& o, Json& report) {
  // Mixtral-8x7B's MoE block (config.json of mistralai/Mixtral-8x7B-v0.1: hidden_size 4096,
  // intermediate_size 14336, num_local_experts 8, num_experts_per_tok 2).
  const uint32_t hidden = 4096, ffn = o.quick ? 2048 : 14336, experts = 8;
  const RouterConfig router{.num_experts = experts, .top_k = 2};
  const std::vector<uint32_t> token_counts =
      o.quick ? std::vector<uint32_t>{1024} : std::vector<uint32_t>{4096, 16384};
  const uint32_t max_tokens = *std::max_element(token_counts.begin(), token_counts.end());
  struct Routing {
    const char* name;
    double zipf_s;
  };
  const Routing routings[] = {{"uniform", 0.0}, {"zipf-1.2", 1.2}};

  Json rows = Json::Array();
  std::printf("\nMixtral-8x7B layer, one GPU (ms; GEMM TFLOP/s over up + down)\n");
  std::printf("%-27s %7s %-9s %6s %7s %7s %7s %8s %7s %8s %7s %8s %8s\n", "gemm", "tokens",
              "routing", "max/mu", "router", "perm", "permute", "gemm_up", "swiglu", "gemm_dn",
              "combine", "total", "TFLOP/s");
  bool ok = true;
  for (GemmApi api : {GemmApi::kGroupedBatched, GemmApi::kPerExpertLoop, GemmApi::kAuto}) {
    StatusOr<std::unique_ptr<GpuLayer>> layer = GpuLayer::Create(
        {.max_tokens = max_tokens, .hidden = hidden, .ffn = ffn, .router = router, .gemm = api});
    Status s = layer.ok() ? (*layer)->RandomWeights(31) : Status(layer.error());
    if (s.ok()) s = (*layer)->RandomActivations(32);
    if (!s.ok()) {
      std::printf("%-27s ERROR %s\n", GemmApiName(api), s.error().message().c_str());
      rows.Push(Json::Object().Add("gemm_api", GemmApiName(api)).Add("error", s.error().message()));
      ok = false;
      continue;
    }
    for (uint32_t tokens : token_counts) {
      for (const Routing& routing : routings) {
        const std::vector<float> logits = RoutingLogits(tokens, experts, routing.zipf_s, 33);
        // The loads the GPU router will produce (same ranking on the CPU): max over mean.
        const RouterOutput routed = RouterTopK(logits, tokens, router);
        std::vector<uint64_t> load(experts);
        for (int32_t e : routed.experts) ++load[e];
        const double mean = 2.0 * tokens / experts;
        const double imbalance = *std::max_element(load.begin(), load.end()) / mean;

        Status up = (*layer)->UploadLogits(logits, tokens);
        StatusOr<GpuLayerTimes> t = up.ok() ? (*layer)->Benchmark(3, o.quick ? 5 : 20)
                                            : StatusOr<GpuLayerTimes>(up.error());
        if (!t.ok()) {
          std::printf("%-27s %7u %-9s ERROR %s\n", GemmApiName(api), tokens, routing.name,
                      t.error().message().c_str());
          rows.Push(Json::Object()
                        .Add("gemm_api", GemmApiName(api))
                        .Add("tokens", tokens)
                        .Add("routing", routing.name)
                        .Add("error", t.error().message()));
          ok = false;
          continue;
        }
        const double gemm_ms = t->gemm_up_ms + t->gemm_down_ms;
        const double tflops = 2.0 * 2 * tokens * hidden * 3.0 * ffn / (gemm_ms * 1e9);
        std::printf("%-27s %7u %-9s %6.2f %7.3f %7.3f %7.3f %8.3f %7.3f %8.3f %7.3f %8.3f %8.1f\n",
                    GemmApiName(api), tokens, routing.name, imbalance, t->router_ms,
                    t->permutation_ms, t->permute_ms, t->gemm_up_ms, t->swiglu_ms, t->gemm_down_ms,
                    t->combine_ms, t->total_ms, tflops);
        Json loads = Json::Array();
        for (uint64_t l : load) loads.Push(l);
        rows.Push(Json::Object()
                      .Add("gemm_api", GemmApiName(api))
                      .Add("tokens", tokens)
                      .Add("hidden", hidden)
                      .Add("ffn", ffn)
                      .Add("experts", experts)
                      .Add("top_k", 2)
                      .Add("routing", routing.name)
                      .Add("expert_rows", loads)
                      .Add("max_over_mean_load", imbalance)
                      .Add("router_ms", t->router_ms)
                      .Add("permutation_ms", t->permutation_ms)
                      .Add("permute_ms", t->permute_ms)
                      .Add("gemm_up_ms", t->gemm_up_ms)
                      .Add("swiglu_ms", t->swiglu_ms)
                      .Add("gemm_down_ms", t->gemm_down_ms)
                      .Add("combine_ms", t->combine_ms)
                      .Add("total_ms", t->total_ms)
                      .Add("expert_gemm_tflops", tflops));
      }
    }
  }
  report.Add("mixtral", rows);
  return ok;
}

}  // namespace moesim::backend::gpu
