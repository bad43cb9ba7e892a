#include "sim/compute/kernel_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace moesim::sim {
namespace {

// `measured` TFLOP/s (or GB/s) of a `reference` peak, as the same fraction of `peak`.
Rate Fraction(Rate peak, double measured, double reference) {
  return Rate::PerSecond(static_cast<uint64_t>(
      std::llround(static_cast<double>(peak.per_second()) * (measured / reference))));
}

uint64_t RoundUp(uint64_t x, uint64_t to) { return (x + to - 1) / to * to; }

}  // namespace

std::string_view ToString(ExpertGemm api) {
  switch (api) {
    case ExpertGemm::kLoop:
      return "loop";
    case ExpertGemm::kCublasGrouped:
      return "cublas_grouped";
    case ExpertGemm::kDeepGemm:
      return "deepgemm";
    default:
      return "auto";
  }
}

StatusOr<ExpertGemm> ParseExpertGemm(std::string_view name, const Location& where,
                                     std::string_view field) {
  if (name.empty()) return ExpertGemm::kAuto;
  for (ExpertGemm a : {ExpertGemm::kAuto, ExpertGemm::kLoop, ExpertGemm::kCublasGrouped,
                       ExpertGemm::kDeepGemm}) {
    if (name == ToString(a)) return a;
  }
  return InputError(where, field, name, "unknown expert GEMM API",
                    "auto, loop, cublas_grouped, deepgemm");
}

Kernel Kernel::Gemm(GemmClass c, std::vector<GemmShape> shapes, bool weight_gradient) {
  Kernel k;
  k.kind = KernelKind::kGemm;
  k.gemm = c;
  k.shapes = std::move(shapes);
  k.weight_gradient = weight_gradient;
  return k;
}

Kernel Kernel::Memory(uint64_t bytes) {
  Kernel k;
  k.bytes = bytes;
  return k;
}

Kernel Kernel::Attention(bool backward, uint64_t flops, uint64_t bytes, uint64_t seq_len,
                         uint64_t head_dim) {
  Kernel k;
  k.kind = backward ? KernelKind::kAttentionBackward : KernelKind::kAttentionForward;
  k.flops = flops;
  k.bytes = bytes;
  k.seq_len = seq_len;
  k.head_dim = head_dim;
  return k;
}

StatusOr<KernelModel> KernelModel::Defaults(const topology::GpuSpec& gpu, pb::DType dtype,
                                            ExpertGemm api, const Location& where,
                                            std::string_view field) {
  KernelModel m;
  const bool fp8 = dtype == pb::FP8, fp32 = dtype == pb::FP32;
  if (api == ExpertGemm::kDeepGemm && !fp8) {
    return InputError(where, field, "deepgemm",
                      "DeepGEMM's grouped GEMMs are FP8, and the model is " + pb::DType_Name(dtype),
                      "loop, cublas_grouped, auto (or an FP8 model)");
  }
  if (api == ExpertGemm::kAuto) api = fp8 ? ExpertGemm::kDeepGemm : ExpertGemm::kLoop;
  m.api_ = api;
  // FP32 models run every GEMM at the FP32 peak with the BF16 fraction (no measurement).
  const Rate bf16_peak = fp32 ? gpu.fp32_flops : gpu.bf16_flops;
  m.bf16_peak_ = bf16_peak;
  m.bf16_ = {Fraction(bf16_peak, kDenseBf16Tflops, kHopperBf16PeakTflops)};
  if (fp8) {
    m.model_ = {Fraction(gpu.fp8_flops, kFp8PlateauTflops, kHopperFp8PeakTflops), kFp8KHalf};
  } else {
    m.model_ = m.bf16_;
  }
  switch (api) {
    case ExpertGemm::kLoop:
      m.expert_ = fp8 ? m.model_
                      : GemmCurve{Fraction(bf16_peak, kExpertLoopBf16Tflops, kHopperBf16PeakTflops)};
      break;
    case ExpertGemm::kCublasGrouped:
      // Measured in BF16 only; FP8 takes the same fraction of its peak (an assumption).
      m.expert_ = {Fraction(fp8 ? gpu.fp8_flops : bf16_peak, kExpertGroupedBf16Tflops,
                            kHopperBf16PeakTflops)};
      break;
    default:  // DeepGEMM
      m.expert_ = m.model_;
      m.row_alignment_ = kDeepGemmRowAlignment;
  }
  m.gemm_bytes_ = fp8 ? 1 : fp32 ? 4 : 2;
  m.bf16_bytes_ = fp32 ? 4 : 2;
  m.out_bytes_ = fp32 ? 4 : 2;
  m.memory_ = Fraction(gpu.hbm_bandwidth, kCopyGbps, kH200HbmGbps);
  m.launch_ = kLaunchOverhead;
  return m;
}

