// LaunchQuantizeTiles1x128 (cuda/fp8_gemm.h): one warp per 1 x 128 tile, four elements a lane.
#include <cuda_fp8.h>

#include "backend/kernels/cuda/fp8_gemm.h"

namespace moesim::backend::gpu {
namespace {

constexpr uint32_t kWarpsPerBlock = 8;

__global__ void QuantizeTilesKernel(const bf16* x, uint64_t tiles, uint32_t cols, uint8_t* codes,
                                    float* scales) {
  const uint64_t tile = (uint64_t{blockIdx.x} * blockDim.x + threadIdx.x) / 32;
  const uint32_t lane = threadIdx.x % 32;
  if (tile >= tiles) return;  // a whole warp leaves together: tiles are per warp
  const uint32_t per_row = cols / 128;
  const uint64_t row = tile / per_row, first = row * cols + (tile % per_row) * 128 + lane * 4;
  float v[4];
  float amax = 0.0f;
  for (int i = 0; i < 4; ++i) {
    v[i] = __bfloat162float(x[first + i]);
    amax = fmaxf(amax, fabsf(v[i]));
  }
  for (int offset = 16; offset > 0; offset /= 2)
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
  // As QuantizeTiles1x128 on the CPU: the same IEEE division, rounding to nearest even with
  // saturation to +-448.
  const float scale = amax > 0.0f ? amax / 448.0f : 1.0f;
  for (int i = 0; i < 4; ++i) {
    codes[first + i] =
        static_cast<uint8_t>(__nv_cvt_float_to_fp8(v[i] / scale, __NV_SATFINITE, __NV_E4M3));
  }
  if (lane == 0) scales[tile] = scale;
}

}  // namespace

cudaError_t LaunchQuantizeTiles1x128(const bf16* x, uint64_t rows, uint32_t cols, uint8_t* codes,
                                     float* scales, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  if (cols % 128 != 0) return cudaErrorInvalidValue;
  const uint64_t tiles = rows * (cols / 128);
  const uint64_t blocks = (tiles + kWarpsPerBlock - 1) / kWarpsPerBlock;
  if (blocks > 0x7fffffffu) return cudaErrorInvalidValue;
  QuantizeTilesKernel<<<static_cast<unsigned>(blocks), kWarpsPerBlock * 32, 0, stream>>>(
      x, tiles, cols, codes, scales);
  return cudaGetLastError();
}

}  // namespace moesim::backend::gpu
