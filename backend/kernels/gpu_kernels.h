// The CUDA kernels of one MoE layer behind a header with no CUDA types, so that code built without
// CUDA can include it. The functions exist only where moebench_kernels was built with CUDA
// (compile definition MOESIM_HAVE_CUDA=1); elsewhere each returns an Error saying so.
//
//   GpuLayerConfig config{.max_tokens = 4096, .hidden = 4096, .ffn = 14336,
//                         .router = {.num_experts = 8, .top_k = 2}};
//   MOESIM_ASSIGN_OR_RETURN(std::unique_ptr<GpuLayer> layer, GpuLayer::Create(config));
//   MOESIM_RETURN_IF_ERROR(layer->RandomWeights(/*seed=*/1));
//   MOESIM_RETURN_IF_ERROR(layer->UploadLogits(logits, 4096));   // fp32 [tokens x experts]
//   MOESIM_RETURN_IF_ERROR(layer->RandomActivations(/*seed=*/2));
//   MOESIM_ASSIGN_OR_RETURN(GpuLayerTimes t, layer->Benchmark(/*warmup=*/3, /*iterations=*/20));
//
// Data on the device: activations and weights bf16, router logits and weights fp32, GEMMs
// accumulate in fp32 (cuBLAS CUBLAS_COMPUTE_32F). Expert weights are stored transposed ([out x in],
// as torch.nn.Linear keeps them) with gate and up fused into one [2*ffn x hidden] matrix.
// Thread safety: a GpuLayer is used from one thread at a time; it owns its stream and cuBLAS
// handle.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/kernels/cpu_kernels.h"
#include "backend/kernels/rank_layout.h"
#include "proto/status.h"

namespace moesim::backend::gpu {

struct DeviceInfo {
  int device = 0;
  std::string name;
  int compute_major = 0, compute_minor = 0;
  int multiprocessors = 0;
  uint64_t memory_bytes = 0;
  uint64_t l2_bytes = 0;
  int driver_version = 0;   // cudaDriverGetVersion: 13000 means CUDA 13.0
  int runtime_version = 0;  // cudaRuntimeGetVersion, same encoding
  int cublas_version = 0;   // cublasGetProperty: major * 10000 + minor * 100 + patch
};

// The device, or an Error whose message starts "no CUDA device visible: " when the runtime sees
// none (no driver, no GPU, CUDA_VISIBLE_DEVICES empty); callers may treat that one as "skip".
StatusOr<DeviceInfo> QueryDevice(int device = 0);
bool IsNoDeviceError(const Error& error);
// How many CUDA devices this process sees (CUDA_VISIBLE_DEVICES applied), or the "no CUDA device
// visible: " Error when the runtime sees none.
StatusOr<int> VisibleDevices();

// How the expert GEMMs are issued. All give the same numbers; which is faster is measured
// (results/gpu/README.md: cuBLAS 13.1 on an H200, hidden x FFN 4096 x 14336 and 7168 x 2048):
// the per-expert loop reaches 80-96% of the dense bf16 rate from 256 rows per expert, the
// grouped call 26-37% at every load. The grouped call is ahead only with 8 or more experts of at
// most 64 rows each (its time 0.54-0.93 of the loop's), where reading the weights dominates; with
// one expert the loop is ahead at every load (the grouped call takes 1.4-2.3 times as long).
enum class GemmApi {
  kGroupedBatched,  // one cublasGemmGroupedBatchedEx per projection, a group per non-empty expert
  kPerExpertLoop,   // one cublasGemmEx per non-empty expert
  kAuto,            // the grouped call for kGroupedMinExperts or more non-empty experts averaging
                    // fewer than kLoopMinRowsPerExpert rows, else the loop (the default)
};
inline constexpr uint64_t kLoopMinRowsPerExpert = 128;
inline constexpr uint64_t kGroupedMinExperts = 8;  // 2-7 were not measured: the loop
const char* GemmApiName(GemmApi api);
// The API `auto` picks for experts whose rows are offsets[e] .. offsets[e + 1] (nondecreasing);
// any other `api` is returned as it is.
GemmApi ResolveGemmApi(GemmApi api, std::span<const uint64_t> offsets);

struct GpuLayerConfig {
  uint32_t max_tokens = 0;  // capacity; each input may hold up to this many tokens
  uint32_t hidden = 0;      // model dimension
  uint32_t ffn = 0;         // expert FFN dimension (gate and up each [hidden x ffn])
  RouterConfig router;      // must pass CheckRouterConfig
  GemmApi gemm = GemmApi::kAuto;
  int device = 0;
};

// Milliseconds of GPU time between CUDA events around each op (the median over iterations when
// from Benchmark). total_ms spans the whole layer, including the host's wait for the per-expert
// counts that the GEMMs need, so it is at least the sum of the parts.
struct GpuLayerTimes {
  double router_ms = 0;       // softmax/sigmoid + (grouped) top-k
  double permutation_ms = 0;  // counts, offsets, row_of_slot (+ counts to the host)
  double permute_ms = 0;      // token rows copied into per-expert order
  double gemm_up_ms = 0;      // [rows x hidden] . [hidden x 2*ffn], gate and up fused
  double swiglu_ms = 0;       // silu(gate) * up
  double gemm_down_ms = 0;    // [rows x ffn] . [ffn x hidden]
  double combine_ms = 0;      // weighted sum of each token's top_k rows
  double total_ms = 0;
};

// A layer's results brought back to the host, bf16 values widened to float.
struct GpuLayerOutputs {
  uint32_t tokens = 0;
  RouterOutput routing;           // [tokens * top_k]
  Permutation permutation;        // buckets = experts
  std::vector<float> permuted;    // [slots x hidden]
  std::vector<float> expert_out;  // [slots x hidden]
  std::vector<float> y;           // [tokens x hidden]
};

// One MoE layer's device memory (weights, inputs, every intermediate) and the ops that run it.
class GpuLayer {
 public:
  static StatusOr<std::unique_ptr<GpuLayer>> Create(const GpuLayerConfig& config);
  ~GpuLayer();
  GpuLayer(const GpuLayer&) = delete;
  GpuLayer& operator=(const GpuLayer&) = delete;

