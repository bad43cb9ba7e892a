// What one GPU kernel of a training step costs, by its kind, shape and dtype: the per-kernel
// compute model of whole steps (sim/step/step_ops.h lists the kernels of every op).
//
//   const KernelModel km = KernelModel::Defaults(gpu, pb::FP8, ExpertGemm::kAuto);
//   Duration t = km.Time(Kernel::Gemm(GemmClass::kModel, {{4096, 7168, 2048}}));
//
// A kernel costs one launch plus max(work / rate, bytes / memory bandwidth):
//   GEMM       work = sum over its GEMMs of 2 (m + m_half) n (k + k_half) at the class's plateau
//              rate, i.e. each GEMM runs at plateau x k / (k + k_half) (a half-rate point in the
//              reduction length: the output tile's epilogue is paid once per k-loop) and, under a
//              profile, x m / (m + m_half) for expert GEMMs (the profile's gemm_n_half). Bytes:
//              inputs and weights in the GEMM's dtype, the output in BF16 (FP32 models: FP32), a
//              weight gradient accumulated into FP32 (read and written, 8 B per weight).
//              Routed experts run as one grouped launch, or one launch per expert GEMM (the loop);
//              DeepGEMM pads each expert's rows to 128 (its contiguous layout's M alignment).
//   attention  FlashAttention in BF16 whatever the model's dtype: FLOPs at the BF16 peak x the
//              efficiency FlashAttention-3 reaches at the sequence length (forward, backward).
//   memory     bytes read plus written at the achieved HBM bandwidth; no FLOPs term.
//
// Defaults (fractions of the datasheet peaks of topology/gpu_specs.cc; measured on Hopper and
// applied as fractions to every GPU, an assumption off Hopper):
//   dense GEMM, BF16/FP16/FP32   785.6 / 989.5 = 79.4 % flat: cuBLAS bf16 8192^3 on one H200,
//                                results/gpu/README.md "Ceilings" (785.6 TFLOP/s of 989.5).
//   GEMM, FP8 (dense and grouped)  plateau 1386.3 / 1979 = 70.05 % of FP8 peak, k_half 655: the
//                                least-squares fit (relative error) of the ten M >= 4096 rows of
//                                DeepGEMM's README tables on H800 (github.com/deepseek-ai/DeepGEMM,
//                                README "Performance" as first released, NVCC 12.8), median
//                                |error| 2.5 %, worst +20 % (N = 2112); kFp8GemmFit below lists
//                                them.
//   routed experts, BF16         loop: 688 / 989.5 = 69.5 % (one cublasGemmEx per expert, the
//                                Mixtral layer at 2,048 rows per expert on one H200); cuBLAS
//                                grouped: 264 / 989.5 = 26.7 % (cublasGemmGroupedBatchedEx, the
//                                same layer); results/gpu/README.md "The targets".
//   attention                    FlashAttention-3 on H100 SXM5, BF16, without the causal mask
//                                (Shah et al., arXiv:2407.08608, Figures 5 and 6), at sequence
//                                lengths 512 ... 16k, over the H100's 989.5; linear in
//                                log2(length) between them, the end values beyond. Head dim 128
//                                (Figures 5b, 6b): forward 467, 565, 625, 638, 646, 648, backward
//                                316, 424, 501, 542, 559, 561 TFLOP/s; head dim 64 (Figures 5a,
//                                6a): forward 333, 392, 460, 476, 496, 497, backward 272, 363,
//                                422, 453, 472, 474. Between 64 and 128 linear in the head dim;
//                                at most 64: 64's; 128 and more (MLA's 192): 128's (the paper's
//                                head-dim-256 figures are not used). FLOPs as
//                                FlashAttention's benchmarks count them (Dao-AILab/flash-attention
//                                benchmarks/benchmark_flash_attention.py): forward
//                                4 s^2 heads d, halved when causal; backward 2.5 x forward.
//   memory-bound kernels         4,269 / 4,800 = 88.9 % of HBM: a device-to-device copy of 4.29 GB
//                                on one H200 (results/gpu/README.md "Ceilings").
//   launch                       4 us per kernel: an ASSUMPTION (on the H200, moebench's combine
//                                took 3.4 us more than its bytes at the copy rate).
// A HardwareProfile (`--hardware`, proto/hardware.proto) replaces, where it measured: its GEMM rate
// (and large band) every GEMM class's plateau with k_half 0, its n_half the expert GEMMs' m_half,
// its memory bandwidth and launch overhead; attention keeps FlashAttention's figures.
//
// Plain values: copy freely, safe to share between threads once built.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/hardware.pb.h"
#include "proto/model.pb.h"
#include "proto/status.h"
#include "proto/text_file.h"
#include "proto/units.h"
#include "sim/compute/compute_model.h"
#include "topology/gpu_specs.h"

