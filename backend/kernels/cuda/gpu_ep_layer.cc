// GpuEpLayer: one rank's share of an expert-parallel MoE layer, stage by stage (gpu_kernels.h).
// The bf16 path ran on one H200 (results/gpu/h200-2026-11-28, moebench run --gpus 1 --check). The
// FP8 path (config.fp8) is compiled, not yet run: its quantizers and GEMM are the ones
// gpu_kernel_check compares with the CPU reference, the padding and the order are new.
#include <algorithm>
#include <climits>
#include <cmath>

#include "backend/kernels/bf16.h"
#include "backend/kernels/cuda/cuda_util.h"
#include "backend/kernels/cuda/fp8_gemm.h"
#include "backend/kernels/cuda/grouped_gemm.h"
#include "backend/kernels/cuda/kernels.cuh"
#include "backend/kernels/gpu_kernels.h"

namespace moesim::backend::gpu {
namespace {

// The FP8 GEMMs' row multiple (cuda/fp8_gemm.h; DeepGEMM pads to 128, Transformer Engine to 16).
constexpr uint64_t kFp8Rows = 16;

uint64_t PaddedRows(uint64_t rows) { return (rows + kFp8Rows - 1) / kFp8Rows * kFp8Rows; }

}  // namespace

struct GpuEpLayer::Impl {
  GpuEpLayerConfig config;
  uint32_t tokens = 0;
  StreamAndBlas stream;
  EventMarks marks;
  GroupedGemm up, down;
  uint32_t* host_offsets = nullptr;  // pinned, [buckets + 1]
  SendLayout send;
  DeviceBuffer w1, w2;  // [L x 2F x H] (gate rows, then up rows), [L x H x F]; L local experts
  DeviceBuffer bucket_of_expert, x, logits, experts, weights, buckets, scratch, bucket_offsets;
  DeviceBuffer row_of_slot, slot_of_row, send_rows, recv_rows, expert_in, h, a, expert_out;
  DeviceBuffer back_send, back_recv, y;
  // config.fp8 only: the weights' E4M3 codes and 128 x 128 block scales (laid out as w1, w2), and
  // each GEMM's input quantized per 1 x 128 tile into a copy whose experts start on 16-row
  // boundaries.
  Fp8BlockGemm fp8_gemm;
  DeviceBuffer w1_codes, w1_scales, w2_codes, w2_scales, xq, xq_scales, aq, aq_scales;