  const GpuLayerConfig& config() const;
  uint32_t tokens() const;  // of the current input

  // Shapes must match the config; values are rounded to bf16 and transposed for the device.
  Status UploadWeights(const ExpertWeights& weights);
  // Uniform in +-1/sqrt(fan_in), generated on the device (Mixtral's 2.8 GB take no host time).
  Status RandomWeights(uint64_t seed);
  // Sets the token count. logits: [tokens x num_experts] fp32.
  Status UploadLogits(std::span<const float> logits, uint32_t tokens);
  // x: [tokens x hidden], rounded to bf16; or uniform in [-1, 1) from the device.
  Status UploadActivations(std::span<const float> x);
  Status RandomActivations(uint64_t seed);
  // Fills every output and intermediate with NaN (indices with 0xffffffff), so that an element
  // a kernel failed to write shows in the comparison.
  Status Poison();

  StatusOr<GpuLayerTimes> Run();
  // `warmup` untimed runs, then the median of each op over `iterations` runs.
  StatusOr<GpuLayerTimes> Benchmark(uint32_t warmup, uint32_t iterations);
  StatusOr<GpuLayerOutputs> Download() const;

  struct Impl;

 private:
  explicit GpuLayer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One rank's share of an expert-parallel MoE layer on its GPU, split where the communication goes,
// so that the caller (backend/run/gpu_run.cc) splices the NCCL exchange in between (DeepEP's
// protocol: layout, notify, dispatch, experts, combine). The host bookkeeping of which rows go
// where is backend/kernels/rank_layout.h, the same as the CPU path's.
//
//   RoutePermute()       router top-k over all experts, each slot's bucket (destination rank x
//                        local_experts + local expert, from config.bucket_of_expert), the stable
//                        permutation, token rows copied into send order (send_rows()); the
//                        per-bucket counts come back to the host: send_layout(). Synchronises.
//   -- dispatch: notify (counts), then rows send_rows() -> recv_rows(), source-major --
//   Regroup(blocks)      received rows into expert-major order (RegroupBlocks)
//   Experts(layout)      gate/up grouped GEMM, SwiGLU, down grouped GEMM of the local experts
//                        (config.fp8: each GEMM's input quantized first, FP8 GEMMs per expert)
//   RegroupBack(blocks)  outputs back into source-major order, into back_send_rows()
//   -- combine: rows back_send_rows() -> back_recv_rows(), which ends up in send order --
//   Unpermute()          y[t] = sum_k weight * back_recv_rows()[row_of_slot[t * top_k + k]]
//
// Every op is enqueued on the layer's stream (stream(), a cudaStream_t; the exchange must use
// it too), and Mark(i) records CUDA event i there, so Elapsed(i, j) times any stretch of ops.
// With world = 1 and no exchange (recv_rows() = send_rows()'s content) this is the one-GPU layer.
// Thread safety: one thread at a time; each GpuEpLayer owns its stream, cuBLAS handle and events.
// Compiled with CUDA (backend/kernels/cuda/gpu_ep_layer.cc). The bf16 path ran on one H200
// (results/gpu/h200-2026-11-28, moebench run --gpus 1 --check); the FP8 path has not run yet.
struct GpuEpLayerConfig {
  uint32_t max_tokens = 0;     // this rank's tokens, at most (capacity)
  uint32_t max_recv_rows = 0;  // rows this rank may receive from all ranks together (capacity)
  uint32_t hidden = 0, ffn = 0;
  RouterConfig router;         // over all of the model's experts; must pass CheckRouterConfig
  uint32_t world = 1;          // ranks in the expert-parallel exchange
  uint32_t local_experts = 0;  // experts on each rank; world * local_experts <= 8192
  std::vector<int32_t> bucket_of_expert;  // [router.num_experts], each in [0, world * local)
  GemmApi gemm = GemmApi::kAuto;          // bf16 expert GEMMs only
  // FP8 expert GEMMs instead of bf16 (cuda/fp8_gemm.h, as `moebench gemm --dtype fp8`): the
  // weights quantized per 128 x 128 block once they are set, each GEMM's input per 1 x 128 tile
  // inside Experts(), one cuBLASLt call per expert and GEMM, bf16 out. hidden and ffn must be
  // multiples of 128. Each expert's rows are quantized into a copy padded to 16 rows (the FP8
  // GEMMs' row multiple), so the gate/up GEMM and SwiGLU see padded rows; the down GEMM writes
  // the padded rows' outputs into the expert-major output in expert order, each expert's spill
  // overwritten by the next, the last into 15 spare rows. Not yet run on a GPU.
  bool fp8 = false;
  int device = 0;
  int marks = 8;  // CUDA events available to Mark
};

class GpuEpLayer {
 public:
  // Allocates everything up front; an out-of-memory Error names the buffer and the bytes needed.
  static StatusOr<std::unique_ptr<GpuEpLayer>> Create(const GpuEpLayerConfig& config);
  ~GpuEpLayer();
  GpuEpLayer(const GpuEpLayer&) = delete;
  GpuEpLayer& operator=(const GpuEpLayer&) = delete;