namespace moesim::sim {

// How a step's routed experts issue their GEMMs.
enum class ExpertGemm {
  kAuto,           // DeepGEMM for FP8 models, the loop otherwise
  kLoop,           // one cuBLAS GEMM per expert (moebench's loop; Transformer Engine's GroupedLinear)
  kCublasGrouped,  // one cublasGemmGroupedBatchedEx per GEMM
  kDeepGemm,       // DeepGEMM's contiguous grouped FP8 GEMM: rows padded to 128 per expert
};
std::string_view ToString(ExpertGemm api);
// "auto" (or empty), "loop", "cublas_grouped", "deepgemm"; error at `where` naming `field`.
StatusOr<ExpertGemm> ParseExpertGemm(std::string_view name, const Location& where,
                                     std::string_view field);

// One GEMM: [m, k] x [k, n] -> [m, n], 2 m n k FLOPs; k is the reduction.
struct GemmShape {
  uint64_t m = 0, n = 0, k = 0;
  uint64_t flops() const { return 2 * m * n * k; }
};

// Which rate a GEMM runs at.
enum class GemmClass {
  kModel,   // the model's dtype (FP8 models: FP8, as DeepSeek-V3 runs its linear layers)
  kBf16,    // BF16 in any model (LM head, router: DeepSeek-V3 keeps them in BF16/FP32)
  kExpert,  // routed experts: the model's dtype, on the step's ExpertGemm API
};

enum class KernelKind { kGemm, kAttentionForward, kAttentionBackward, kMemory };

struct Kernel {
  KernelKind kind = KernelKind::kMemory;
  GemmClass gemm = GemmClass::kModel;
  std::vector<GemmShape> shapes;  // GEMMs: one, or one per expert of a grouped GEMM
  bool weight_gradient = false;   // GEMM writes FP32 weight gradients (read and written)
  uint64_t flops = 0;             // attention
  uint64_t bytes = 0;             // attention and memory kernels: read + written
  uint64_t seq_len = 0;           // attention: the sequence length its efficiency is read at
  uint64_t head_dim = 0;          // attention: the head dimension its efficiency is read at

