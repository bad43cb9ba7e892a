// LaunchQuantizeTiles1x128 (cuda/fp8_gemm.h): one warp per 1 x 128 tile, four elements a lane.
// LaunchQuantizeBlocks128: one block of 256 threads per 128 x 128 block, 64 elements a thread.
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

constexpr uint32_t kBlockThreads = 256;

// As QuantizeBlocks128 on the CPU: the block's largest |value| over 448 as its scale (1 for an
// all-zero block), each value divided by it and rounded to nearest even, saturating to +-448. A
// last block of fewer than 128 rows takes the rows there are.
__global__ void QuantizeBlocksKernel(const bf16* w, uint64_t rows, uint32_t cols, uint8_t* codes,
                                     float* scales) {
  __shared__ float warp_max[kBlockThreads / 32];
  const uint64_t first_row = uint64_t{blockIdx.x} * 128;
  const uint32_t first_col = blockIdx.y * 128;
  const uint32_t block_rows =
      static_cast<uint32_t>(rows - first_row < 128 ? rows - first_row : 128);
  // Thread t covers column first_col + t % 128, rows t / 128, t / 128 + 2, ... of the block.
  const uint32_t col = first_col + threadIdx.x % 128;
  float amax = 0.0f;
  for (uint32_t r = threadIdx.x / 128; r < block_rows; r += kBlockThreads / 128)
    amax = fmaxf(amax, fabsf(__bfloat162float(w[(first_row + r) * cols + col])));
  for (int offset = 16; offset > 0; offset /= 2)
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
  if (threadIdx.x % 32 == 0) warp_max[threadIdx.x / 32] = amax;
  __syncthreads();
  float block_max = 0.0f;
  for (uint32_t i = 0; i < kBlockThreads / 32; ++i) block_max = fmaxf(block_max, warp_max[i]);
  const float scale = block_max > 0.0f ? block_max / 448.0f : 1.0f;
  for (uint32_t r = threadIdx.x / 128; r < block_rows; r += kBlockThreads / 128) {
    const uint64_t at = (first_row + r) * cols + col;
    codes[at] = static_cast<uint8_t>(
        __nv_cvt_float_to_fp8(__bfloat162float(w[at]) / scale, __NV_SATFINITE, __NV_E4M3));
  }
  if (threadIdx.x == 0) scales[uint64_t{blockIdx.x} * gridDim.y + blockIdx.y] = scale;
}

}  // namespace

cudaError_t LaunchQuantizeBlocks128(const bf16* w, uint64_t rows, uint32_t cols, uint8_t* codes,
                                    float* scales, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  if (cols % 128 != 0) return cudaErrorInvalidValue;
  const uint64_t row_blocks = (rows + 127) / 128;
  if (row_blocks > 0x7fffffffu || cols / 128 > 65535) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(row_blocks), cols / 128);
  QuantizeBlocksKernel<<<grid, kBlockThreads, 0, stream>>>(w, rows, cols, codes, scales);
  return cudaGetLastError();
}

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