  const GpuEpLayerConfig& config() const;
  // The local experts' weights (local_experts x hidden x ffn, cpu_kernels' layout), or random.
  Status UploadWeights(const ExpertWeights& local);
  Status RandomWeights(uint64_t seed);
  // Sets the token count; logits [tokens x num_experts] fp32; x [tokens x hidden] (to bf16).
  Status UploadLogits(std::span<const float> logits, uint32_t tokens);
  Status UploadActivations(std::span<const float> x);
  // NaN into every intermediate and output, so an element no op wrote shows in a check.
  Status Poison();

  Status RoutePermute();
  const SendLayout& send_layout() const;  // after RoutePermute
  Status Regroup(std::span<const RowBlock> blocks);
  // layout.rows <= max_recv_rows; layout.local_experts == config().local_experts.
  Status Experts(const ReceiveLayout& layout);
  Status RegroupBack(std::span<const RowBlock> blocks);
  Status Unpermute();

  // Device memory for the exchange: bf16 rows of hidden elements (row_bytes() each).
  void* stream() const;  // cudaStream_t
  uint64_t row_bytes() const;
  void* send_rows() const;       // [tokens * top_k rows], send order
  void* recv_rows() const;       // [max_recv_rows], source-major as received
  void* back_send_rows() const;  // [max_recv_rows], source-major, expert outputs
  void* back_recv_rows() const;  // [tokens * top_k rows], send order, expert outputs

  Status Mark(int mark);
  StatusOr<double> Elapsed(int from, int to) const;  // milliseconds; waits for `to`
  Status Synchronize() const;

