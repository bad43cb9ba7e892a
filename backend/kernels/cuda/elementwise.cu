// The SwiGLU activation between the expert FFN's two GEMMs, and the random fill used for weights
// and activations in checks and benchmarks.
#include "backend/kernels/cuda/kernels.cuh"

namespace moesim::backend::gpu {
namespace {

constexpr uint32_t kThreads = 256;

__device__ float Silu(float v) { return v / (1.0f + expf(-v)); }  // as the CPU reference

// Each thread handles kWidth consecutive outputs of one row: kWidth == 8 reads and writes 16 bytes.
template <uint32_t kWidth>
__global__ void SwiGluKernel(const bf16* __restrict__ h, uint32_t rows, uint32_t ffn,
                             bf16* __restrict__ a) {
  const uint32_t per_row = ffn / kWidth;
  const uint64_t total = uint64_t{rows} * per_row;
  for (uint64_t i = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; i < total;
       i += uint64_t{gridDim.x} * blockDim.x) {
    const uint64_t row = i / per_row, column = (i % per_row) * kWidth;
    const bf16* gate = h + row * 2 * ffn + column;
    const bf16* up = gate + ffn;
    alignas(16) bf16 g[kWidth], u[kWidth], out[kWidth];
    if constexpr (kWidth == 8) {
      *reinterpret_cast<uint4*>(g) = *reinterpret_cast<const uint4*>(gate);
      *reinterpret_cast<uint4*>(u) = *reinterpret_cast<const uint4*>(up);
    } else {
      g[0] = gate[0];
      u[0] = up[0];
    }
#pragma unroll
    for (uint32_t j = 0; j < kWidth; ++j) {
      out[j] = __float2bfloat16(Silu(__bfloat162float(g[j])) * __bfloat162float(u[j]));
    }
    bf16* dst = a + row * ffn + column;
    if constexpr (kWidth == 8) {
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(out);
    } else {
      dst[0] = out[0];
    }
  }
}

// splitmix64 (Steele, Lea, Flood 2014): a counter-based generator, so element i gets the same
// value whatever the grid.
__device__ uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

__global__ void FillUniformKernel(bf16* __restrict__ out, uint64_t n, uint64_t seed, float scale) {
  const uint64_t key = SplitMix64(seed);
  for (uint64_t i = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; i < n;
       i += uint64_t{gridDim.x} * blockDim.x) {
    const float unit = static_cast<float>(SplitMix64(key ^ i) >> 40) * 0x1p-24f;  // [0, 1)
    out[i] = __float2bfloat16((2.0f * unit - 1.0f) * scale);
  }
}

__global__ void MapBucketsKernel(const int32_t* __restrict__ experts, uint32_t slots,
                                 const int32_t* __restrict__ bucket_of_expert, uint32_t num_experts,
                                 int32_t* __restrict__ bucket_of_slot) {
  for (uint64_t s = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; s < slots;
       s += uint64_t{gridDim.x} * blockDim.x) {
    const int32_t e = experts[s];
    bucket_of_slot[s] = e >= 0 && static_cast<uint32_t>(e) < num_experts ? bucket_of_expert[e] : 0;
  }
}

// Enough blocks to fill the device several times over; the kernels loop over the rest.
uint32_t GridFor(uint64_t work) {
  const uint64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<uint32_t>(blocks < 65536 ? blocks : 65536);
}

}  // namespace

cudaError_t LaunchSwiGlu(const bf16* h, uint32_t rows, uint32_t ffn, bf16* a, cudaStream_t stream) {
  if (rows == 0 || ffn == 0) return cudaSuccess;
  if (ffn % 8 == 0) {
    SwiGluKernel<8><<<GridFor(uint64_t{rows} * ffn / 8), kThreads, 0, stream>>>(h, rows, ffn, a);
  } else {
    SwiGluKernel<1><<<GridFor(uint64_t{rows} * ffn), kThreads, 0, stream>>>(h, rows, ffn, a);
  }
  return cudaGetLastError();
}

cudaError_t LaunchMapBuckets(const int32_t* experts, uint32_t slots,
                             const int32_t* bucket_of_expert, uint32_t num_experts,
                             int32_t* bucket_of_slot, cudaStream_t stream) {
  if (slots == 0) return cudaSuccess;
  MapBucketsKernel<<<GridFor(slots), kThreads, 0, stream>>>(experts, slots, bucket_of_expert,
                                                            num_experts, bucket_of_slot);
  return cudaGetLastError();
}

cudaError_t LaunchFillUniform(bf16* out, uint64_t n, uint64_t seed, float scale,
                              cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  FillUniformKernel<<<GridFor(n), kThreads, 0, stream>>>(out, n, seed, scale);
  return cudaGetLastError();
}

}  // namespace moesim::backend::gpu