  static Kernel Gemm(GemmClass c, std::vector<GemmShape> shapes, bool weight_gradient = false);
  static Kernel Memory(uint64_t bytes);
  static Kernel Attention(bool backward, uint64_t flops, uint64_t bytes, uint64_t seq_len,
                          uint64_t head_dim);
};

// A GEMM class's rate: plateau x k / (k + k_half) for reduction length k.
struct GemmCurve {
  Rate plateau;
  uint64_t k_half = 0;
  double m_half = 0;  // rows at half rate (a profile's gemm_n_half; expert GEMMs only)
};

// The FP8 fit's data: DeepGEMM's README, H800, M >= 4096 rows (dense normal GEMMs; grouped
// contiguous with 4 x 8192 and 8 x 4096 rows), TFLOP/s.
struct Fp8GemmPoint {
  uint64_t n, k;
  double tflops;
};
inline constexpr Fp8GemmPoint kFp8GemmFit[] = {
    {2112, 7168, 1058}, {24576, 1536, 990}, {32768, 512, 590}, {7168, 16384, 1358},
    {4096, 7168, 1304}, {7168, 2048, 1025}, {4096, 7168, 1297}, {7168, 2048, 1099},
    {4096, 7168, 1288}, {7168, 2048, 1093}};
inline constexpr double kFp8PlateauTflops = 1386.3;  // of the H800's 1979 FP8 peak
inline constexpr uint64_t kFp8KHalf = 655;
inline constexpr double kHopperBf16PeakTflops = 989.5;  // H100/H200/H800 SXM datasheet
inline constexpr double kHopperFp8PeakTflops = 1979.0;
inline constexpr double kDenseBf16Tflops = 785.6;      // cuBLAS 8192^3, one H200
inline constexpr double kExpertLoopBf16Tflops = 688;   // per-expert cublasGemmEx, one H200
inline constexpr double kExpertGroupedBf16Tflops = 264;  // cublasGemmGroupedBatchedEx, one H200
inline constexpr double kCopyGbps = 4269, kH200HbmGbps = 4800;  // one H200
inline constexpr uint64_t kDeepGemmRowAlignment = 128;  // get_m_alignment_for_contiguous_layout()

// FlashAttention-3, H100 SXM5, BF16, no causal mask (see the top of this file): head dim 128, and
// head dim 64.
struct AttentionPoint {
  uint64_t seq_len;
  double forward_tflops, backward_tflops;
};
inline constexpr AttentionPoint kFlashAttention3[] = {{512, 467, 316},   {1024, 565, 424},
                                                      {2048, 625, 501},  {4096, 638, 542},
                                                      {8192, 646, 559},  {16384, 648, 561}};
inline constexpr AttentionPoint kFlashAttention3Head64[] = {{512, 333, 272},  {1024, 392, 363},
                                                            {2048, 460, 422}, {4096, 476, 453},
                                                            {8192, 496, 472}, {16384, 497, 474}};

// What one kernel computes and moves: FLOPs (a GEMM's 2 m n k per shape, attention's count, none
// for memory kernels) and bytes read and written (a GEMM's two inputs in their dtype and its
// output; attention and memory kernels their own count). Rows as issued, before any alignment.
struct KernelWork {
  uint64_t flops = 0;
  uint64_t bytes = 0;
  KernelWork& operator+=(const KernelWork& o) {
    flops += o.flops;
    bytes += o.bytes;
    return *this;
  }
};

class KernelModel {
 public:
  // The defaults above for `gpu`, a model of `dtype`, and experts on `api`. Error (at `where`,
  // naming `field`): DeepGEMM for a model that is not FP8 (its grouped GEMMs are FP8).
  static StatusOr<KernelModel> Defaults(const topology::GpuSpec& gpu, pb::DType dtype,
                                        ExpertGemm api, const Location& where = {},
                                        std::string_view field = "step.expert_gemm");
  // These figures with a profile's measured ones in place (see the top of this file).
  KernelModel With(const pb::GpuProfile& profile) const;

  // Zero work costs nothing (no launch).
  Duration Time(const Kernel& kernel) const;
  // The launches Time counts: one a kernel with work, one per expert GEMM with rows in the loop.
  uint32_t Launches(const Kernel& kernel) const;
  // Its FLOPs and bytes (KernelWork above), at this model's element sizes.
  KernelWork Work(const Kernel& kernel) const;

  // The rate of the attention kernel at `seq_len` and `head_dim`, forward or backward.
  Rate AttentionRate(uint64_t seq_len, bool backward, uint64_t head_dim = 128) const;
  const GemmCurve& Curve(GemmClass c) const;
  Rate memory() const { return memory_; }
  Duration launch() const { return launch_; }
  ExpertGemm expert_api() const { return api_; }
  uint32_t gemm_bytes() const { return gemm_bytes_; }  // per input element of kModel GEMMs
  // One line for reports: where the figures come from.
  std::string Describe() const;

 private:
  Duration GemmTime(const Kernel& k) const;
  // Bytes of one GEMM of `k` with `m` rows, reduction `r` and `n` columns: both inputs and the
  // output (a weight gradient's FP32, read and written: 8 bytes an element).
  uint64_t GemmBytes(const Kernel& k, uint64_t m, uint64_t r, uint64_t n) const;

  GemmCurve model_, bf16_, expert_;
  ExpertGemm api_ = ExpertGemm::kLoop;
  uint64_t row_alignment_ = 1;  // expert GEMMs' rows (DeepGEMM: 128)
  uint32_t gemm_bytes_ = 2;     // input and weight bytes of kModel/kExpert GEMMs (FP8 1)
  uint32_t bf16_bytes_ = 2;     // of kBf16 GEMMs (FP32 models: 4)
  uint32_t out_bytes_ = 2;      // GEMM outputs (FP32 models: 4)
  Rate bf16_peak_;              // attention runs at this peak (FP32 models: the FP32 peak)
  Rate memory_;
  Duration launch_;
  // A profile's GEMM figures (ComputeRates::ForGemm picks its large band by FLOPs).
  std::optional<ComputeRates> profile_;
};

}  // namespace moesim::sim