KernelModel KernelModel::With(const pb::GpuProfile& p) const {
  ComputeRates base;
  base.flops = model_.plateau;
  base.memory = memory_;
  base.launch = launch_;
  const ComputeRates r = base.With(p);
  KernelModel m = *this;
  m.memory_ = r.memory;
  m.launch_ = r.launch;
  if (p.has_gemm_peak_tflops() || p.has_gemm_n_half() || p.has_large_gemms()) {
    m.profile_ = r;
  }
  return m;
}

const GemmCurve& KernelModel::Curve(GemmClass c) const {
  switch (c) {
    case GemmClass::kBf16:
      return bf16_;
    case GemmClass::kExpert:
      return expert_;
    default:
      return model_;
  }
}

namespace {

// One head dim's FlashAttention-3 curve at `seq_len`: linear in log2(length) between its points,
// its end values beyond them.
template <size_t N>
double CurveTflops(const AttentionPoint (&table)[N], uint64_t seq_len, bool backward) {
  auto tflops = [&](const AttentionPoint& p) {
    return backward ? p.backward_tflops : p.forward_tflops;
  };
  if (seq_len <= table[0].seq_len) return tflops(table[0]);
  for (size_t i = 0; i + 1 < N; ++i) {
    if (seq_len > table[i + 1].seq_len) continue;
    const double x0 = std::log2(static_cast<double>(table[i].seq_len));
    const double x1 = std::log2(static_cast<double>(table[i + 1].seq_len));
    const double w = (std::log2(static_cast<double>(seq_len)) - x0) / (x1 - x0);
    return tflops(table[i]) + w * (tflops(table[i + 1]) - tflops(table[i]));
  }
  return tflops(table[N - 1]);
}

}  // namespace

Rate KernelModel::AttentionRate(uint64_t seq_len, bool backward, uint64_t head_dim) const {
  // Head dims between the paper's 64 and 128: linear between their curves; beyond: the nearer.
  double t = CurveTflops(kFlashAttention3, seq_len, backward);
  if (head_dim < 128) {
    const double at64 = CurveTflops(kFlashAttention3Head64, seq_len, backward);
    const double w = static_cast<double>(std::max<uint64_t>(head_dim, 64) - 64) / (128.0 - 64.0);
    t = at64 + w * (t - at64);
  }
  return Fraction(bf16_peak_, t, kHopperBf16PeakTflops);
}

