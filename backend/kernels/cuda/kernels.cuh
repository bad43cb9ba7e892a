// Launchers of the MoE layer's CUDA kernels (DeepEP style: raw device pointers and a stream in,
// the launch's cudaError_t out; whoever calls owns the memory). Each computes what the CPU
// reference of the same name in backend/kernels/cpu_kernels.h computes, on bf16 activations with
// fp32 arithmetic. Row-major throughout; slot s = t * top_k + k.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/kernels/cpu_kernels.h"

namespace moesim::backend::gpu {

using bf16 = __nv_bfloat16;

// Router: logits [tokens x experts] fp32 -> experts, weights [tokens * top_k]. One thread per
// token, the same ranking as RouterTopK (by logit, ties to the lower id, NaN as -inf). `config`
// must pass CheckRouterConfig.
cudaError_t LaunchRouterTopK(const float* logits, uint32_t tokens, const RouterConfig& config,
                             int32_t* experts, float* weights, cudaStream_t stream);

// Permutation of `slots` bucket ids (each in [0, buckets)) into a stable grouping, as
// BuildPermutation does. Slots go in blocks of kPermutationBlock; `scratch` holds one count per
// (bucket, block), PermutationScratchWords of them. Writes bucket_offsets [buckets + 1],
// row_of_slot and slot_of_row [slots]. Deterministic: no result depends on thread timing.
inline constexpr uint32_t kPermutationBlock = 256;
uint64_t PermutationScratchWords(uint32_t slots, uint32_t buckets);
cudaError_t LaunchBuildPermutation(const int32_t* bucket_of_slot, uint32_t slots, uint32_t buckets,
                                   uint32_t* scratch, uint32_t* bucket_offsets,
                                   uint32_t* row_of_slot, uint32_t* slot_of_row,
                                   cudaStream_t stream);

// out[row] = x[slot_of_row[row] / top_k], [rows x hidden]; 16-byte copies when hidden % 8 == 0.
cudaError_t LaunchPermute(const bf16* x, uint32_t hidden, const uint32_t* slot_of_row,
                          uint32_t rows, uint32_t top_k, bf16* out, cudaStream_t stream);

// a[r][j] = silu(h[r][j]) * h[r][ffn + j] for h [rows x 2*ffn] (gate | up), a [rows x ffn].
cudaError_t LaunchSwiGlu(const bf16* h, uint32_t rows, uint32_t ffn, bf16* a, cudaStream_t stream);

// y[t] = sum over k of weights[t*top_k + k] * expert_out[row_of_slot[t*top_k + k]], fp32 sums in
// k order, rounded once to bf16.
cudaError_t LaunchUnpermuteCombine(const bf16* expert_out, uint32_t hidden,
                                   const uint32_t* row_of_slot, const float* weights,
                                   uint32_t tokens, uint32_t top_k, bf16* y, cudaStream_t stream);

// bucket_of_slot[s] = bucket_of_expert[experts[s]] for s < slots: each choice's destination
// (rank x local experts + local expert) for LaunchBuildPermutation, which trusts its buckets:
// the table must hold ids in range (GpuEpLayer::Create checks it), and an expert id outside
// [0, num_experts) (LaunchRouterTopK never writes one) maps to bucket 0 rather than out of bounds.
cudaError_t LaunchMapBuckets(const int32_t* experts, uint32_t slots,
                             const int32_t* bucket_of_expert, uint32_t num_experts,
                             int32_t* bucket_of_slot, cudaStream_t stream);

// n values uniform in [-scale, scale), a counter-based hash of (seed, index): reproducible and
// independent of the launch shape.
cudaError_t LaunchFillUniform(bf16* out, uint64_t n, uint64_t seed, float scale,
                              cudaStream_t stream);

}  // namespace moesim::backend::gpu
