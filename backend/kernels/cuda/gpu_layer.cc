// GpuLayer: device memory of one MoE layer and the order its ops run in (see gpu_kernels.h).
#include <algorithm>
#include <climits>
#include <cmath>

#include "backend/kernels/bf16.h"
#include "backend/kernels/cuda/cuda_util.h"
#include "backend/kernels/cuda/grouped_gemm.h"
#include "backend/kernels/cuda/kernels.cuh"
#include "backend/kernels/gpu_kernels.h"

namespace moesim::backend::gpu {
namespace {

// Events recorded between the ops of Run(), in this order.
enum Mark {
  kStart,
  kRouted,
  kPermutation,
  kCountsOnHost,
  kPermuted,
  kUp,
  kSwiGlu,
  kDown,
  kDone,
  kMarks
};

}  // namespace

struct GpuLayer::Impl {
  GpuLayerConfig config;
  uint32_t tokens = 0;
  StreamAndBlas stream;
  EventMarks marks;
  GroupedGemm up, down;
  uint32_t* host_offsets = nullptr;  // pinned, [experts + 1]
  std::vector<uint64_t> offsets;     // host_offsets widened, for the GEMMs
  DeviceBuffer w1, w2;               // [E x 2F x H] (gate rows, then up rows), [E x H x F]
  DeviceBuffer x, logits, experts, weights, scratch, bucket_offsets, row_of_slot, slot_of_row;
  DeviceBuffer permuted, h, a, expert_out, y;