  ~Impl() {
    if (host_offsets != nullptr) (void)cudaFreeHost(host_offsets);
  }
  uint32_t bucket_count() const { return config.world * config.local_experts; }
  uint64_t slots() const { return uint64_t{tokens} * config.router.top_k; }
  uint64_t row_bytes() const { return uint64_t{config.hidden} * sizeof(bf16); }
  // Rows of the padded copies: the received rows and up to 15 more per expert.
  uint64_t padded_rows() const {
    return uint64_t{config.max_recv_rows} + (kFp8Rows - 1) * config.local_experts;
  }
  Status Enter() const {
    MOESIM_CUDA_OK(cudaSetDevice(config.device));
    return Status::Ok();
  }
  Status Allocate();
  Status AllocateFp8();
  // config.fp8: the bf16 weights w1, w2 into codes and block scales.
  Status QuantizeWeights();
  Status Fp8Experts(const ReceiveLayout& layout);
  // Copies each block between source-major `from` and expert-major `to` rows (or back).
  Status MoveBlocks(std::span<const RowBlock> blocks, const DeviceBuffer& from, DeviceBuffer& to,
                    bool to_expert_major);
};

Status GpuEpLayer::Impl::Allocate() {
  const uint64_t e = config.router.num_experts, local = config.local_experts;
  const uint64_t hid = config.hidden, ffn = config.ffn;
  const uint64_t tok = config.max_tokens, slot = tok * config.router.top_k;
  const uint64_t recv = config.max_recv_rows, bf = sizeof(bf16);
  // With FP8 the gate/up outputs and SwiGLU run over the padded rows, and the down GEMM's last
  // expert spills up to 15 rows past the received ones.
  const uint64_t work = config.fp8 ? padded_rows() : recv;
  const uint64_t out = config.fp8 ? recv + kFp8Rows - 1 : recv;
  const BufferRequest wants[] = {
      {&w1, local * 2 * ffn * hid * bf, "gate/up weights"},
      {&w2, local * hid * ffn * bf, "down weights"},
      {&bucket_of_expert, e * sizeof(int32_t), "bucket of each expert"},
      {&x, tok * hid * bf, "activations"},
      {&logits, tok * e * sizeof(float), "router logits"},
      {&experts, slot * sizeof(int32_t), "router experts"},
      {&weights, slot * sizeof(float), "router weights"},
      {&buckets, slot * sizeof(int32_t), "bucket of each slot"},
      {&scratch,
       PermutationScratchWords(static_cast<uint32_t>(slot), bucket_count()) * sizeof(uint32_t),
       "permutation scratch"},
      {&bucket_offsets, (uint64_t{bucket_count()} + 1) * sizeof(uint32_t), "bucket offsets"},
      {&row_of_slot, slot * sizeof(uint32_t), "row_of_slot"},
      {&slot_of_row, slot * sizeof(uint32_t), "slot_of_row"},
      {&send_rows, slot * hid * bf, "rows to send"},
      {&recv_rows, recv * hid * bf, "received rows"},
      {&expert_in, recv * hid * bf, "expert-major rows"},
      {&h, work * 2 * ffn * bf, "gate/up outputs"},
      {&a, work * ffn * bf, "SwiGLU outputs"},
      {&expert_out, out * hid * bf, "expert outputs"},
      {&back_send, recv * hid * bf, "outputs to send back"},
      {&back_recv, slot * hid * bf, "outputs received back"},
      {&y, tok * hid * bf, "layer outputs"},
  };
  MOESIM_RETURN_IF_ERROR(AllocateBuffers(wants));
  if (config.fp8) MOESIM_RETURN_IF_ERROR(AllocateFp8());
  MOESIM_CUDA_OK(cudaMallocHost(&host_offsets, sizeof(uint32_t) * (bucket_count() + 1)));
  MOESIM_CUDA_OK(cudaMemcpy(bucket_of_expert.as<void>(), config.bucket_of_expert.data(),
                            e * sizeof(int32_t), cudaMemcpyHostToDevice));
  return Status::Ok();
}

Status GpuEpLayer::Impl::AllocateFp8() {
  const uint64_t local = config.local_experts, hid = config.hidden, ffn = config.ffn;
  const uint64_t rows = padded_rows(), f32 = sizeof(float);
  const BufferRequest wants[] = {
      {&w1_codes, local * 2 * ffn * hid, "FP8 gate/up weights"},
      {&w1_scales, local * (2 * ffn / 128) * (hid / 128) * f32, "FP8 gate/up weight scales"},
      {&w2_codes, local * hid * ffn, "FP8 down weights"},
      {&w2_scales, local * (hid / 128) * (ffn / 128) * f32, "FP8 down weight scales"},
      {&xq, rows * hid, "FP8 expert inputs"},
      {&xq_scales, rows * (hid / 128) * f32, "FP8 expert input scales"},
      {&aq, rows * ffn, "FP8 SwiGLU outputs"},
      {&aq_scales, rows * (ffn / 128) * f32, "FP8 SwiGLU output scales"},
  };
  MOESIM_RETURN_IF_ERROR(AllocateBuffers(wants));
  return fp8_gemm.Init();
}

Status GpuEpLayer::Impl::QuantizeWeights() {
  if (!config.fp8) return Status::Ok();
  const uint64_t local = config.local_experts;
  cudaStream_t s = stream.stream();
  // Each expert's gate/up matrix has 2 ffn rows and its down matrix hidden rows, multiples of
  // 128: each stack quantizes as one matrix, no block spanning two experts, and expert e's
  // scales start at e x (its rows / 128) x (its columns / 128).
  MOESIM_CUDA_OK(LaunchQuantizeBlocks128(w1.as<bf16>(), local * 2 * config.ffn, config.hidden,
                                         w1_codes.as<uint8_t>(), w1_scales.as<float>(), s));
  MOESIM_CUDA_OK(LaunchQuantizeBlocks128(w2.as<bf16>(), local * config.hidden, config.ffn,
                                         w2_codes.as<uint8_t>(), w2_scales.as<float>(), s));
  MOESIM_CUDA_OK(cudaStreamSynchronize(s));
  return Status::Ok();
}

Status GpuEpLayer::Impl::Fp8Experts(const ReceiveLayout& layout) {
  cudaStream_t s = stream.stream();
  const uint64_t hid = config.hidden, ffn = config.ffn;
  const std::vector<uint64_t>& offsets = layout.expert_offsets;
  // Each expert's rows quantized into the padded copy, starting on a 16-row boundary.
  std::vector<uint64_t> start(config.local_experts);
  uint64_t padded = 0;
  for (uint32_t e = 0; e < config.local_experts; ++e) {
    const uint64_t rows = offsets[e + 1] - offsets[e];
    start[e] = padded;
    if (rows == 0) continue;
    MOESIM_CUDA_OK(LaunchQuantizeTiles1x128(
        expert_in.as<bf16>() + offsets[e] * hid, rows, static_cast<uint32_t>(hid),
        xq.as<uint8_t>() + padded * hid, xq_scales.as<float>() + padded * (hid / 128), s));
    padded += PaddedRows(rows);
  }
  const int n_up = static_cast<int>(2 * ffn), n_down = static_cast<int>(hid);
  for (uint32_t e = 0; e < config.local_experts; ++e) {
    const uint64_t rows = offsets[e + 1] - offsets[e];
    if (rows == 0) continue;
    MOESIM_RETURN_IF_ERROR(fp8_gemm.Run(
        s, xq.as<uint8_t>() + start[e] * hid, xq_scales.as<float>() + start[e] * (hid / 128),
        w1_codes.as<uint8_t>() + e * 2 * ffn * hid,
        w1_scales.as<float>() + e * (2 * ffn / 128) * (hid / 128),
        h.as<bf16>() + start[e] * 2 * ffn, static_cast<int>(PaddedRows(rows)), n_up,
        static_cast<int>(hid)));
  }
  MOESIM_CUDA_OK(
      LaunchSwiGlu(h.as<bf16>(), static_cast<uint32_t>(padded), config.ffn, a.as<bf16>(), s));
  MOESIM_CUDA_OK(LaunchQuantizeTiles1x128(a.as<bf16>(), padded, config.ffn, aq.as<uint8_t>(),
                                          aq_scales.as<float>(), s));
  // Into the expert-major outputs in expert order: the padded rows past an expert's own land on
  // the next expert's first rows, which its own GEMM then overwrites (one stream, in order), or
  // on the 15 spare rows after the last.
  for (uint32_t e = 0; e < config.local_experts; ++e) {
    const uint64_t rows = offsets[e + 1] - offsets[e];
    if (rows == 0) continue;
    MOESIM_RETURN_IF_ERROR(fp8_gemm.Run(
        s, aq.as<uint8_t>() + start[e] * ffn, aq_scales.as<float>() + start[e] * (ffn / 128),
        w2_codes.as<uint8_t>() + e * hid * ffn,
        w2_scales.as<float>() + e * (hid / 128) * (ffn / 128),
        expert_out.as<bf16>() + offsets[e] * hid, static_cast<int>(PaddedRows(rows)), n_down,
        static_cast<int>(ffn)));
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<GpuEpLayer>> GpuEpLayer::Create(const GpuEpLayerConfig& config) {
  MOESIM_RETURN_IF_ERROR(CheckRouterConfig(config.router));
  const uint64_t max_slots = uint64_t{config.max_tokens} * config.router.top_k;
  const uint64_t buckets = uint64_t{config.world} * config.local_experts;
  if (config.hidden == 0 || config.ffn == 0 || config.world == 0 || config.local_experts == 0 ||
      max_slots > INT_MAX || config.max_recv_rows > INT_MAX || uint64_t{config.ffn} * 2 > INT_MAX ||
      buckets > 8192 || config.marks < 1) {
    return Error(
        "GpuEpLayer: need hidden, ffn, world, local_experts > 0, max_tokens * top_k, "
        "max_recv_rows and 2 * ffn below 2^31, world * local_experts <= 8192 (got hidden " +
        std::to_string(config.hidden) + ", ffn " + std::to_string(config.ffn) + ", world " +
        std::to_string(config.world) + ", local_experts " + std::to_string(config.local_experts) +
        ", max_tokens " + std::to_string(config.max_tokens) + ", max_recv_rows " +
        std::to_string(config.max_recv_rows) + ")");
  }
  if (config.bucket_of_expert.size() != config.router.num_experts) {
    return Error("GpuEpLayer: bucket_of_expert has " +
                 std::to_string(config.bucket_of_expert.size()) + " entries for " +
                 std::to_string(config.router.num_experts) + " experts");
  }
  for (int32_t b : config.bucket_of_expert) {
    if (b < 0 || static_cast<uint64_t>(b) >= buckets) {
      return Error("GpuEpLayer: bucket " + std::to_string(b) + " outside [0, " +
                   std::to_string(buckets) + ")");
    }
  }
  if (config.fp8 && (config.hidden % 128 != 0 || config.ffn % 128 != 0)) {
    return Error(
        "GpuEpLayer: FP8 expert GEMMs need hidden and ffn multiples of 128 (their block "
        "scales), got hidden " +
        std::to_string(config.hidden) + ", ffn " + std::to_string(config.ffn));
  }
  MOESIM_RETURN_IF_ERROR(UseDevice(config.device));
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  MOESIM_RETURN_IF_ERROR(impl->stream.Init());
  MOESIM_RETURN_IF_ERROR(impl->marks.Init(config.marks));
  MOESIM_RETURN_IF_ERROR(impl->up.Init(config.local_experts));
  MOESIM_RETURN_IF_ERROR(impl->down.Init(config.local_experts));
  MOESIM_RETURN_IF_ERROR(impl->Allocate());
  return std::unique_ptr<GpuEpLayer>(new GpuEpLayer(std::move(impl)));
}

GpuEpLayer::GpuEpLayer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GpuEpLayer::~GpuEpLayer() = default;
const GpuEpLayerConfig& GpuEpLayer::config() const { return impl_->config; }

Status GpuEpLayer::UploadWeights(const ExpertWeights& w) {
  const GpuEpLayerConfig& c = impl_->config;
  const uint64_t matrix = uint64_t{c.hidden} * c.ffn;
  if (w.experts != c.local_experts || w.hidden != c.hidden || w.ffn != c.ffn ||
      w.gate.size() != w.experts * matrix || w.up.size() != w.experts * matrix ||
      w.down.size() != w.experts * matrix) {
    return Error("GpuEpLayer::UploadWeights: weights are " + std::to_string(w.experts) + " x " +
                 std::to_string(w.hidden) + " x " + std::to_string(w.ffn) + ", the rank wants " +
                 std::to_string(c.local_experts) + " x " + std::to_string(c.hidden) + " x " +
                 std::to_string(c.ffn));
  }
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  MOESIM_RETURN_IF_ERROR(UploadExpertWeights(w, impl_->w1, impl_->w2));
  return impl_->QuantizeWeights();
}

Status GpuEpLayer::RandomWeights(uint64_t seed) {
  const GpuEpLayerConfig& c = impl_->config;
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  MOESIM_RETURN_IF_ERROR(FillRandomExpertWeights(c.local_experts, c.hidden, c.ffn, seed, impl_->w1,
                                                 impl_->w2, impl_->stream.stream()));
  return impl_->QuantizeWeights();
}

Status GpuEpLayer::UploadLogits(std::span<const float> logits, uint32_t tokens) {
  const GpuEpLayerConfig& c = impl_->config;
  if (tokens > c.max_tokens || logits.size() != uint64_t{tokens} * c.router.num_experts) {
    return Error("GpuEpLayer::UploadLogits: " + std::to_string(logits.size()) + " logits for " +
                 std::to_string(tokens) + " tokens x " + std::to_string(c.router.num_experts) +
                 " experts (at most " + std::to_string(c.max_tokens) + " tokens)");
  }
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  if (!logits.empty()) {
    MOESIM_CUDA_OK(cudaMemcpy(impl_->logits.as<void>(), logits.data(), logits.size_bytes(),
                              cudaMemcpyDefault));
  }
  impl_->tokens = tokens;
  return Status::Ok();
}

Status GpuEpLayer::UploadActivations(std::span<const float> x) {
  const uint64_t want = uint64_t{impl_->tokens} * impl_->config.hidden;
  if (x.size() != want) {
    return Error("GpuEpLayer::UploadActivations: " + std::to_string(x.size()) +
                 " values, want tokens * hidden = " + std::to_string(want) +
                 " (UploadLogits sets the tokens)");
  }
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  return UploadAsBf16(x, impl_->x);
}

Status GpuEpLayer::Poison() {
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  Impl& m = *impl_;
  // 0xff bytes: NaN as bf16 and fp32, 0xffffffff as an index.
  for (DeviceBuffer* b :
       {&m.experts, &m.weights, &m.buckets, &m.bucket_offsets, &m.row_of_slot, &m.slot_of_row,
        &m.send_rows, &m.recv_rows, &m.expert_in, &m.h, &m.a, &m.expert_out, &m.back_send,
        &m.back_recv, &m.y, &m.xq, &m.xq_scales, &m.aq, &m.aq_scales}) {
    if (b->bytes() == 0) continue;
    MOESIM_CUDA_OK(cudaMemsetAsync(b->as<void>(), 0xff, b->bytes(), m.stream.stream()));
  }
  MOESIM_CUDA_OK(cudaStreamSynchronize(m.stream.stream()));
  return Status::Ok();
}

Status GpuEpLayer::RoutePermute() {
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  Impl& m = *impl_;
  const GpuEpLayerConfig& c = m.config;
  const uint32_t slots = static_cast<uint32_t>(m.slots()), buckets = m.bucket_count();
  cudaStream_t s = m.stream.stream();
  MOESIM_CUDA_OK(LaunchRouterTopK(m.logits.as<float>(), m.tokens, c.router, m.experts.as<int32_t>(),
                                  m.weights.as<float>(), s));
  MOESIM_CUDA_OK(LaunchMapBuckets(m.experts.as<int32_t>(), slots, m.bucket_of_expert.as<int32_t>(),
                                  c.router.num_experts, m.buckets.as<int32_t>(), s));
  MOESIM_CUDA_OK(LaunchBuildPermutation(m.buckets.as<int32_t>(), slots, buckets,
                                        m.scratch.as<uint32_t>(), m.bucket_offsets.as<uint32_t>(),
                                        m.row_of_slot.as<uint32_t>(), m.slot_of_row.as<uint32_t>(),
                                        s));
  // The counts are host arguments of the exchange (NCCL counts, the notify step): wait for them.
  MOESIM_CUDA_OK(cudaMemcpyAsync(m.host_offsets, m.bucket_offsets.as<void>(),
                                 sizeof(uint32_t) * (buckets + 1), cudaMemcpyDeviceToHost, s));
  MOESIM_CUDA_OK(LaunchPermute(m.x.as<bf16>(), c.hidden, m.slot_of_row.as<uint32_t>(), slots,
                               c.router.top_k, m.send_rows.as<bf16>(), s));
  MOESIM_CUDA_OK(cudaStreamSynchronize(s));
  SendLayout& l = m.send;
  l.world = c.world;
  l.local_experts = c.local_experts;
  l.permutation.bucket_counts.assign(buckets, 0);
  l.permutation.bucket_offsets.assign(m.host_offsets, m.host_offsets + buckets + 1);
  l.peer_rows.assign(c.world, 0);
  for (uint32_t b = 0; b < buckets; ++b) {
    if (m.host_offsets[b] > m.host_offsets[b + 1] || m.host_offsets[b + 1] > slots) {
      return Error("GpuEpLayer: the permutation produced bad offsets (bucket " + std::to_string(b) +
                   ": rows " + std::to_string(m.host_offsets[b]) + ".." +
                   std::to_string(m.host_offsets[b + 1]) + " of " + std::to_string(slots) + ")");
    }
    l.permutation.bucket_counts[b] = m.host_offsets[b + 1] - m.host_offsets[b];
    l.peer_rows[b / c.local_experts] += l.permutation.bucket_counts[b];
  }
  // row_of_slot and slot_of_row stay on the device; the host needs only the counts.
  l.permutation.row_of_slot.clear();
  l.permutation.slot_of_row.clear();
  return Status::Ok();
}

const SendLayout& GpuEpLayer::send_layout() const { return impl_->send; }

Status GpuEpLayer::Impl::MoveBlocks(std::span<const RowBlock> blocks, const DeviceBuffer& from,
                                    DeviceBuffer& to, bool to_expert_major) {
  const uint64_t rb = row_bytes();
  for (const RowBlock& b : blocks) {
    if (std::max(b.source_major, b.expert_major) + b.rows > config.max_recv_rows) {
      return Error("GpuEpLayer: a received block (rows " + std::to_string(b.source_major) +
                   " and " + std::to_string(b.expert_major) + ", " + std::to_string(b.rows) +
                   " rows) goes beyond max_recv_rows " + std::to_string(config.max_recv_rows));
    }
    const uint64_t src = to_expert_major ? b.source_major : b.expert_major;
    const uint64_t dst = to_expert_major ? b.expert_major : b.source_major;
    MOESIM_CUDA_OK(cudaMemcpyAsync(to.as<char>() + dst * rb, from.as<char>() + src * rb,
                                   b.rows * rb, cudaMemcpyDeviceToDevice, stream.stream()));
  }
  return Status::Ok();
}

Status GpuEpLayer::Regroup(std::span<const RowBlock> blocks) {
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  return impl_->MoveBlocks(blocks, impl_->recv_rows, impl_->expert_in, true);
}

Status GpuEpLayer::Experts(const ReceiveLayout& layout) {
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  Impl& m = *impl_;
  const GpuEpLayerConfig& c = m.config;
  if (layout.local_experts != c.local_experts || layout.rows > c.max_recv_rows ||
      layout.expert_offsets.size() != uint64_t{c.local_experts} + 1) {
    return Error("GpuEpLayer::Experts: " + std::to_string(layout.rows) + " rows for " +
                 std::to_string(layout.local_experts) + " experts; the layer holds at most " +
                 std::to_string(c.max_recv_rows) + " rows for " + std::to_string(c.local_experts));
  }
  if (c.fp8) return m.Fp8Experts(layout);
  cudaStream_t s = m.stream.stream();
  const int hid = static_cast<int>(c.hidden), ffn = static_cast<int>(c.ffn);
  MOESIM_RETURN_IF_ERROR(m.up.Run(m.stream.blas(), s, c.gemm, m.expert_in.as<bf16>(),
                                  m.w1.as<bf16>(), m.h.as<bf16>(), layout.expert_offsets, 2 * ffn,
                                  hid));
  MOESIM_CUDA_OK(
      LaunchSwiGlu(m.h.as<bf16>(), static_cast<uint32_t>(layout.rows), c.ffn, m.a.as<bf16>(), s));
  MOESIM_RETURN_IF_ERROR(m.down.Run(m.stream.blas(), s, c.gemm, m.a.as<bf16>(), m.w2.as<bf16>(),
                                    m.expert_out.as<bf16>(), layout.expert_offsets, hid, ffn));
  return Status::Ok();
}

Status GpuEpLayer::RegroupBack(std::span<const RowBlock> blocks) {
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  return impl_->MoveBlocks(blocks, impl_->expert_out, impl_->back_send, false);
}

Status GpuEpLayer::Unpermute() {
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  Impl& m = *impl_;
  MOESIM_CUDA_OK(LaunchUnpermuteCombine(
      m.back_recv.as<bf16>(), m.config.hidden, m.row_of_slot.as<uint32_t>(), m.weights.as<float>(),
      m.tokens, m.config.router.top_k, m.y.as<bf16>(), m.stream.stream()));
  return Status::Ok();
}

void* GpuEpLayer::stream() const { return impl_->stream.stream(); }
uint64_t GpuEpLayer::row_bytes() const { return impl_->row_bytes(); }
void* GpuEpLayer::send_rows() const { return impl_->send_rows.as<void>(); }
void* GpuEpLayer::recv_rows() const { return impl_->recv_rows.as<void>(); }
void* GpuEpLayer::back_send_rows() const { return impl_->back_send.as<void>(); }
void* GpuEpLayer::back_recv_rows() const { return impl_->back_recv.as<void>(); }

Status GpuEpLayer::Mark(int mark) {
  if (mark < 0 || mark >= impl_->config.marks) {
    return Error("GpuEpLayer::Mark: event " + std::to_string(mark) + " of " +
                 std::to_string(impl_->config.marks));
  }
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  return impl_->marks.Record(mark, impl_->stream.stream());
}

StatusOr<double> GpuEpLayer::Elapsed(int from, int to) const {
  const int n = impl_->config.marks;
  if (from < 0 || to < 0 || from >= n || to >= n) {
    return Error("GpuEpLayer::Elapsed: events " + std::to_string(from) + ", " + std::to_string(to) +
                 " of " + std::to_string(n));
  }
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  return impl_->marks.Elapsed(from, to);
}

Status GpuEpLayer::Synchronize() const {
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  MOESIM_CUDA_OK(cudaStreamSynchronize(impl_->stream.stream()));
  return Status::Ok();
}

StatusOr<std::vector<float>> GpuEpLayer::DownloadOutput() const {
  MOESIM_RETURN_IF_ERROR(impl_->Enter());
  const Impl& m = *impl_;
  return FetchBf16(m.y, uint64_t{m.tokens} * m.config.hidden, m.stream.stream());
}

}  // namespace moesim::backend::gpu
