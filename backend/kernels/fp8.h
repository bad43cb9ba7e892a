// FP8 (E4M3) with per-block scales, as DeepSeek-V3 trains its linear layers (arXiv:2412.19437,
// 3.3.1): activations scaled per 1 x 128 tile (a token's 128 consecutive channels), weights per
// 128 x 128 block. The CPU reference of the GPU's FP8 expert GEMMs (cuda/fp8_gemm.h): the same
// encoding, the same scales, and the product of the dequantized operands.
//
//   const Fp8Tensor x = QuantizeTiles1x128(rows, 7168, act.data());   // [rows x 7168]
//   const Fp8Tensor w = QuantizeBlocks128(2048, 7168, weight.data());  // [2048 x 7168]
//   std::vector<float> y = Fp8GemmReference(x, w);                      // [rows x 2048] = x . w^T
//
// E4M3 here is OCP's "E4M3FN" (CUDA's __nv_fp8_e4m3): 4 exponent bits (bias 7), 3 mantissa bits,
// no infinities, 0x7F / 0xFF NaN, largest finite 448, smallest subnormal 2^-9. Encoding rounds to
// nearest, ties to even, and saturates finite values to +-448 (CUDA's __NV_SATFINITE). A scale is
// the block's largest |value| over 448, so the block's largest value encodes as +-448 exactly; an
// all-zero block gets scale 1. Dequantized value = code's value x scale (cuBLASLt's convention).
#pragma once

#include <cstdint>
#include <vector>

#include "backend/kernels/cpu_kernels.h"  // ExpertWeights

namespace moesim::backend {

inline constexpr float kE4m3Max = 448.0f;
inline constexpr uint32_t kFp8Block = 128;

uint8_t FloatToE4m3(float x);
float E4m3ToFloat(uint8_t code);

// A row-major [rows x cols] matrix of E4M3 codes and its fp32 scales, row-major over the blocks:
// [rows x ceil(cols / 128)] for 1 x 128 tiles, [ceil(rows / 128) x ceil(cols / 128)] for 128 x 128
// blocks. The last block of a row or column may be partial.
struct Fp8Tensor {
  uint64_t rows = 0, cols = 0;
  uint32_t block_rows = 1;  // 1 (tiles) or 128 (blocks); block_cols is always 128
  std::vector<uint8_t> codes;
  std::vector<float> scales;

  uint64_t col_blocks() const { return (cols + kFp8Block - 1) / kFp8Block; }
  float Scale(uint64_t r, uint64_t c) const {
    return scales[(r / block_rows) * col_blocks() + c / kFp8Block];
  }
  float Value(uint64_t r, uint64_t c) const {
    return E4m3ToFloat(codes[r * cols + c]) * Scale(r, c);
  }
};

// `x` row-major [rows x cols].
Fp8Tensor QuantizeTiles1x128(uint64_t rows, uint64_t cols, const float* x);
Fp8Tensor QuantizeBlocks128(uint64_t rows, uint64_t cols, const float* x);

// y [a.rows x w.rows] = dequant(a) . dequant(w)^T, accumulated in double; a.cols == w.cols.
std::vector<float> Fp8GemmReference(const Fp8Tensor& a, const Fp8Tensor& w);

// One expert's SwiGLU FFN as the GPU's FP8 experts compute it (gpu_kernels.h,
// GpuEpLayerConfig::fp8): x [rows x hidden] quantized per 1 x 128 tile; the expert's weights in the
// GPU's layout (ToDeviceLayout: gate and up as one [2 ffn x hidden] matrix, down as [hidden x
// ffn]), each quantized per 128 x 128 block; each product rounded to bf16 as the GEMMs write it;
// SwiGLU in fp32, rounded to bf16, then quantized per tile for the down projection. `w`: one expert
// (w.experts == 1), hidden and ffn multiples of 128. Returns [rows x hidden].
std::vector<float> Fp8ExpertFfnReference(const float* x, uint64_t rows, const ExpertWeights& w);

}  // namespace moesim::backend
