// gpu_kernel_check: the ceilings of this GPU, every CUDA kernel against the CPU reference, the
// kernels' speed against the ceilings, and the grouped-GEMM sweep. Run by backend/gpu-check.sh.
//
//   gpu_kernel_check [--mode check|mixtral|all] [--json PATH] [--quick]
//
// Exit status: 0 every kernel agrees with the CPU, 1 a kernel disagrees or a call failed, 2 bad
// usage, 77 no CUDA device visible (the "skipped" code of ctest and automake). Speed targets
// (permute >= 50% of copy bandwidth, grouped GEMM >= 60% of the dense rate) are reported, and
// do not change the exit status: they are measurements, not correctness.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "backend/kernels/cuda/check_common.h"
#include "backend/kernels/gpu_compare.h"
#include "backend/kernels/gpu_kernels.h"

namespace moesim::backend::gpu {
namespace {

Json TimingJson(const Timing& t) {
  return Json::Object()
      .Add("median_ms", t.median_ms)
      .Add("min_ms", t.min_ms)
      .Add("max_ms", t.max_ms)
      .Add("iterations", t.iterations);
}

std::vector<CompareConfig> CompareConfigs() {
  std::vector<CompareConfig> configs;
  configs.push_back({.name = "mixtral-like softmax top-2"});
  configs.push_back({.name = "deepseek-like sigmoid grouped top-6",
                     .tokens = 512,
                     .hidden = 256,
                     .ffn = 128,
                     .router = {.num_experts = 64,
                                .top_k = 6,
                                .score = ScoreFunction::kSigmoid,
                                .groups = 8,
                                .topk_groups = 3}});
  configs.push_back({.name = "odd sizes (scalar paths), empty experts",
                     .tokens = 33,
                     .hidden = 100,
                     .ffn = 36,
                     .router = {.num_experts = 6, .top_k = 1, .normalize = false},
                     .empty_experts = 2});
  configs.push_back({.name = "zero tokens", .tokens = 0, .hidden = 64, .ffn = 64});
  return configs;
}

bool RunCorrectness(Json& report) {
  Json rows = Json::Array();
  bool ok = true;
  std::printf("\n%-40s %-27s %-15s %10s %10s %6s %5s %s\n", "config", "gemm", "kernel", "max_rel",
              "rms_rel", "mism", "nans", "result");
  for (GemmApi api : {GemmApi::kGroupedBatched, GemmApi::kPerExpertLoop}) {
    for (CompareConfig c : CompareConfigs()) {
      c.gemm = api;
      StatusOr<std::vector<KernelCheck>> checks = CompareWithCpu(c);
      if (!checks.ok()) {
        std::printf("%-40s %-27s ERROR %s\n", c.name.c_str(), GemmApiName(api),
                    checks.error().message().c_str());
        rows.Push(Json::Object().Add("config", c.name).Add("error", checks.error().message()));
        ok = false;
        continue;
      }
      for (const KernelCheck& k : *checks) {
        std::printf("%-40s %-27s %-15s %10.2e %10.2e %6llu %5llu %s\n", c.name.c_str(),
                    GemmApiName(api), k.kernel.c_str(), k.max_rel_error, k.rms_rel_error,
                    static_cast<unsigned long long>(k.mismatches),
                    static_cast<unsigned long long>(k.nans), k.pass ? "pass" : "FAIL");
        rows.Push(Json::Object()
                      .Add("config", c.name)
                      .Add("gemm_api", GemmApiName(api))
                      .Add("kernel", k.kernel)
                      .Add("max_rel_error", k.max_rel_error)
                      .Add("rms_rel_error", k.rms_rel_error)
                      .Add("mismatches", k.mismatches)
                      .Add("nans", k.nans)
                      .Add("bound", k.bound)
                      .Add("pass", k.pass));
        ok = ok && k.pass;
      }
    }
  }
  report.Add("correctness", rows);
  return ok;
}

// The layer's permute and expert GEMMs at balanced load (every expert 2 * tokens / 8 rows),
// against the ceilings.
bool RunTargets(const CheckOptions& o, double copy_gbps, double dense_tflops, Json& report) {
  const uint32_t tokens = o.quick ? 2048 : 8192, hidden = 4096, ffn = o.quick ? 2048 : 14336;
  const RouterConfig router{.num_experts = 8, .top_k = 2};
  const std::vector<float> logits = BalancedLogits(tokens, 8, 5);
  Json rows = Json::Array();
  bool ok = true;
  std::printf("\n%-27s %10s %10s %8s %10s %10s %8s\n", "layer at balanced load", "permute_ms",
              "GB/s", "of copy", "gemm_ms", "TFLOP/s", "of dense");
  for (GemmApi api : {GemmApi::kGroupedBatched, GemmApi::kPerExpertLoop, GemmApi::kAuto}) {
    StatusOr<std::unique_ptr<GpuLayer>> layer = GpuLayer::Create(
        {.max_tokens = tokens, .hidden = hidden, .ffn = ffn, .router = router, .gemm = api});
    Status s = layer.ok() ? (*layer)->RandomWeights(1) : Status(layer.error());
    if (s.ok()) s = (*layer)->UploadLogits(logits, tokens);
    if (s.ok()) s = (*layer)->RandomActivations(2);
    StatusOr<GpuLayerTimes> t =
        s.ok() ? (*layer)->Benchmark(3, o.quick ? 5 : 20) : StatusOr<GpuLayerTimes>(s.error());
    if (!t.ok()) {
      std::printf("%-27s ERROR %s\n", GemmApiName(api), t.error().message().c_str());
      rows.Push(Json::Object().Add("gemm_api", GemmApiName(api)).Add("error", t.error().message()));
      ok = false;
      continue;  // the other way of issuing the GEMMs may still work
    }
    const double slots = 2.0 * tokens;
    const double permute_gbps = 2.0 * slots * hidden * 2 / (t->permute_ms * 1e6);
    const double gemm_ms = t->gemm_up_ms + t->gemm_down_ms;
    const double gemm_tflops = 2.0 * slots * hidden * 3.0 * ffn / (gemm_ms * 1e9);
    std::printf("%-27s %10.4f %10.1f %7.0f%% %10.4f %10.1f %7.0f%%\n", GemmApiName(api),
                t->permute_ms, permute_gbps, 100 * permute_gbps / copy_gbps, gemm_ms, gemm_tflops,
                100 * gemm_tflops / dense_tflops);
    rows.Push(Json::Object()
                  .Add("gemm_api", GemmApiName(api))
                  .Add("tokens", tokens)
                  .Add("hidden", hidden)
                  .Add("ffn", ffn)
                  .Add("permute_ms", t->permute_ms)
                  .Add("permute_gbps", permute_gbps)
                  .Add("permute_fraction_of_copy", permute_gbps / copy_gbps)
                  .Add("permute_target_met", permute_gbps >= 0.5 * copy_gbps)
                  .Add("expert_gemm_ms", gemm_ms)
                  .Add("expert_gemm_tflops", gemm_tflops)
                  .Add("gemm_fraction_of_dense", gemm_tflops / dense_tflops)
                  .Add("gemm_target_met", gemm_tflops >= 0.6 * dense_tflops)
                  .Add("combine_ms", t->combine_ms)
                  .Add("total_ms", t->total_ms));
  }
  report.Add("targets", rows);
  return ok;
}

bool RunSweep(const CheckOptions& o, double dense_tflops, Json& report) {
  std::vector<GroupedGemmShape> shapes;
  const std::vector<uint32_t> loads =
      o.quick ? std::vector<uint32_t>{128, 1024}
              : std::vector<uint32_t>{64, 128, 256, 512, 1024, 2048, 4096};
  for (uint32_t m : loads) shapes.push_back({8, m, 4096, o.quick ? 2048u : 14336u});  // Mixtral
  if (!o.quick) {
    for (uint32_t m : loads) shapes.push_back({32, m, 7168, 2048});  // DeepSeek-V3, 32 per GPU
  }
  Json rows = Json::Array();
  bool ok = true;
  std::printf("\n%-27s %7s %9s %7s %6s %9s %9s %9s %8s\n", "grouped GEMM sweep", "experts",
              "tok/exp", "hidden", "ffn", "up TF/s", "down TF/s", "ffn TF/s", "of dense");
  for (GemmApi api : {GemmApi::kGroupedBatched, GemmApi::kPerExpertLoop}) {
    StatusOr<std::vector<GroupedGemmPoint>> points =
        SweepGroupedGemm(shapes, api, 3, o.quick ? 5 : 10);
    if (!points.ok()) {
      std::printf("%-27s ERROR %s\n", GemmApiName(api), points.error().message().c_str());
      rows.Push(
          Json::Object().Add("gemm_api", GemmApiName(api)).Add("error", points.error().message()));
      ok = false;
      continue;
    }
    for (const GroupedGemmPoint& p : *points) {
      std::printf("%-27s %7u %9u %7u %6u %9.1f %9.1f %9.1f %7.0f%%\n", GemmApiName(api),
                  p.shape.experts, p.shape.tokens_per_expert, p.shape.hidden, p.shape.ffn,
                  p.up_tflops, p.down_tflops, p.ffn_tflops, 100 * p.ffn_tflops / dense_tflops);
      rows.Push(Json::Object()
                    .Add("gemm_api", GemmApiName(api))
                    .Add("experts", p.shape.experts)
                    .Add("tokens_per_expert", p.shape.tokens_per_expert)
                    .Add("hidden", p.shape.hidden)
                    .Add("ffn", p.shape.ffn)
                    .Add("up", TimingJson(p.up))
                    .Add("down", TimingJson(p.down))
                    .Add("up_tflops", p.up_tflops)
                    .Add("down_tflops", p.down_tflops)
                    .Add("ffn_tflops", p.ffn_tflops));
    }
  }
  report.Add("grouped_gemm_sweep", rows);
  return ok;
}

// Ceilings, correctness, targets, sweep; false if anything failed.
bool RunChecks(const CheckOptions& o, Json& report) {
  const uint64_t copy_bytes = o.quick ? (256ull << 20) : (4ull << 30);
  const int n = o.quick ? 4096 : 8192;
  StatusOr<CopyBandwidth> copy = MeasureCopyBandwidth(copy_bytes, o.quick ? 5 : 20);
  StatusOr<GemmRate> gemm = MeasureDenseGemm(n, n, n, o.quick ? 5 : 20);
  if (!copy.ok() || !gemm.ok()) {
    std::printf("ceilings: ERROR %s\n",
                (!copy.ok() ? copy.error() : gemm.error()).message().c_str());
    return false;
  }
  std::printf(
      "\nceilings: D2D copy of %.2f GB: %.0f GB/s (read + written);"
      " bf16 GEMM %dx%dx%d: %.1f TFLOP/s\n",
      copy->bytes * 1e-9, copy->gbps, n, n, n, gemm->tflops);
  report.Add("copy", Json::Object()
                         .Add("bytes", copy->bytes)
                         .Add("timing", TimingJson(copy->timing))
                         .Add("gbps_read_plus_write", copy->gbps));
  report.Add("dense_gemm", Json::Object()
                               .Add("m", gemm->m)
                               .Add("n", gemm->n)
                               .Add("k", gemm->k)
                               .Add("timing", TimingJson(gemm->timing))
                               .Add("tflops", gemm->tflops));
  bool ok = RunCorrectness(report);
  ok = RunTargets(o, copy->gbps, gemm->tflops, report) && ok;
  ok = RunSweep(o, gemm->tflops, report) && ok;
  return ok;
}

int Main(int argc, char** argv) {
  CheckOptions o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      o.quick = true;
    } else if ((arg == "--json" || arg == "--mode") && i + 1 < argc) {
      (arg == "--json" ? o.json_path : o.mode) = argv[++i];
    } else {
      std::cerr << "usage: gpu_kernel_check [--mode check|mixtral|all] [--json PATH] [--quick]\n";
      return 2;
    }
  }
  if (o.mode != "check" && o.mode != "mixtral" && o.mode != "all") {
    std::cerr << "gpu_kernel_check: --mode " << o.mode << ": valid: check, mixtral, all\n";
    return 2;
  }
  StatusOr<DeviceInfo> device = QueryDevice(0);
  if (!device.ok()) {
    std::cerr << "gpu_kernel_check: " << device.error().message() << "\n";
    return IsNoDeviceError(device.error()) ? 77 : 1;
  }
  std::printf(
      "device 0: %s, sm_%d%d, %d SMs, %.1f GB, L2 %.1f MB; driver CUDA %d, runtime %d, "
      "cuBLAS %d\n",
      device->name.c_str(), device->compute_major, device->compute_minor, device->multiprocessors,
      device->memory_bytes * 1e-9, device->l2_bytes * 1e-6, device->driver_version,
      device->runtime_version, device->cublas_version);
  Json report = Json::Object();
  report.Add("device", Json::Object()
                           .Add("name", device->name)
                           .Add("compute_capability", std::to_string(device->compute_major) + "." +
                                                          std::to_string(device->compute_minor))
                           .Add("multiprocessors", device->multiprocessors)
                           .Add("memory_bytes", device->memory_bytes)
                           .Add("driver_cuda_version", device->driver_version)
                           .Add("runtime_version", device->runtime_version)
                           .Add("cublas_version", device->cublas_version));
  report.Add("mode", o.mode).Add("quick", o.quick);
  bool ok = true;
  if (o.mode != "mixtral") ok = RunChecks(o, report) && ok;
  if (o.mode != "check") ok = RunMixtral(o, report) && ok;
  report.Add("pass", ok);
  if (!o.json_path.empty()) {
    std::ofstream out(o.json_path);
    out << report.str() << "\n";
    if (!out) {
      std::cerr << "gpu_kernel_check: cannot write " << o.json_path << "\n";
      return 1;
    }
    std::printf("\nwrote %s\n", o.json_path.c_str());
  }
  std::printf("%s\n", ok ? "gpu_kernel_check: all kernels agree with the CPU reference"
                         : "gpu_kernel_check: FAILED (see the rows marked FAIL or ERROR above)");
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace moesim::backend::gpu

int main(int argc, char** argv) { return moesim::backend::gpu::Main(argc, argv); }