  ~Impl() {
    if (host_offsets != nullptr) (void)cudaFreeHost(host_offsets);
  }
  uint32_t num_experts() const { return config.router.num_experts; }
  uint64_t slots() const { return uint64_t{tokens} * config.router.top_k; }
  Status Enter() const {
    MOESIM_CUDA_OK(cudaSetDevice(config.device));
    return Status::Ok();
  }
  Status Allocate();
  StatusOr<GpuLayerTimes> Run();
};

Status GpuLayer::Impl::Allocate() {
  const uint64_t e = num_experts(), hid = config.hidden, ffn = config.ffn;
  const uint64_t tok = config.max_tokens, slot = tok * config.router.top_k;
  const uint64_t bf = sizeof(bf16);
  const BufferRequest wants[] = {
      {&w1, e * 2 * ffn * hid * bf, "gate/up weights"},
      {&w2, e * hid * ffn * bf, "down weights"},
      {&x, tok * hid * bf, "activations"},
      {&logits, tok * e * sizeof(float), "router logits"},
      {&experts, slot * sizeof(int32_t), "router experts"},
      {&weights, slot * sizeof(float), "router weights"},
      {&scratch, PermutationScratchWords(static_cast<uint32_t>(slot), e) * sizeof(uint32_t),
       "permutation scratch"},
      {&bucket_offsets, (e + 1) * sizeof(uint32_t), "expert offsets"},
      {&row_of_slot, slot * sizeof(uint32_t), "row_of_slot"},
      {&slot_of_row, slot * sizeof(uint32_t), "slot_of_row"},
      {&permuted, slot * hid * bf, "permuted rows"},
      {&h, slot * 2 * ffn * bf, "gate/up outputs"},
      {&a, slot * ffn * bf, "SwiGLU outputs"},
      {&expert_out, slot * hid * bf, "expert outputs"},
      {&y, tok * hid * bf, "layer outputs"},
  };
  MOESIM_RETURN_IF_ERROR(AllocateBuffers(wants));
  MOESIM_CUDA_OK(cudaMallocHost(&host_offsets, sizeof(uint32_t) * (e + 1)));
  offsets.assign(e + 1, 0);
  return Status::Ok();
}

StatusOr<std::unique_ptr<GpuLayer>> GpuLayer::Create(const GpuLayerConfig& config) {
  MOESIM_RETURN_IF_ERROR(CheckRouterConfig(config.router));
  const uint64_t max_slots = uint64_t{config.max_tokens} * config.router.top_k;
  if (config.max_tokens == 0 || config.hidden == 0 || config.ffn == 0 || max_slots > INT_MAX ||
      uint64_t{config.ffn} * 2 > INT_MAX || config.router.num_experts > 8192) {
    return Error(
        "GpuLayer: need max_tokens, hidden, ffn > 0, max_tokens * top_k and 2 * ffn "
        "below 2^31, at most 8192 experts (got max_tokens " +
        std::to_string(config.max_tokens) + ", hidden " + std::to_string(config.hidden) + ", ffn " +
        std::to_string(config.ffn) + ")");
  }
  MOESIM_RETURN_IF_ERROR(UseDevice(config.device));
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  MOESIM_RETURN_IF_ERROR(impl->stream.Init());
  MOESIM_RETURN_IF_ERROR(impl->marks.Init(kMarks));
  MOESIM_RETURN_IF_ERROR(impl->up.Init(config.router.num_experts));
  MOESIM_RETURN_IF_ERROR(impl->down.Init(config.router.num_experts));
  MOESIM_RETURN_IF_ERROR(impl->Allocate());
  return std::unique_ptr<GpuLayer>(new GpuLayer(std::move(impl)));
}

GpuLayer::GpuLayer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GpuLayer::~GpuLayer() = default;
const GpuLayerConfig& GpuLayer::config() const { return impl_->config; }
uint32_t GpuLayer::tokens() const { return impl_->tokens; }

Status GpuLayer::UploadWeights(const ExpertWeights& w) {
  const GpuLayerConfig& c = impl_->config;
  const uint64_t matrix = uint64_t{c.hidden} * c.ffn;
  if (w.experts != c.router.num_experts || w.hidden != c.hidden || w.ffn != c.ffn ||
      w.gate.size() != w.experts * matrix || w.up.size() != w.experts * matrix ||
      w.down.size() != w.experts * matrix) {
    return Error("GpuLayer::UploadWeights: weights are " + std::to_string(w.experts) + " x " +
                 std::to_string(w.hidden) + " x " + std::to_string(w.ffn) + ", layer wants " +
                 std::to_string(c.router.num_experts) + " x " + std::to_string(c.hidden) + " x " +
                 std::to_string(c.ffn) + " (and gate, up, down of experts*hidden*ffn each)");
  }
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  return UploadExpertWeights(w, impl_->w1, impl_->w2);
}

Status GpuLayer::RandomWeights(uint64_t seed) {
  const GpuLayerConfig& c = impl_->config;
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  return FillRandomExpertWeights(c.router.num_experts, c.hidden, c.ffn, seed, impl_->w1, impl_->w2,
                                 impl_->stream.stream());
}

Status GpuLayer::UploadLogits(std::span<const float> logits, uint32_t tokens) {
  const GpuLayerConfig& c = impl_->config;
  if (tokens > c.max_tokens || logits.size() != uint64_t{tokens} * c.router.num_experts) {
    return Error("GpuLayer::UploadLogits: " + std::to_string(logits.size()) + " logits for " +
                 std::to_string(tokens) + " tokens x " + std::to_string(c.router.num_experts) +
                 " experts (at most " + std::to_string(c.max_tokens) + " tokens)");
  }
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  MOESIM_CUDA_OK(
      cudaMemcpy(impl_->logits.as<void>(), logits.data(), logits.size_bytes(), cudaMemcpyDefault));
  impl_->tokens = tokens;
  return Status::Ok();
}

Status GpuLayer::UploadActivations(std::span<const float> x) {
  const uint64_t want = uint64_t{impl_->tokens} * impl_->config.hidden;
  if (x.size() != want) {
    return Error("GpuLayer::UploadActivations: " + std::to_string(x.size()) +
                 " values, want tokens() * hidden = " + std::to_string(want) +
                 " (UploadLogits sets tokens())");
  }
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  return UploadAsBf16(x, impl_->x);
}

Status GpuLayer::RandomActivations(uint64_t seed) {
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  const uint64_t n = uint64_t{impl_->config.max_tokens} * impl_->config.hidden;
  MOESIM_CUDA_OK(LaunchFillUniform(impl_->x.as<bf16>(), n, seed, 1.0f, impl_->stream.stream()));
  MOESIM_CUDA_OK(cudaStreamSynchronize(impl_->stream.stream()));
  return Status::Ok();
}

Status GpuLayer::Poison() {
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  Impl& m = *impl_;
  // 0xff bytes: NaN as bf16 and fp32, 0xffffffff as an index.
  for (DeviceBuffer* b : {&m.experts, &m.weights, &m.bucket_offsets, &m.row_of_slot, &m.slot_of_row,
                          &m.permuted, &m.h, &m.a, &m.expert_out, &m.y}) {
    if (b->bytes() == 0) continue;
    MOESIM_CUDA_OK(cudaMemsetAsync(b->as<void>(), 0xff, b->bytes(), m.stream.stream()));
  }
  MOESIM_CUDA_OK(cudaStreamSynchronize(m.stream.stream()));
  return Status::Ok();
}

StatusOr<GpuLayerTimes> GpuLayer::Run() {
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  return impl_->Run();
}

StatusOr<GpuLayerTimes> GpuLayer::Benchmark(uint32_t warmup, uint32_t iterations) {
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  for (uint32_t i = 0; i < warmup; ++i) {
    StatusOr<GpuLayerTimes> t = impl_->Run();
    if (!t.ok()) return t.error();
  }
  std::vector<std::vector<double>> ms(8);
  for (uint32_t i = 0; i < iterations; ++i) {
    MOESIM_ASSIGN_OR_RETURN(GpuLayerTimes t, impl_->Run());
    const double parts[] = {t.router_ms, t.permutation_ms, t.permute_ms, t.gemm_up_ms,
                            t.swiglu_ms, t.gemm_down_ms,   t.combine_ms, t.total_ms};
    for (int p = 0; p < 8; ++p) ms[p].push_back(parts[p]);
  }
  auto median = [&](int p) { return Summarize(ms[p]).median_ms; };
  return GpuLayerTimes{median(0), median(1), median(2), median(3),
                       median(4), median(5), median(6), median(7)};
}

StatusOr<GpuLayerTimes> GpuLayer::Impl::Run() {
  const RouterConfig& r = config.router;
  const uint32_t slot_count = static_cast<uint32_t>(slots());
  const int hid = static_cast<int>(config.hidden), ffn = static_cast<int>(config.ffn);
  cudaStream_t s = stream.stream();
  cublasHandle_t blas = stream.blas();

  MOESIM_RETURN_IF_ERROR(marks.Record(kStart, s));
  MOESIM_CUDA_OK(LaunchRouterTopK(logits.as<float>(), tokens, r, experts.as<int32_t>(),
                                  weights.as<float>(), s));
  MOESIM_RETURN_IF_ERROR(marks.Record(kRouted, s));
  MOESIM_CUDA_OK(LaunchBuildPermutation(experts.as<int32_t>(), slot_count, r.num_experts,
                                        scratch.as<uint32_t>(), bucket_offsets.as<uint32_t>(),
                                        row_of_slot.as<uint32_t>(), slot_of_row.as<uint32_t>(), s));
  // The GEMMs' row counts are host arguments of cuBLAS: bring the offsets back and wait.
  MOESIM_CUDA_OK(cudaMemcpyAsync(host_offsets, bucket_offsets.as<void>(),
                                 sizeof(uint32_t) * (r.num_experts + 1), cudaMemcpyDeviceToHost,
                                 s));
  MOESIM_RETURN_IF_ERROR(marks.Record(kPermutation, s));
  MOESIM_CUDA_OK(cudaStreamSynchronize(s));
  for (uint32_t e = 0; e <= r.num_experts; ++e) offsets[e] = host_offsets[e];
  for (uint32_t e = 0; e < r.num_experts; ++e) {
    if (offsets[e] > offsets[e + 1] || offsets[e + 1] > slot_count) {
      return Error("GpuLayer: permutation produced bad offsets (expert " + std::to_string(e) +
                   ": " + std::to_string(offsets[e]) + ".." + std::to_string(offsets[e + 1]) +
                   " of " + std::to_string(slot_count) + " rows)");
    }
  }
  MOESIM_RETURN_IF_ERROR(marks.Record(kCountsOnHost, s));
  MOESIM_CUDA_OK(LaunchPermute(x.as<bf16>(), config.hidden, slot_of_row.as<uint32_t>(), slot_count,
                               r.top_k, permuted.as<bf16>(), s));
  MOESIM_RETURN_IF_ERROR(marks.Record(kPermuted, s));
  MOESIM_RETURN_IF_ERROR(up.Run(blas, s, config.gemm, permuted.as<bf16>(), w1.as<bf16>(),
                                h.as<bf16>(), offsets, 2 * ffn, hid));
  MOESIM_RETURN_IF_ERROR(marks.Record(kUp, s));
  MOESIM_CUDA_OK(LaunchSwiGlu(h.as<bf16>(), slot_count, config.ffn, a.as<bf16>(), s));
  MOESIM_RETURN_IF_ERROR(marks.Record(kSwiGlu, s));
  MOESIM_RETURN_IF_ERROR(down.Run(blas, s, config.gemm, a.as<bf16>(), w2.as<bf16>(),
                                  expert_out.as<bf16>(), offsets, hid, ffn));
  MOESIM_RETURN_IF_ERROR(marks.Record(kDown, s));
  MOESIM_CUDA_OK(LaunchUnpermuteCombine(expert_out.as<bf16>(), config.hidden,
                                        row_of_slot.as<uint32_t>(), weights.as<float>(), tokens,
                                        r.top_k, y.as<bf16>(), s));
  MOESIM_RETURN_IF_ERROR(marks.Record(kDone, s));

  GpuLayerTimes t;
  double* parts[] = {&t.router_ms,  &t.permutation_ms, nullptr,         &t.permute_ms,
                     &t.gemm_up_ms, &t.swiglu_ms,      &t.gemm_down_ms, &t.combine_ms};
  for (int m = kStart; m < kDone; ++m) {
    if (parts[m] == nullptr) continue;  // the host's wait for the offsets
    MOESIM_ASSIGN_OR_RETURN(*parts[m], marks.Elapsed(m, m + 1));
  }
  MOESIM_ASSIGN_OR_RETURN(t.total_ms, marks.Elapsed(kStart, kDone));
  return t;
}

StatusOr<GpuLayerOutputs> GpuLayer::Download() const {
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  const Impl& m = *impl_;
  const uint64_t slots = m.slots(), hid = m.config.hidden, e = m.num_experts();
  cudaStream_t s = m.stream.stream();
  GpuLayerOutputs out;
  out.tokens = m.tokens;
  MOESIM_ASSIGN_OR_RETURN(out.routing.experts, Fetch<int32_t>(m.experts, slots, s));
  MOESIM_ASSIGN_OR_RETURN(out.routing.weights, Fetch<float>(m.weights, slots, s));
  MOESIM_ASSIGN_OR_RETURN(std::vector<uint32_t> offsets,
                          Fetch<uint32_t>(m.bucket_offsets, e + 1, s));
  Permutation& p = out.permutation;
  p.bucket_offsets.assign(offsets.begin(), offsets.end());
  for (uint64_t b = 0; b < e; ++b) p.bucket_counts.push_back(offsets[b + 1] - offsets[b]);
  MOESIM_ASSIGN_OR_RETURN(p.row_of_slot, Fetch<uint32_t>(m.row_of_slot, slots, s));
  MOESIM_ASSIGN_OR_RETURN(p.slot_of_row, Fetch<uint32_t>(m.slot_of_row, slots, s));
  MOESIM_ASSIGN_OR_RETURN(out.permuted, FetchBf16(m.permuted, slots * hid, s));
  MOESIM_ASSIGN_OR_RETURN(out.expert_out, FetchBf16(m.expert_out, slots * hid, s));
  MOESIM_ASSIGN_OR_RETURN(out.y, FetchBf16(m.y, uint64_t{m.tokens} * hid, s));
  return out;
}

}  // namespace moesim::backend::gpu
