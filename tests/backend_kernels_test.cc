// The CPU reference kernels of one MoE layer (backend/kernels/cpu_kernels.h), on hand-made inputs
// whose answers are worked out in the comments; and, where CUDA is built, the CUDA kernels
// against them (skipped when no GPU is visible).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "backend/kernels/cpu_kernels.h"
#include "backend/kernels/cuda/check_common.h"
#include "backend/kernels/gpu_compare.h"
#include "backend/kernels/gpu_kernels.h"

namespace moesim::backend {
namespace {

float Sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

std::vector<float> Random(size_t n, float scale, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

}  // namespace

TEST_CASE("RouterTopK softmax keeps the largest logits with ties to the lower id", "[kernels]") {
  // Three tokens, four experts, top-2.
  const std::vector<float> logits = {1,
                                     3,
                                     2,
                                     3,  // tie at 3: ids 1 then 3
                                     0,
                                     0,
                                     0,
                                     0,  // all tied: ids 0 then 1
                                     std::log(1.0f),
                                     std::log(2.0f),
                                     std::log(3.0f),
                                     std::log(4.0f)};  // softmax = i / 10
  RouterConfig config{.num_experts = 4, .top_k = 2};
  const RouterOutput r = RouterTopK(logits, 3, config);
  CHECK(r.experts == std::vector<int32_t>{1, 3, 0, 1, 3, 2});
  // Normalised: equal scores split 1/2 : 1/2; token 2 keeps 4/10 and 3/10, i.e. 4/7 and 3/7.
  CHECK(r.weights[0] == Approx(0.5f));
  CHECK(r.weights[1] == Approx(0.5f));
  CHECK(r.weights[2] == Approx(0.5f));
  CHECK(r.weights[4] == Approx(4.0f / 7));
  CHECK(r.weights[5] == Approx(3.0f / 7));

  config.normalize = false;  // raw softmax scores: 4/10 and 3/10
  const RouterOutput raw = RouterTopK(logits, 3, config);
  CHECK(raw.weights[4] == Approx(0.4f));
  CHECK(raw.weights[5] == Approx(0.3f));
}

TEST_CASE("RouterTopK sigmoid scores each expert on its own", "[kernels]") {
  // Logits 0, 2, -1: top-2 is expert 1 (sigmoid 2 = 0.8808) then expert 0 (sigmoid 0 = 0.5).
  const std::vector<float> logits = {0, 2, -1};
  RouterConfig config{
      .num_experts = 3, .top_k = 2, .score = ScoreFunction::kSigmoid, .normalize = false};
  RouterOutput r = RouterTopK(logits, 1, config);
  CHECK(r.experts == std::vector<int32_t>{1, 0});
  CHECK(r.weights[0] == Approx(Sigmoid(2)));
  CHECK(r.weights[1] == Approx(0.5f));
  config.normalize = true;  // 0.8808 / 1.3808 = 0.6379 and 0.5 / 1.3808 = 0.3621
  r = RouterTopK(logits, 1, config);
  CHECK(r.weights[0] == Approx(Sigmoid(2) / (Sigmoid(2) + 0.5f)));
  CHECK(r.weights[1] == Approx(0.5f / (Sigmoid(2) + 0.5f)));
  CHECK(r.weights[0] + r.weights[1] == Approx(1.0f));
}

TEST_CASE("RouterTopK grouped top-k only picks from the best groups", "[kernels]") {
  // 8 experts in 4 groups of 2; the best 2 groups by the sum of their top-2 sigmoid scores:
  //   group 0 (5, -10):  0.9933 + 0.0000 = 0.9933
  //   group 1 (4, 4):    0.9820 + 0.9820 = 1.9640   <- best
  //   group 2 (4.5, -10): 0.9890 + 0.0000 = 0.9890
  //   group 3 (0, 0):    0.5    + 0.5    = 1.0      <- second
  // Without groups top-2 would be experts 0 (5) and 4 (4.5); with them, experts 2 and 3 (tied at
  // 4, lower id first), each weight 1/2 after normalising.
  const std::vector<float> logits = {5, -10, 4, 4, 4.5, -10, 0, 0};
  RouterConfig config{.num_experts = 8,
                      .top_k = 2,
                      .score = ScoreFunction::kSigmoid,
                      .groups = 4,
                      .topk_groups = 2};
  REQUIRE(CheckRouterConfig(config).ok());
  RouterOutput r = RouterTopK(logits, 1, config);
  CHECK(r.experts == std::vector<int32_t>{2, 3});
  CHECK(r.weights[0] == Approx(0.5f));
  // top_k 3 from groups 1 and 3: experts 2, 3, then 6 (tied with 7 at 0, lower id).
  config.top_k = 3;
  r = RouterTopK(logits, 1, config);
  CHECK(r.experts == std::vector<int32_t>{2, 3, 6});
  config.groups = config.topk_groups = 1;  // grouping off: the plain top-3 is 0, 4, then 2
  r = RouterTopK(logits, 1, config);
  CHECK(r.experts == std::vector<int32_t>{0, 4, 2});
}

TEST_CASE("RouterTopK rejects configs it cannot run", "[kernels]") {
  CHECK_FALSE(CheckRouterConfig({.num_experts = 0}).ok());
  CHECK_FALSE(CheckRouterConfig({.num_experts = 4, .top_k = 5}).ok());
  CHECK_FALSE(CheckRouterConfig({.num_experts = 6, .top_k = 1, .groups = 4}).ok());  // 6 % 4
  // 2 groups of 4 experts, 1 eligible group: at most 4 experts can be chosen.
  CHECK_FALSE(CheckRouterConfig({.num_experts = 8, .top_k = 5, .groups = 2}).ok());
  CHECK(CheckRouterConfig({.num_experts = 8, .top_k = 4, .groups = 2}).ok());
  // An invalid config or too few logits gives empty vectors, never a read out of bounds.
  CHECK(RouterTopK(std::vector<float>(4), 1, {.num_experts = 4, .top_k = 5}).experts.empty());
  CHECK(RouterTopK(std::vector<float>(4), 2, {.num_experts = 4, .top_k = 1}).experts.empty());
}

TEST_CASE("BuildPermutation groups slots by bucket in slot order", "[kernels]") {
  // Slots 0..4 go to buckets 2, 0, 2, 1, 0; bucket 3 is empty.
  //   counts  = 2, 1, 2, 0    offsets = 0, 2, 3, 5, 5
  //   bucket 0 gets slots 1, 4 (rows 0, 1); bucket 1 slot 3 (row 2); bucket 2 slots 0, 2 (rows 3,
  //   4)
  const std::vector<int32_t> buckets = {2, 0, 2, 1, 0};
  const Permutation p = BuildPermutation(buckets, 4);
  CHECK(p.bucket_counts == std::vector<uint64_t>{2, 1, 2, 0});
  CHECK(p.bucket_offsets == std::vector<uint64_t>{0, 2, 3, 5, 5});
  CHECK(p.row_of_slot == std::vector<uint32_t>{3, 0, 4, 2, 1});
  CHECK(p.slot_of_row == std::vector<uint32_t>{1, 4, 3, 0, 2});
  // An id out of range gives an empty permutation.
  CHECK(BuildPermutation(std::vector<int32_t>{0, 4}, 4).row_of_slot.empty());
  CHECK(BuildPermutation(std::vector<int32_t>{-1}, 4).bucket_counts.empty());
}

TEST_CASE("Permute then UnpermuteCombine through identity experts gives back x", "[kernels]") {
  // With expert_out = permuted (identity experts) and each token's weights summing to 1,
  // y[t] = sum_k w_k x[t] = x[t].
  std::mt19937 rng(3);
  const uint32_t tokens = 5, top_k = 2, hidden = 6, experts = 4;
  const std::vector<float> x = Random(tokens * hidden, 1.0f, rng);
  const std::vector<int32_t> choice = {3, 0, 1, 3, 0, 1, 2, 0, 3, 1};
  const std::vector<float> weights = {0.25f, 0.75f,  0.5f,   0.5f,   1.0f,
                                      0.0f,  0.125f, 0.875f, 0.625f, 0.375f};
  const Permutation p = BuildPermutation(choice, experts);
  std::vector<float> permuted(tokens * top_k * hidden);
  Permute(x.data(), hidden, p, top_k, permuted.data());
  // Row r holds token slot_of_row[r] / top_k: bucket 0's first row is slot 1, token 0.
  CHECK(permuted[0] == x[0]);
  std::vector<float> y(tokens * hidden, -1.0f);
  UnpermuteCombine(permuted.data(), hidden, p, weights, top_k, y.data());
  for (size_t i = 0; i < y.size(); ++i) CHECK(y[i] == Approx(x[i]).margin(1e-6));
}

TEST_CASE("GroupedSwiGlu matches a naive triple loop with an empty bucket", "[kernels]") {
  // y = (silu(x . gate_e) * (x . up_e)) . down_e per bucket; bucket 1 has no rows.
  std::mt19937 rng(7);
  const uint32_t hidden = 5, ffn = 7;
  const std::vector<uint64_t> counts = {2, 0, 3};
  ExpertWeights w{3,
                  hidden,
                  ffn,
                  Random(3 * hidden * ffn, 0.5f, rng),
                  Random(3 * hidden * ffn, 0.5f, rng),
                  Random(3 * hidden * ffn, 0.5f, rng)};
  const uint64_t rows = 5;
  const std::vector<float> x = Random(rows * hidden, 1.0f, rng);
  std::vector<float> y(rows * hidden, NAN);
  GroupedSwiGlu(x.data(), counts, w, y.data());

  uint64_t row = 0;
  for (uint64_t e = 0; e < counts.size(); ++e) {
    const float* g = w.gate.data() + e * hidden * ffn;
    const float* u = w.up.data() + e * hidden * ffn;
    const float* d = w.down.data() + e * hidden * ffn;
    for (uint64_t r = 0; r < counts[e]; ++r, ++row) {
      std::vector<double> act(ffn);
      for (uint32_t j = 0; j < ffn; ++j) {
        double gate = 0, up = 0;
        for (uint32_t i = 0; i < hidden; ++i) {
          gate += double{x[row * hidden + i]} * g[i * ffn + j];
          up += double{x[row * hidden + i]} * u[i * ffn + j];
        }
        act[j] = gate / (1 + std::exp(-gate)) * up;
      }
      for (uint32_t i = 0; i < hidden; ++i) {
        double out = 0;
        for (uint32_t j = 0; j < ffn; ++j) out += act[j] * d[j * hidden + i];
        CHECK(y[row * hidden + i] == Approx(out).margin(1e-6));
      }
    }
  }
}

TEST_CASE("The layer's kernels do nothing for zero tokens", "[kernels]") {
  const RouterConfig config{.num_experts = 4, .top_k = 2};
  const RouterOutput r = RouterTopK({}, 0, config);
  CHECK(r.experts.empty());
  const Permutation p = BuildPermutation(r.experts, 4);
  CHECK(p.bucket_counts == std::vector<uint64_t>{0, 0, 0, 0});
  CHECK(p.bucket_offsets == std::vector<uint64_t>{0, 0, 0, 0, 0});
  CHECK(p.row_of_slot.empty());
  ExpertWeights w{4, 2, 2, std::vector<float>(16), std::vector<float>(16), std::vector<float>(16)};
  float sentinel = 42;
  Permute(nullptr, 2, p, 2, &sentinel);
  GroupedSwiGlu(nullptr, p.bucket_counts, w, &sentinel);
  UnpermuteCombine(nullptr, 2, p, r.weights, 2, &sentinel);
  CHECK(sentinel == 42);
}

TEST_CASE("A small MoE layer on the CPU equals the per-token sum of its experts", "[kernels]") {
  // y[t] = sum over k of w[t,k] * FFN_{e[t,k]}(x[t]); FFN of one row is GroupedSwiGlu of a
  // single-row bucket of that expert.
  std::mt19937 rng(11);
  const uint32_t tokens = 9, hidden = 8, ffn = 16, experts = 4, top_k = 2;
  const std::vector<float> x = Random(tokens * hidden, 1.0f, rng);
  const std::vector<float> logits = Random(tokens * experts, 2.0f, rng);
  ExpertWeights w{experts,
                  hidden,
                  ffn,
                  Random(experts * hidden * ffn, 0.3f, rng),
                  Random(experts * hidden * ffn, 0.3f, rng),
                  Random(experts * hidden * ffn, 0.3f, rng)};
  const RouterOutput r = RouterTopK(logits, tokens, {.num_experts = experts, .top_k = top_k});
  const Permutation p = BuildPermutation(r.experts, experts);
  std::vector<float> permuted(tokens * top_k * hidden), out(tokens * top_k * hidden);
  std::vector<float> y(tokens * hidden);
  Permute(x.data(), hidden, p, top_k, permuted.data());
  GroupedSwiGlu(permuted.data(), p.bucket_counts, w, out.data());
  UnpermuteCombine(out.data(), hidden, p, r.weights, top_k, y.data());

  for (uint32_t t = 0; t < tokens; ++t) {
    std::vector<float> expected(hidden, 0.0f), one(hidden);
    for (uint32_t k = 0; k < top_k; ++k) {
      std::vector<uint64_t> counts(experts, 0);
      counts[r.experts[t * top_k + k]] = 1;
      GroupedSwiGlu(x.data() + t * hidden, counts, w, one.data());
      for (uint32_t i = 0; i < hidden; ++i) expected[i] += r.weights[t * top_k + k] * one[i];
    }
    for (uint32_t i = 0; i < hidden; ++i) CHECK(y[t * hidden + i] == Approx(expected[i]));
  }
}

TEST_CASE("The GPU check's routing logits give the loads they promise", "[kernels]") {
  // Balanced: 64 tokens x top-2 over 8 experts = 16 rows each. Zipf(1.2): expert 0 is the most
  // popular (P(0) / P(7) = 8^1.2 = 12 for the first choice) and every token keeps two experts.
  const RouterConfig config{.num_experts = 8, .top_k = 2};
  const auto loads = [&](const std::vector<float>& logits) {
    std::vector<int> n(8);
    for (int32_t e : RouterTopK(logits, 64, config).experts) ++n[e];
    return n;
  };
  CHECK(loads(gpu::BalancedLogits(64, 8, 1)) == std::vector<int>(8, 16));
  const std::vector<int> zipf = loads(gpu::RoutingLogits(64, 8, 1.2, 1));
  CHECK(zipf[0] == *std::max_element(zipf.begin(), zipf.end()));
  CHECK(zipf[0] > 16);
}

#if MOESIM_HAVE_CUDA
TEST_CASE("GPU kernels match the CPU reference - skips without a CUDA device", "[gpu]") {
  gpu::CompareConfig config;  // 256 tokens, hidden 512, ffn 1024, 8 experts, top-2
  for (gpu::GemmApi api : {gpu::GemmApi::kGroupedBatched, gpu::GemmApi::kPerExpertLoop}) {
    config.gemm = api;
    StatusOr<std::vector<gpu::KernelCheck>> checks = gpu::CompareWithCpu(config);
    if (!checks.ok() && gpu::IsNoDeviceError(checks.error())) {
      // tests/backend.cmake reports the case as skipped on this marker.
      WARN("GPU case skipped: " << checks.error().message());
      return;
    }
    REQUIRE(checks.ok());
    for (const gpu::KernelCheck& c : *checks) {
      INFO(c.kernel << " via " << gpu::GemmApiName(api) << ": max_rel " << c.max_rel_error
                    << ", mismatches " << c.mismatches << ", NaNs " << c.nans);
      CHECK(c.pass);
    }
  }
}
#else
TEST_CASE("GPU entry points say the build has no CUDA", "[kernels]") {
  const StatusOr<gpu::DeviceInfo> device = gpu::QueryDevice();
  REQUIRE_FALSE(device.ok());
  CHECK(gpu::IsNoDeviceError(device.error()));
  CHECK_FALSE(gpu::GpuLayer::Create({}).ok());
}
#endif

}  // namespace moesim::backend

TEST_CASE("GemmApi auto: grouped for 8+ experts under 128 rows each, else the loop", "[kernels]") {
  using moesim::backend::gpu::GemmApi;
  using moesim::backend::gpu::ResolveGemmApi;
  // Offsets are cumulative rows per expert. Eight experts of 64 rows: mean 64 < 128, grouped.
  const std::vector<uint64_t> small = {0, 64, 128, 192, 256, 320, 384, 448, 512};
  CHECK(ResolveGemmApi(GemmApi::kAuto, small) == GemmApi::kGroupedBatched);
  // Eight experts of 128 rows: mean 128, the loop.
  const std::vector<uint64_t> even = {0, 128, 256, 384, 512, 640, 768, 896, 1024};
  CHECK(ResolveGemmApi(GemmApi::kAuto, even) == GemmApi::kPerExpertLoop);
  // One expert of 8 rows: the loop (the grouped call measured 1.4-2.3x slower for one expert).
  CHECK(ResolveGemmApi(GemmApi::kAuto, std::vector<uint64_t>{0, 8}) == GemmApi::kPerExpertLoop);
  // Seven non-empty experts of 1 row, one empty: fewer than 8 experts, the loop.
  CHECK(ResolveGemmApi(GemmApi::kAuto, std::vector<uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 7}) ==
        GemmApi::kPerExpertLoop);
  // Empty experts do not count: 8 non-empty of 10, 1,023 rows (mean 127.9): grouped; one row
  // more (mean 128): the loop.
  std::vector<uint64_t> ten = {0, 0, 100, 200, 300, 400, 500, 600, 700, 700, 1023};
  CHECK(ResolveGemmApi(GemmApi::kAuto, ten) == GemmApi::kGroupedBatched);
  ten.back() = 1024;
  CHECK(ResolveGemmApi(GemmApi::kAuto, ten) == GemmApi::kPerExpertLoop);
  // No rows at all: the loop, which then issues nothing.
  CHECK(ResolveGemmApi(GemmApi::kAuto, std::vector<uint64_t>{0, 0, 0}) == GemmApi::kPerExpertLoop);
  // An explicit choice is kept whatever the loads.
  CHECK(ResolveGemmApi(GemmApi::kGroupedBatched, even) == GemmApi::kGroupedBatched);
  CHECK(ResolveGemmApi(GemmApi::kPerExpertLoop, small) == GemmApi::kPerExpertLoop);
  CHECK(std::string(moesim::backend::gpu::GemmApiName(GemmApi::kAuto)) == "auto");
}
