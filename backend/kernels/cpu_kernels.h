// backend/kernels/ owns the MoE layer's kernels: the CPU reference, their CUDA twins and the GEMM
// APIs, with the row layout both share. It includes nothing of the project but the header-only
// proto/status.h, so nvcc alone can build it on a GPU machine (backend/gpu-check.sh).
//
// CPU reference kernels of one MoE layer on one rank: router top-k, permutation of token copies
// into per-bucket contiguous rows, the expert SwiGLU FFN (Eigen GEMMs), and the weighted combine
// back into token order. fp32 throughout. Every CUDA kernel in backend/kernels/cuda/ computes the
// same thing and is checked against these; moebench's --device cpu path runs them for real.
//
// Layout: row-major. A token batch is [tokens x hidden]; "slot" s = t * top_k + k is the k-th
// expert choice of token t.
//
//   RouterOutput r = RouterTopK(logits, tokens, config);             // experts, weights per slot
//   Permutation p = BuildPermutation(r.experts, config.num_experts);   // bucket = expert here
//   Permute(x, hidden, p, top_k, permuted);                            // rows grouped by bucket
//   GroupedSwiGlu(permuted, p.bucket_counts, hidden, ffn, weights, expert_out);
//   UnpermuteCombine(expert_out, hidden, p, r.weights, top_k, y);      // y[t] = sum_k w * out
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "proto/status.h"

namespace moesim::backend {

enum class ScoreFunction { kSoftmax, kSigmoid };

struct RouterConfig {
  uint32_t num_experts = 0;
  uint32_t top_k = 1;
  ScoreFunction score = ScoreFunction::kSoftmax;
  // Grouped top-k (DeepSeek-V3): experts split into `groups` equal groups; each group scores as the
  // sum of its top-2 expert scores; only the best `topk_groups` groups are eligible. 1 = off.
  uint32_t groups = 1;
  uint32_t topk_groups = 1;
  // Renormalise the chosen top_k weights to sum to 1 (Mixtral, DeepSeek-V3).
  bool normalize = true;
};

// Ok when RouterTopK can run `config`: num_experts > 0; 1 <= top_k <= num_experts; groups divides
// num_experts and is at most 64 (the CUDA kernel keeps a 64-bit group mask); 1 <= topk_groups <=
// groups; top_k <= topk_groups * (num_experts / groups), so enough experts stay eligible.
Status CheckRouterConfig(const RouterConfig& config);

struct RouterOutput {
  std::vector<int32_t> experts;  // [tokens * top_k], per token in descending score order
  std::vector<float> weights;    // [tokens * top_k]
};

// logits: [tokens x num_experts]. Ties go to the lower expert id, so the result is deterministic.
// Experts are ranked by logit (softmax and sigmoid are strictly increasing, so this is the score
// order without the rounding of exp()); a NaN logit ranks as -inf. Weights are the scores of the
// chosen experts (softmax over all experts, or sigmoid), renormalised when config.normalize.
// With groups > 1 a group's score is the sum of its two best expert scores (its one score when a
// group holds one expert); ties between groups also go to the lower group id.
// If CheckRouterConfig(config) fails or logits.size() < tokens * num_experts, returns empty
// vectors.
RouterOutput RouterTopK(std::span<const float> logits, uint32_t tokens, const RouterConfig& config);

// A stable grouping of slots by bucket (an expert, or a destination rank): rows of the permuted
// buffer hold bucket 0's slots in slot order, then bucket 1's, ...
struct Permutation {
  std::vector<uint32_t> row_of_slot;     // [slots]: where slot s lands
  std::vector<uint32_t> slot_of_row;     // [slots]: inverse
  std::vector<uint64_t> bucket_counts;   // [buckets]
  std::vector<uint64_t> bucket_offsets;  // [buckets + 1], exclusive prefix sum of bucket_counts
};

// bucket_of_slot[s] in [0, buckets); if any id is outside that range, returns an empty Permutation
// (all vectors empty) rather than reading out of bounds.
Permutation BuildPermutation(std::span<const int32_t> bucket_of_slot, uint32_t buckets);

// out[row] = x[slot_of_row[row] / top_k]: each token copied once per choice.
// x: [tokens x hidden]; out: [slots x hidden].
void Permute(const float* x, uint32_t hidden, const Permutation& p, uint32_t top_k, float* out);

// Expert weights, expert e's matrices contiguous: gate and up [hidden x ffn], down [ffn x hidden].
struct ExpertWeights {
  uint32_t experts = 0, hidden = 0, ffn = 0;
  std::vector<float> gate, up, down;  // [experts * hidden * ffn] each
};

// Expert weights in the layout the GPU's GEMMs read (backend/kernels/cuda/grouped_gemm.h), as bf16
// bits: w1 [experts x 2*ffn x hidden] (gate rows, then up rows; w1[e][j][i] = gate[e][i][j] for
// j < ffn, up[e][i][j - ffn] above) and w2 [experts x hidden x ffn] (w2[e][i][j] = down[e][j][i]).
// `w` must be consistent (sizes experts * hidden * ffn). Here, not beside the GEMMs, so that the
// CPU emulation of the FP8 experts (fp8.h) reads the same layout in a build without CUDA.
struct DeviceLayoutWeights {
  std::vector<uint16_t> w1, w2;
};
DeviceLayoutWeights ToDeviceLayout(const ExpertWeights& w);

// For each bucket e with counts[e] rows starting at the running offset:
//   y = (silu(x . gate_e) * (x . up_e)) . down_e,  silu(v) = v / (1 + exp(-v)).
// x, y: [sum(counts) x hidden].
void GroupedSwiGlu(const float* x, std::span<const uint64_t> counts, const ExpertWeights& w,
                   float* y);

// y[t] = sum over k of weights[t*top_k + k] * expert_out[row_of_slot[t*top_k + k]].
// expert_out: [slots x hidden]; y: [tokens x hidden].
void UnpermuteCombine(const float* expert_out, uint32_t hidden, const Permutation& p,
                      std::span<const float> weights, uint32_t top_k, float* y);

}  // namespace moesim::backend
