// The two ceilings (device copy bandwidth, dense bf16 GEMM rate) and the grouped-GEMM sweep that
// `moebench gemm` prints. Every figure: warm-up runs, then CUDA events around each run, median.
#include <cmath>

#include "backend/kernels/cuda/cuda_util.h"
#include "backend/kernels/cuda/grouped_gemm.h"
#include "backend/kernels/cuda/kernels.cuh"
#include "backend/kernels/gpu_kernels.h"

namespace moesim::backend::gpu {
namespace {

constexpr uint32_t kWarmup = 3;

StatusOr<DeviceBuffer> RandomBf16(uint64_t count, uint64_t seed, float scale, const char* what,
                                  cudaStream_t stream) {
  MOESIM_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::Allocate(count * sizeof(bf16), what));
  MOESIM_CUDA_OK(LaunchFillUniform(b.as<bf16>(), count, seed, scale, stream));
  return b;
}

}  // namespace

StatusOr<CopyBandwidth> MeasureCopyBandwidth(uint64_t bytes, uint32_t iterations, int device) {
  MOESIM_RETURN_IF_ERROR(UseDevice(device));
  StreamAndBlas sb;
  MOESIM_RETURN_IF_ERROR(sb.Init());
  bytes -= bytes % sizeof(bf16);
  MOESIM_ASSIGN_OR_RETURN(DeviceBuffer src,
                          RandomBf16(bytes / sizeof(bf16), 7, 1.0f, "copy source", sb.stream()));
  MOESIM_ASSIGN_OR_RETURN(DeviceBuffer dst, DeviceBuffer::Allocate(bytes, "copy destination"));
  MOESIM_ASSIGN_OR_RETURN(Timing t, TimeOp(sb.stream(), kWarmup, iterations, [&]() -> Status {
                            MOESIM_CUDA_OK(cudaMemcpyAsync(dst.as<void>(), src.as<void>(), bytes,
                                                           cudaMemcpyDeviceToDevice, sb.stream()));
                            return Status::Ok();
                          }));
  CopyBandwidth out;
  out.bytes = bytes;
  out.timing = t;
  out.gbps = t.median_ms > 0 ? 2.0 * static_cast<double>(bytes) / (t.median_ms * 1e6) : 0.0;
  return out;
}

StatusOr<GemmRate> MeasureDenseGemm(int m, int n, int k, uint32_t iterations, int device) {
  MOESIM_RETURN_IF_ERROR(UseDevice(device));
  StreamAndBlas sb;
  MOESIM_RETURN_IF_ERROR(sb.Init());
  const uint64_t um = m, un = n, uk = k;
  const float scale = 1.0f / std::sqrt(static_cast<float>(k));
  MOESIM_ASSIGN_OR_RETURN(DeviceBuffer a, RandomBf16(um * uk, 11, scale, "GEMM A", sb.stream()));
  MOESIM_ASSIGN_OR_RETURN(DeviceBuffer b, RandomBf16(uk * un, 12, 1.0f, "GEMM B", sb.stream()));
  MOESIM_ASSIGN_OR_RETURN(DeviceBuffer c, DeviceBuffer::Allocate(um * un * sizeof(bf16), "GEMM C"));
  const float alpha = 1.0f, beta = 0.0f;
  // The layer's "TN" layout: C [m x n] = A^T . B with A stored [m x k] row-major (lda = k).
  MOESIM_ASSIGN_OR_RETURN(Timing t, TimeOp(sb.stream(), kWarmup, iterations, [&]() -> Status {
                            MOESIM_CUBLAS_OK(cublasGemmEx(
                                sb.blas(), CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, a.as<void>(),
                                CUDA_R_16BF, k, b.as<void>(), CUDA_R_16BF, k, &beta, c.as<void>(),
                                CUDA_R_16BF, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
                            return Status::Ok();
                          }));
  GemmRate out;
  out.m = m, out.n = n, out.k = k;
  out.timing = t;
  out.tflops = Tflops(2.0 * um * un * uk, t.median_ms);
  return out;
}

StatusOr<std::vector<GroupedGemmPoint>> SweepGroupedGemm(std::span<const GroupedGemmShape> shapes,
                                                         GemmApi api, uint32_t warmup,
                                                         uint32_t iterations, int device) {
  MOESIM_RETURN_IF_ERROR(UseDevice(device));
  StreamAndBlas sb;
  MOESIM_RETURN_IF_ERROR(sb.Init());
  cudaStream_t s = sb.stream();
  std::vector<GroupedGemmPoint> points;
  for (const GroupedGemmShape& shape : shapes) {
    const uint64_t e = shape.experts, rows = e * shape.tokens_per_expert;
    const uint64_t hid = shape.hidden, ffn = shape.ffn;
    if (e == 0 || hid == 0 || ffn == 0 || rows > INT32_MAX || 2 * ffn > INT32_MAX) {
      return Error("SweepGroupedGemm: shape experts " + std::to_string(e) + ", tokens/expert " +
                   std::to_string(shape.tokens_per_expert) + ", hidden " + std::to_string(hid) +
                   ", ffn " + std::to_string(ffn) +
                   ": need experts, hidden, ffn > 0 and rows, "
                   "2 * ffn below 2^31");
    }
    const float up_scale = 1.0f / std::sqrt(static_cast<float>(hid));
    const float down_scale = 1.0f / std::sqrt(static_cast<float>(ffn));
    MOESIM_ASSIGN_OR_RETURN(DeviceBuffer x, RandomBf16(rows * hid, 21, 1.0f, "sweep rows", s));
    MOESIM_ASSIGN_OR_RETURN(DeviceBuffer w1,
                            RandomBf16(e * 2 * ffn * hid, 22, up_scale, "sweep gate/up", s));
    MOESIM_ASSIGN_OR_RETURN(DeviceBuffer h, DeviceBuffer::Allocate(rows * 2 * ffn * 2, "sweep h"));
    MOESIM_ASSIGN_OR_RETURN(DeviceBuffer a, RandomBf16(rows * ffn, 23, 1.0f, "sweep a", s));
    MOESIM_ASSIGN_OR_RETURN(DeviceBuffer w2,
                            RandomBf16(e * hid * ffn, 24, down_scale, "sweep down", s));
    MOESIM_ASSIGN_OR_RETURN(DeviceBuffer y, DeviceBuffer::Allocate(rows * hid * 2, "sweep y"));
    std::vector<uint64_t> offsets(e + 1);
    for (uint64_t i = 0; i <= e; ++i) offsets[i] = i * shape.tokens_per_expert;
    GroupedGemm up, down;
    MOESIM_RETURN_IF_ERROR(up.Init(shape.experts));
    MOESIM_RETURN_IF_ERROR(down.Init(shape.experts));
    const int n_up = static_cast<int>(2 * ffn), n_down = static_cast<int>(hid);
    MOESIM_ASSIGN_OR_RETURN(Timing up_t, TimeOp(s, warmup, iterations, [&] {
                              return up.Run(sb.blas(), s, api, x.as<bf16>(), w1.as<bf16>(),
                                            h.as<bf16>(), offsets, n_up, static_cast<int>(hid));
                            }));
    MOESIM_ASSIGN_OR_RETURN(Timing down_t, TimeOp(s, warmup, iterations, [&] {
                              return down.Run(sb.blas(), s, api, a.as<bf16>(), w2.as<bf16>(),
                                              y.as<bf16>(), offsets, n_down, static_cast<int>(ffn));
                            }));
    points.push_back(PointOf(shape, api, up_t, down_t));
  }
  return points;
}

}  // namespace moesim::backend::gpu