Duration KernelModel::GemmTime(const Kernel& k) const {
  const bool expert = k.gemm == GemmClass::kExpert;
  GemmCurve curve = Curve(k.gemm);
  Duration launch = launch_;
  if (profile_) {
    uint64_t flops = 0;
    for (const GemmShape& s : k.shapes) flops += s.flops();
    const ComputeRates r = profile_->ForGemm(flops);
    curve = {r.flops, 0, expert ? r.n_half : 0.0};
    launch = r.launch;
  }
  const uint64_t align = expert ? row_alignment_ : 1;
  const bool loop = expert && api_ == ExpertGemm::kLoop;
  uint64_t work = 0, bytes = 0;
  Duration looped;
  for (const GemmShape& s : k.shapes) {
    if (s.flops() == 0) continue;  // an expert without tokens: skipped, no launch
    // The rows (tokens) are m, or k for a weight gradient (the reduction runs over tokens).
    const uint64_t m = k.weight_gradient ? s.m : RoundUp(s.m, align);
    const uint64_t r = k.weight_gradient ? RoundUp(s.k, align) : s.k;
    const uint64_t one_bytes = GemmBytes(k, m, r, s.n);
    // 2 m n (k + k_half), plus the half-rate point in the rows: 2 n (k + k_half) m_half, or for a
    // weight gradient 2 m n m_half.
    uint64_t one = 2 * m * s.n * (r + curve.k_half);
    if (curve.m_half > 0) {
      const double per_row = k.weight_gradient ? 2.0 * static_cast<double>(m * s.n)
                                               : 2.0 * static_cast<double>(s.n * (r + curve.k_half));
      one += static_cast<uint64_t>(std::ceil(per_row * curve.m_half));
    }
    if (loop) {
      looped += std::max(TimeFor(one, curve.plateau), TimeFor(one_bytes, memory_)) + launch;
    } else {
      work += one;
      bytes += one_bytes;
    }
  }
  if (loop) return looped;
  if (work == 0) return Duration();
  return std::max(TimeFor(work, curve.plateau), TimeFor(bytes, memory_)) + launch;
}

uint64_t KernelModel::GemmBytes(const Kernel& k, uint64_t m, uint64_t r, uint64_t n) const {
  const uint64_t in = k.gemm == GemmClass::kBf16 ? bf16_bytes_ : gemm_bytes_;
  return m * r * in + r * n * in + m * n * (k.weight_gradient ? 8 : out_bytes_);
}

KernelWork KernelModel::Work(const Kernel& k) const {
  if (k.kind != KernelKind::kGemm) return {k.flops, k.bytes};
  KernelWork w;
  for (const GemmShape& s : k.shapes) {
    if (s.flops() == 0) continue;  // skipped as Time skips it
    w += {s.flops(), GemmBytes(k, s.m, s.k, s.n)};
  }
  return w;
}

Duration KernelModel::Time(const Kernel& k) const {
  switch (k.kind) {
    case KernelKind::kGemm:
      return GemmTime(k);
    case KernelKind::kAttentionForward:
    case KernelKind::kAttentionBackward: {
      if (k.flops == 0 && k.bytes == 0) return Duration();
      const Rate rate =
          AttentionRate(k.seq_len, k.kind == KernelKind::kAttentionBackward, k.head_dim);
      return std::max(TimeFor(k.flops, rate), TimeFor(k.bytes, memory_)) + launch_;
    }
    default:
      if (k.bytes == 0) return Duration();
      return TimeFor(k.bytes, memory_) + launch_;
  }
}

uint32_t KernelModel::Launches(const Kernel& k) const {
  if (k.kind == KernelKind::kGemm) {
    uint32_t with_work = 0;
    for (const GemmShape& s : k.shapes) with_work += s.flops() > 0;
    const bool loop = k.gemm == GemmClass::kExpert && api_ == ExpertGemm::kLoop;
    return loop ? with_work : std::min<uint32_t>(with_work, 1);
  }
  return k.flops > 0 || k.bytes > 0 ? 1 : 0;
}

std::string KernelModel::Describe() const {
  auto tf = [](Rate r) { return r.tera(); };
  std::string gemms =
      model_.k_half > 0
          ? fmt::format("GEMMs {:.1f} TFLOP/s x k/(k+{})", tf(model_.plateau), model_.k_half)
          : fmt::format("GEMMs {:.1f} TFLOP/s", tf(model_.plateau));
  if (bf16_.plateau != model_.plateau) gemms += fmt::format(" (BF16 {:.1f})", tf(bf16_.plateau));
  std::string experts = fmt::format("experts {} {:.1f}", ToString(api_), tf(expert_.plateau));
  if (profile_) {
    gemms = "GEMMs at the profile's rate";
    experts = fmt::format("experts {}", ToString(api_));
  }
  return fmt::format(
      "per-kernel efficiencies: {}, {}, FlashAttention-3, memory {:.0f} GB/s, {:g} us launch",
      gemms, experts, memory_.giga(), static_cast<double>(launch_.picoseconds()) / 1e6);
}

}  // namespace moesim::sim