  // [tokens x hidden], bf16 widened to float. Synchronises.
  StatusOr<std::vector<float>> DownloadOutput() const;

  struct Impl;

 private:
  explicit GpuEpLayer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Timing of a repeated operation, in milliseconds between CUDA events.
struct Timing {
  double median_ms = 0, min_ms = 0, max_ms = 0;
  uint32_t iterations = 0;
};

// A device-to-device cudaMemcpyAsync of `bytes`; gbps counts bytes read plus written (2 * bytes)
// over the median time, in GB/s (1e9 bytes).
struct CopyBandwidth {
  uint64_t bytes = 0;
  Timing timing;
  double gbps = 0;
};
StatusOr<CopyBandwidth> MeasureCopyBandwidth(uint64_t bytes, uint32_t iterations, int device = 0);

// One dense bf16 GEMM through cublasGemmEx (fp32 accumulation) on random data, 2*m*n*k FLOPs.
struct GemmRate {
  int m = 0, n = 0, k = 0;
  Timing timing;
  double tflops = 0;
};
StatusOr<GemmRate> MeasureDenseGemm(int m, int n, int k, uint32_t iterations, int device = 0);

// The expert FFN's two projections at a fixed load: every expert gets tokens_per_expert rows.
struct GroupedGemmShape {
  uint32_t experts = 8;
  uint32_t tokens_per_expert = 0;
  uint32_t hidden = 0;
  uint32_t ffn = 0;
};
struct GroupedGemmPoint {
  GroupedGemmShape shape;
  GemmApi api = GemmApi::kGroupedBatched;
  Timing up;    // [rows x hidden] . [hidden x 2*ffn]: 2 * rows * hidden * 2*ffn FLOPs
  Timing down;  // [rows x ffn] . [ffn x hidden]: 2 * rows * ffn * hidden FLOPs
  double up_tflops = 0, down_tflops = 0;
  double ffn_tflops = 0;  // both FLOP counts over the sum of both medians
};
// What `moebench gemm` runs: each shape in turn, random bf16 data, `warmup` untimed runs.
StatusOr<std::vector<GroupedGemmPoint>> SweepGroupedGemm(std::span<const GroupedGemmShape> shapes,
                                                         GemmApi api, uint32_t warmup,
                                                         uint32_t iterations, int device = 0);

// FP8 (E4M3) expert GEMMs with DeepSeek-V3's block scales through cuBLASLt (cuda/fp8_gemm.h):
// activations per 1 x 128 tile, weights per 128 x 128 block, bf16 out, fp32 accumulation.
// One y [m x n] = x [m x k] . w [n x k]^T on random data (each tile and block at its own power of
// two) against the CPU reference (backend/kernels/fp8.h) of the same codes: the activations
// quantized on the GPU and on the CPU (codes_equal: every code and scale the same), the weights on
// both too (weight_codes_equal, LaunchQuantizeBlocks128 against QuantizeBlocks128), then the
// product against Fp8GemmReference with each scale tensor row-major over its blocks (what
// cuda/fp8_gemm.h assumes) and transposed. scale_layout names the pair that came closest,
// max_rel_error its max |gpu - reference| over max |reference|. m and n multiples of 16, k of 128.
struct Fp8GemmCheck {
  uint64_t m = 0, n = 0, k = 0;
  bool codes_equal = false;
  bool weight_codes_equal = false;
  std::string scale_layout;  // "x [m x k/128], w [n/128 x k/128]": the assumed layouts
  double max_rel_error = 0;
};
StatusOr<Fp8GemmCheck> CheckFp8Gemm(uint64_t m, uint64_t n, uint64_t k, uint64_t seed,
                                    int device = 0);
// What `moebench gemm --dtype fp8` runs: SweepGroupedGemm's shapes and timing with one FP8
// cublasLtMatmul per expert (no grouped FP8 call with these scales before cuBLAS 13.4) on
// already-quantized operands; the activations' quantization is not in the times. hidden and ffn
// must be multiples of 128, tokens per expert of 16.
StatusOr<std::vector<GroupedGemmPoint>> SweepFp8GroupedGemm(
    std::span<const GroupedGemmShape> shapes, uint32_t warmup, uint32_t iterations, int device = 0);

}  // namespace moesim::backend::gpu
