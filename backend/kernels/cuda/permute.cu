// Permutation build, Permute and UnpermuteCombine on the GPU.
//
// The permutation is a stable counting sort done as radix sorts do it: slots go in blocks of
// kPermutationBlock; (1) each block counts its slots per bucket into scratch[bucket * blocks +
// block]; (2) one exclusive scan over that bucket-major array gives, for each (bucket, block),
// the row where the block's first slot of that bucket lands, and scratch[bucket * blocks] is the
// bucket's offset; (3) each slot's row is that base plus the number of earlier slots of its block
// in the same bucket. Integer counts only, so the result never depends on thread timing.
#include "backend/kernels/cuda/kernels.cuh"

namespace moesim::backend::gpu {
namespace {

constexpr uint32_t kScanThreads = 1024;
constexpr uint32_t kMaxBuckets = 8192;  // the count kernel keeps one shared counter per bucket

__global__ void CountKernel(const int32_t* __restrict__ bucket_of_slot, uint32_t slots,
                            uint32_t buckets, uint32_t blocks, uint32_t* __restrict__ scratch) {
  extern __shared__ uint32_t histogram[];
  for (uint32_t b = threadIdx.x; b < buckets; b += blockDim.x) histogram[b] = 0;
  __syncthreads();
  const uint32_t s = blockIdx.x * kPermutationBlock + threadIdx.x;
  if (s < slots) atomicAdd(&histogram[bucket_of_slot[s]], 1u);
  __syncthreads();
  for (uint32_t b = threadIdx.x; b < buckets; b += blockDim.x) {
    scratch[uint64_t{b} * blocks + blockIdx.x] = histogram[b];
  }
}

// One block: exclusive scan of scratch[0, n) in place, then the bucket offsets.
__global__ void ScanKernel(uint32_t* scratch, uint64_t n, uint32_t buckets, uint32_t blocks,
                           uint32_t slots, uint32_t* __restrict__ bucket_offsets) {
  __shared__ uint32_t partial[kScanThreads];
  const uint64_t per_thread = (n + kScanThreads - 1) / kScanThreads;
  const uint64_t begin = min(n, threadIdx.x * per_thread), end = min(n, begin + per_thread);
  uint32_t own = 0;
  for (uint64_t i = begin; i < end; ++i) own += scratch[i];
  partial[threadIdx.x] = own;
  __syncthreads();
  for (uint32_t offset = 1; offset < kScanThreads; offset *= 2) {  // Hillis-Steele, inclusive
    const uint32_t add = threadIdx.x >= offset ? partial[threadIdx.x - offset] : 0;
    __syncthreads();
    partial[threadIdx.x] += add;
    __syncthreads();
  }
  uint32_t running = partial[threadIdx.x] - own;
  for (uint64_t i = begin; i < end; ++i) {
    const uint32_t v = scratch[i];
    scratch[i] = running;
    running += v;
  }
  __syncthreads();  // also orders this block's global writes for the reads below
  for (uint32_t b = threadIdx.x; b < buckets; b += blockDim.x) {
    bucket_offsets[b] = scratch[uint64_t{b} * blocks];
  }
  if (threadIdx.x == 0) bucket_offsets[buckets] = slots;
}

__global__ void ScatterKernel(const int32_t* __restrict__ bucket_of_slot, uint32_t slots,
                              uint32_t blocks, const uint32_t* __restrict__ scratch,
                              uint32_t* __restrict__ row_of_slot,
                              uint32_t* __restrict__ slot_of_row) {
  __shared__ int32_t block_buckets[kPermutationBlock];
  const uint32_t s = blockIdx.x * kPermutationBlock + threadIdx.x;
  const int32_t bucket = s < slots ? bucket_of_slot[s] : -1;
  block_buckets[threadIdx.x] = bucket;
  __syncthreads();
  if (s >= slots) return;
  uint32_t rank = 0;  // earlier slots of this block in the same bucket: keeps slot order
  for (uint32_t i = 0; i < threadIdx.x; ++i) rank += block_buckets[i] == bucket;
  const uint32_t row = scratch[uint64_t(bucket) * blocks + blockIdx.x] + rank;
  row_of_slot[s] = row;
  slot_of_row[row] = s;
}

constexpr uint32_t kCopyThreads = 128;
constexpr uint32_t kUnroll = 4;  // independent 16-byte loads in flight per thread

// One block per output row, copied in Chunks: uint4 (8 bf16, 16 bytes) or single bf16.
template <typename Chunk>
__global__ void PermuteKernel(const bf16* __restrict__ x, uint32_t hidden,
                              const uint32_t* __restrict__ slot_of_row, uint32_t top_k,
                              bf16* __restrict__ out) {
  const uint32_t row = blockIdx.x;
  const uint64_t token = slot_of_row[row] / top_k;
  const uint32_t n = hidden * sizeof(bf16) / sizeof(Chunk);
  const Chunk* src = reinterpret_cast<const Chunk*>(x + token * hidden);
  Chunk* dst = reinterpret_cast<Chunk*>(out + uint64_t{row} * hidden);
  for (uint32_t base = threadIdx.x; base < n; base += kUnroll * blockDim.x) {
    Chunk v[kUnroll];
#pragma unroll
    for (uint32_t j = 0; j < kUnroll; ++j) {
      const uint32_t i = base + j * blockDim.x;
      if (i < n) v[j] = src[i];
    }
#pragma unroll
    for (uint32_t j = 0; j < kUnroll; ++j) {
      const uint32_t i = base + j * blockDim.x;
      if (i < n) dst[i] = v[j];
    }
  }
}

// One block per token; each thread sums kWidth consecutive elements over the token's top_k rows.
template <uint32_t kWidth>
__global__ void CombineKernel(const bf16* __restrict__ expert_out, uint32_t hidden,
                              const uint32_t* __restrict__ row_of_slot,
                              const float* __restrict__ weights, uint32_t top_k,
                              bf16* __restrict__ y) {
  const uint64_t t = blockIdx.x;
  for (uint32_t v = threadIdx.x; v < hidden / kWidth; v += blockDim.x) {
    float acc[kWidth] = {};
    for (uint32_t k = 0; k < top_k; ++k) {  // fixed k order: deterministic sums
      const uint64_t slot = t * top_k + k;
      const float w = weights[slot];
      const bf16* src = expert_out + uint64_t{row_of_slot[slot]} * hidden + v * kWidth;
      if constexpr (kWidth == 8) {
        const uint4 raw = *reinterpret_cast<const uint4*>(src);
        const bf16* e = reinterpret_cast<const bf16*>(&raw);
#pragma unroll
        for (uint32_t i = 0; i < kWidth; ++i) acc[i] += w * __bfloat162float(e[i]);
      } else {
        acc[0] += w * __bfloat162float(src[0]);
      }
    }
    alignas(16) bf16 result[kWidth];
#pragma unroll
    for (uint32_t i = 0; i < kWidth; ++i) result[i] = __float2bfloat16(acc[i]);
    bf16* dst = y + t * hidden + v * kWidth;
    if constexpr (kWidth == 8) {
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(result);
    } else {
      dst[0] = result[0];
    }
  }
}

}  // namespace

uint64_t PermutationScratchWords(uint32_t slots, uint32_t buckets) {
  const uint64_t blocks = (uint64_t{slots} + kPermutationBlock - 1) / kPermutationBlock;
  return blocks * buckets;
}

cudaError_t LaunchBuildPermutation(const int32_t* bucket_of_slot, uint32_t slots, uint32_t buckets,
                                   uint32_t* scratch, uint32_t* bucket_offsets,
                                   uint32_t* row_of_slot, uint32_t* slot_of_row,
                                   cudaStream_t stream) {
  if (buckets == 0 || buckets > kMaxBuckets) return cudaErrorInvalidValue;
  if (slots == 0) {
    return cudaMemsetAsync(bucket_offsets, 0, sizeof(uint32_t) * (buckets + 1), stream);
  }
  const uint32_t blocks = (slots + kPermutationBlock - 1) / kPermutationBlock;
  CountKernel<<<blocks, kPermutationBlock, sizeof(uint32_t) * buckets, stream>>>(
      bucket_of_slot, slots, buckets, blocks, scratch);
  ScanKernel<<<1, kScanThreads, 0, stream>>>(scratch, uint64_t{blocks} * buckets, buckets, blocks,
                                             slots, bucket_offsets);
  ScatterKernel<<<blocks, kPermutationBlock, 0, stream>>>(bucket_of_slot, slots, blocks, scratch,
                                                          row_of_slot, slot_of_row);
  return cudaGetLastError();
}

cudaError_t LaunchPermute(const bf16* x, uint32_t hidden, const uint32_t* slot_of_row,
                          uint32_t rows, uint32_t top_k, bf16* out, cudaStream_t stream) {
  if (rows == 0 || hidden == 0) return cudaSuccess;
  if (top_k == 0) return cudaErrorInvalidValue;
  if (hidden % 8 == 0) {
    PermuteKernel<uint4><<<rows, kCopyThreads, 0, stream>>>(x, hidden, slot_of_row, top_k, out);
  } else {
    PermuteKernel<bf16><<<rows, kCopyThreads, 0, stream>>>(x, hidden, slot_of_row, top_k, out);
  }
  return cudaGetLastError();
}

cudaError_t LaunchUnpermuteCombine(const bf16* expert_out, uint32_t hidden,
                                   const uint32_t* row_of_slot, const float* weights,
                                   uint32_t tokens, uint32_t top_k, bf16* y, cudaStream_t stream) {
  if (tokens == 0 || hidden == 0) return cudaSuccess;
  if (hidden % 8 == 0) {
    CombineKernel<8>
        <<<tokens, kCopyThreads, 0, stream>>>(expert_out, hidden, row_of_slot, weights, top_k, y);
  } else {
    CombineKernel<1>
        <<<tokens, kCopyThreads, 0, stream>>>(expert_out, hidden, row_of_slot, weights, top_k, y);
  }
  return cudaGetLastError();
}

}  // namespace moesim::backend::gpu
