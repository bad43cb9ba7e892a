// CheckFp8Gemm and SweepFp8GroupedGemm (gpu_kernels.h): the FP8 block-scaled GEMMs of
// cuda/fp8_gemm.h against the CPU reference, and timed as `moebench gemm --dtype fp8` prints them.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "backend/kernels/bf16.h"
#include "backend/kernels/cuda/fp8_gemm.h"
#include "backend/kernels/fp8.h"
#include "backend/kernels/gpu_kernels.h"

namespace moesim::backend::gpu {
namespace {

constexpr uint32_t kFp8Tile = 128;

// Values uniform in [-scale, scale), rounded to bf16 (what the device holds).
std::vector<float> RandomBf16Values(uint64_t n, float scale, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = Bf16ToFloat(FloatToBf16(dist(rng)));
  return v;
}

}  // namespace

StatusOr<Fp8GemmCheck> CheckFp8Gemm(uint64_t m, uint64_t n, uint64_t k, uint64_t seed, int device) {
  if (m == 0 || n == 0 || k == 0 || k % kFp8Tile != 0 || m % 16 != 0 || n % 16 != 0 ||
      m > INT32_MAX || n > INT32_MAX || k > INT32_MAX) {
    return Error("CheckFp8Gemm: m " + std::to_string(m) + ", n " + std::to_string(n) + ", k " +
                 std::to_string(k) +
                 ": needs sizes > 0 below 2^31, m and n multiples of 16 and k of 128");
  }
  MOESIM_RETURN_IF_ERROR(UseDevice(device));
  StreamAndBlas sb;
  MOESIM_RETURN_IF_ERROR(sb.Init());
  std::mt19937_64 rng(seed);
  // Activations of unit scale, weights of 1/sqrt(k), each tile and block then multiplied by its
  // own power of two in 2^-4..2^4, so that scales taken from the wrong block change the product
  // by far more than the check allows.
  std::vector<float> x = RandomBf16Values(m * k, 1.0f, rng);
  std::vector<float> w = RandomBf16Values(n * k, 1.0f / std::sqrt(static_cast<float>(k)), rng);
  std::uniform_int_distribution<int> power(-4, 4);
  const uint64_t kb = k / kFp8Tile, nb = (n + kFp8Tile - 1) / kFp8Tile;
  std::vector<int> x_pow(m * kb), w_pow(nb * kb);
  for (int& p : x_pow) p = power(rng);
  for (int& p : w_pow) p = power(rng);
  for (uint64_t r = 0; r < m; ++r) {
    for (uint64_t c = 0; c < k; ++c)
      x[r * k + c] = std::ldexp(x[r * k + c], x_pow[r * kb + c / kFp8Tile]);
  }
  for (uint64_t r = 0; r < n; ++r) {
    for (uint64_t c = 0; c < k; ++c)
      w[r * k + c] = std::ldexp(w[r * k + c], w_pow[(r / kFp8Tile) * kb + c / kFp8Tile]);
  }
  const Fp8Tensor xq = QuantizeTiles1x128(m, k, x.data());
  const Fp8Tensor wq = QuantizeBlocks128(n, k, w.data());

  MOESIM_ASSIGN_OR_RETURN(DeviceBuffer x_dev, DeviceBuffer::Allocate(m * k * 2, "FP8 check x"));
  MOESIM_RETURN_IF_ERROR(UploadAsBf16(x, x_dev));
  MOESIM_ASSIGN_OR_RETURN(DeviceBuffer x_codes, DeviceBuffer::Allocate(m * k, "FP8 check x codes"));
  MOESIM_ASSIGN_OR_RETURN(DeviceBuffer x_scales,
                          DeviceBuffer::Allocate(xq.scales.size() * 4, "FP8 check x scales"));
  MOESIM_ASSIGN_OR_RETURN(DeviceBuffer w_codes, DeviceBuffer::Allocate(n * k, "FP8 check w codes"));
  MOESIM_ASSIGN_OR_RETURN(DeviceBuffer w_scales,
                          DeviceBuffer::Allocate(wq.scales.size() * 4, "FP8 check w scales"));
  MOESIM_ASSIGN_OR_RETURN(DeviceBuffer y_dev, DeviceBuffer::Allocate(m * n * 2, "FP8 check y"));
  // The weights' block quantizer on the device (GpuEpLayer's FP8 path), against the CPU's; the
  // product below takes the CPU's codes.
  MOESIM_ASSIGN_OR_RETURN(DeviceBuffer w_dev, DeviceBuffer::Allocate(n * k * 2, "FP8 check w"));
  MOESIM_RETURN_IF_ERROR(UploadAsBf16(w, w_dev));
  MOESIM_CUDA_OK(LaunchQuantizeBlocks128(w_dev.as<bf16>(), n, static_cast<uint32_t>(k),
                                         w_codes.as<uint8_t>(), w_scales.as<float>(), sb.stream()));
  MOESIM_ASSIGN_OR_RETURN(std::vector<uint8_t> w_codes_got,
                          Fetch<uint8_t>(w_codes, n * k, sb.stream()));
  MOESIM_ASSIGN_OR_RETURN(std::vector<float> w_scales_got,
                          Fetch<float>(w_scales, wq.scales.size(), sb.stream()));
  MOESIM_RETURN_IF_ERROR(Upload(wq.codes, w_codes));

  MOESIM_CUDA_OK(LaunchQuantizeTiles1x128(x_dev.as<bf16>(), m, static_cast<uint32_t>(k),
                                          x_codes.as<uint8_t>(), x_scales.as<float>(),
                                          sb.stream()));
  MOESIM_ASSIGN_OR_RETURN(std::vector<uint8_t> codes, Fetch<uint8_t>(x_codes, m * k, sb.stream()));
  MOESIM_ASSIGN_OR_RETURN(std::vector<float> scales,
                          Fetch<float>(x_scales, xq.scales.size(), sb.stream()));
  Fp8GemmCheck out;
  out.m = m, out.n = n, out.k = k;
  out.codes_equal = codes == xq.codes && scales == xq.scales;
  out.weight_codes_equal = w_codes_got == wq.codes && w_scales_got == wq.scales;
  // The product of the device's own activation codes, so a quantizer difference does not hide
  // in the GEMM's error.
  Fp8Tensor device_x = xq;
  device_x.codes = std::move(codes);
  device_x.scales = scales;
  const std::vector<float> reference = Fp8GemmReference(device_x, wq);
  double largest = 0;
  for (float v : reference) largest = std::max(largest, std::fabs(static_cast<double>(v)));

  // Each scale tensor in the layout fp8_gemm.h assumes (row-major over the blocks: a row's K
  // blocks adjacent) and transposed (K-block-major); the first pair whose product matches is the
  // layout cuBLASLt reads.
  auto transposed = [](const std::vector<float>& v, uint64_t rows, uint64_t cols) {
    std::vector<float> t(v.size());
    for (uint64_t r = 0; r < rows; ++r) {
      for (uint64_t c = 0; c < cols; ++c) t[c * rows + r] = v[r * cols + c];
    }
    return t;
  };
  Fp8BlockGemm gemm;
  MOESIM_RETURN_IF_ERROR(gemm.Init());
  out.max_rel_error = std::numeric_limits<double>::infinity();
  for (int x_layout = 0; x_layout < 2; ++x_layout) {
    for (int w_layout = 0; w_layout < 2; ++w_layout) {
      MOESIM_RETURN_IF_ERROR(Upload(x_layout == 0 ? scales : transposed(scales, m, kb), x_scales));
      MOESIM_RETURN_IF_ERROR(
          Upload(w_layout == 0 ? wq.scales : transposed(wq.scales, nb, kb), w_scales));
      MOESIM_RETURN_IF_ERROR(gemm.Run(sb.stream(), x_codes.as<uint8_t>(), x_scales.as<float>(),
                                      w_codes.as<uint8_t>(), w_scales.as<float>(), y_dev.as<bf16>(),
                                      static_cast<int>(m), static_cast<int>(n),
                                      static_cast<int>(k)));
      MOESIM_ASSIGN_OR_RETURN(std::vector<float> y, FetchBf16(y_dev, m * n, sb.stream()));
      double worst = 0;
      for (uint64_t i = 0; i < reference.size(); ++i)
        worst = std::max(worst, std::fabs(static_cast<double>(y[i]) - reference[i]));
      const double rel = largest > 0 ? worst / largest : worst;
      if (rel < out.max_rel_error) {
        out.max_rel_error = rel;
        out.scale_layout = std::string(x_layout == 0 ? "x [m x k/128]" : "x [k/128 x m]") +
                           (w_layout == 0 ? ", w [n/128 x k/128]" : ", w [k/128 x n/128]");
      }
    }
  }
  return out;
}

StatusOr<std::vector<GroupedGemmPoint>> SweepFp8GroupedGemm(
    std::span<const GroupedGemmShape> shapes, uint32_t warmup, uint32_t iterations, int device) {
  MOESIM_RETURN_IF_ERROR(UseDevice(device));
  StreamAndBlas sb;
  MOESIM_RETURN_IF_ERROR(sb.Init());
  cudaStream_t s = sb.stream();
  Fp8BlockGemm gemm;
  MOESIM_RETURN_IF_ERROR(gemm.Init());
  std::vector<GroupedGemmPoint> points;
  for (const GroupedGemmShape& shape : shapes) {
    const uint64_t e = shape.experts, tpe = shape.tokens_per_expert, rows = e * tpe;
    const uint64_t hid = shape.hidden, ffn = shape.ffn;
    if (e == 0 || tpe == 0 || tpe % 16 != 0 || hid % kFp8Tile != 0 || ffn % kFp8Tile != 0 ||
        hid == 0 || ffn == 0 || tpe > INT32_MAX || 2 * ffn > INT32_MAX) {
      return Error("SweepFp8GroupedGemm: shape experts " + std::to_string(e) + ", tokens/expert " +
                   std::to_string(tpe) + ", hidden " + std::to_string(hid) + ", ffn " +
                   std::to_string(ffn) +
                   ": FP8 block scales need hidden and ffn multiples of 128, experts > 0 and "
                   "tokens per expert a multiple of 16 (every operand then 256-byte aligned)");
    }
    // Codes from random bf16 through the tile quantizer (valid E4M3 everywhere); the weights'
    // block scales are 1 (the speed does not depend on their values).
    MOESIM_ASSIGN_OR_RETURN(
        DeviceBuffer staging,
        DeviceBuffer::Allocate(std::max(rows * std::max(hid, ffn), e * 2 * ffn * hid) * 2,
                               "FP8 sweep staging"));
    MOESIM_ASSIGN_OR_RETURN(DeviceBuffer x, DeviceBuffer::Allocate(rows * hid, "FP8 sweep x"));
    MOESIM_ASSIGN_OR_RETURN(DeviceBuffer xs,
                            DeviceBuffer::Allocate(rows * hid / 128 * 4, "FP8 sweep x scales"));
    MOESIM_ASSIGN_OR_RETURN(DeviceBuffer a, DeviceBuffer::Allocate(rows * ffn, "FP8 sweep a"));
    MOESIM_ASSIGN_OR_RETURN(DeviceBuffer as,
                            DeviceBuffer::Allocate(rows * ffn / 128 * 4, "FP8 sweep a scales"));
    MOESIM_ASSIGN_OR_RETURN(DeviceBuffer w1, DeviceBuffer::Allocate(e * 2 * ffn * hid, "FP8 w1"));
    MOESIM_ASSIGN_OR_RETURN(DeviceBuffer w2, DeviceBuffer::Allocate(e * hid * ffn, "FP8 w2"));
    MOESIM_ASSIGN_OR_RETURN(DeviceBuffer junk, DeviceBuffer::Allocate(e * 2 * ffn * hid / 128 * 4,
                                                                      "FP8 sweep tile scales"));
    const uint64_t w1_blocks = e * (2 * ffn / 128) * (hid / 128);
    const uint64_t w2_blocks = e * (hid / 128) * (ffn / 128);
    MOESIM_ASSIGN_OR_RETURN(DeviceBuffer w1s,
                            DeviceBuffer::Allocate(w1_blocks * 4, "FP8 w1 scales"));
    MOESIM_ASSIGN_OR_RETURN(DeviceBuffer w2s,
                            DeviceBuffer::Allocate(w2_blocks * 4, "FP8 w2 scales"));
    MOESIM_RETURN_IF_ERROR(Upload(std::vector<float>(w1_blocks, 1.0f), w1s));
    MOESIM_RETURN_IF_ERROR(Upload(std::vector<float>(w2_blocks, 1.0f), w2s));
    MOESIM_ASSIGN_OR_RETURN(DeviceBuffer h, DeviceBuffer::Allocate(rows * 2 * ffn * 2, "FP8 h"));
    MOESIM_ASSIGN_OR_RETURN(DeviceBuffer y, DeviceBuffer::Allocate(rows * hid * 2, "FP8 y"));
    auto codes = [&](uint64_t r, uint64_t c, uint64_t seed, float scale, DeviceBuffer& out,
                     float* scales) -> Status {
      MOESIM_CUDA_OK(LaunchFillUniform(staging.as<bf16>(), r * c, seed, scale, s));
      MOESIM_CUDA_OK(LaunchQuantizeTiles1x128(staging.as<bf16>(), r, static_cast<uint32_t>(c),
                                              out.as<uint8_t>(), scales, s));
      return Status::Ok();
    };
    MOESIM_RETURN_IF_ERROR(codes(rows, hid, 31, 1.0f, x, xs.as<float>()));
    MOESIM_RETURN_IF_ERROR(codes(rows, ffn, 32, 1.0f, a, as.as<float>()));
    MOESIM_RETURN_IF_ERROR(codes(e * 2 * ffn, hid, 33, 1.0f, w1, junk.as<float>()));
    MOESIM_RETURN_IF_ERROR(codes(e * hid, ffn, 34, 1.0f, w2, junk.as<float>()));
    MOESIM_CUDA_OK(cudaStreamSynchronize(s));
    const int m = static_cast<int>(tpe);
    const int n_up = static_cast<int>(2 * ffn), n_down = static_cast<int>(hid);
    const int k_up = static_cast<int>(hid), k_down = static_cast<int>(ffn);
    auto up = [&]() -> Status {
      for (uint64_t i = 0; i < e; ++i) {
        MOESIM_RETURN_IF_ERROR(gemm.Run(s, x.as<uint8_t>() + i * tpe * hid,
                                        xs.as<float>() + i * tpe * (hid / 128),
                                        w1.as<uint8_t>() + i * 2 * ffn * hid,
                                        w1s.as<float>() + i * (2 * ffn / 128) * (hid / 128),
                                        h.as<bf16>() + i * tpe * 2 * ffn, m, n_up, k_up));
      }
      return Status::Ok();
    };
    auto down = [&]() -> Status {
      for (uint64_t i = 0; i < e; ++i) {
        MOESIM_RETURN_IF_ERROR(gemm.Run(
            s, a.as<uint8_t>() + i * tpe * ffn, as.as<float>() + i * tpe * (ffn / 128),
            w2.as<uint8_t>() + i * hid * ffn, w2s.as<float>() + i * (hid / 128) * (ffn / 128),
            y.as<bf16>() + i * tpe * hid, m, n_down, k_down));
      }
      return Status::Ok();
    };
    MOESIM_ASSIGN_OR_RETURN(Timing up_t, TimeOp(s, warmup, iterations, up));
    MOESIM_ASSIGN_OR_RETURN(Timing down_t, TimeOp(s, warmup, iterations, down));
    points.push_back(PointOf(shape, GemmApi::kPerExpertLoop, up_t, down_t));
  }
  return points;
}

}  // namespace moesim::backend::gpu
