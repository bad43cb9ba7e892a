// Router top-k on the GPU: one thread per token. Experts are picked by repeated selection in the
// strict order (logit descending, id ascending), each pick the best one ranked after the previous
// pick, so no per-thread arrays are needed for any expert count (DeepSeek-V3 has 256).
#include <cmath>

#include "backend/kernels/cuda/kernels.cuh"

namespace moesim::backend::gpu {
namespace {

__device__ float RankKey(float v) { return isnan(v) ? -INFINITY : v; }

// (a, ia) ranks before (b, ib): larger value first, then lower id; NaN as -inf.
__device__ bool RanksBefore(float a, uint32_t ia, float b, uint32_t ib) {
  const float ka = RankKey(a), kb = RankKey(b);
  return ka > kb || (ka == kb && ia < ib);
}

struct TokenScores {
  const float* logits;
  bool softmax;
  float max_logit, sum;  // softmax only
  // Same formulas, in the same order, as the CPU reference's Scores().
  __device__ float operator()(uint32_t e) const {
    return softmax ? expf(logits[e] - max_logit) / sum : 1.0f / (1.0f + expf(-logits[e]));
  }
};

// Sum of the scores of group g's two best experts (one when the group holds one expert).
__device__ float GroupScore(const TokenScores& s, uint32_t g, uint32_t per_group) {
  const uint32_t first = g * per_group;
  uint32_t best = first, second = first;
  for (uint32_t e = first + 1; e < first + per_group; ++e) {
    if (RanksBefore(s.logits[e], e, s.logits[best], best)) {
      second = best;
      best = e;
    } else if (second == best || RanksBefore(s.logits[e], e, s.logits[second], second)) {
      second = e;
    }
  }
  return s(best) + (second != best ? s(second) : 0.0f);
}

__global__ void RouterTopKKernel(const float* __restrict__ logits, uint32_t tokens,
                                 RouterConfig config, int32_t* __restrict__ experts,
                                 float* __restrict__ weights) {
  const uint32_t t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= tokens) return;
  const uint32_t num_experts = config.num_experts, k = config.top_k;
  TokenScores scores{logits + uint64_t{t} * num_experts, config.score == ScoreFunction::kSoftmax,
                     -INFINITY, 0.0f};
  if (scores.softmax) {
    for (uint32_t e = 0; e < num_experts; ++e) {
      scores.max_logit = fmaxf(scores.max_logit, scores.logits[e]);
    }
    for (uint32_t e = 0; e < num_experts; ++e) {
      scores.sum += expf(scores.logits[e] - scores.max_logit);
    }
  }

  // Eligible groups: the topk_groups best by group score (all when groups == 1).
  const uint32_t per_group = num_experts / config.groups;
  uint64_t eligible = ~uint64_t{0};
  if (config.groups > 1) {
    eligible = 0;
    float prev_score = 0.0f;
    uint32_t prev_group = 0;
    for (uint32_t j = 0; j < config.topk_groups; ++j) {
      float best_score = 0.0f;
      uint32_t best_group = config.groups;  // none yet
      for (uint32_t g = 0; g < config.groups; ++g) {
        const float s = GroupScore(scores, g, per_group);
        if (j > 0 && !RanksBefore(prev_score, prev_group, s, g)) continue;
        if (best_group == config.groups || RanksBefore(s, g, best_score, best_group)) {
          best_score = s;
          best_group = g;
        }
      }
      if (best_group == config.groups) break;  // unreachable for a checked config
      eligible |= uint64_t{1} << best_group;
      prev_score = best_score;
      prev_group = best_group;
    }
  }

  int32_t* out_experts = experts + uint64_t{t} * k;
  float* out_weights = weights + uint64_t{t} * k;
  float prev_logit = 0.0f, sum = 0.0f;
  uint32_t prev_expert = 0;
  for (uint32_t j = 0; j < k; ++j) {
    uint32_t best = num_experts;  // none yet
    for (uint32_t e = 0; e < num_experts; ++e) {
      if (((eligible >> (e / per_group)) & 1u) == 0) continue;
      const float l = scores.logits[e];
      if (j > 0 && !RanksBefore(prev_logit, prev_expert, l, e)) continue;
      if (best == num_experts || RanksBefore(l, e, scores.logits[best], best)) best = e;
    }
    if (best == num_experts) break;  // unreachable for a checked config: outputs stay poisoned
    out_experts[j] = static_cast<int32_t>(best);
    out_weights[j] = scores(best);
    sum += out_weights[j];
    prev_logit = scores.logits[best];
    prev_expert = best;
  }
  if (config.normalize && sum > 0.0f) {
    for (uint32_t j = 0; j < k; ++j) out_weights[j] /= sum;
  }
}

}  // namespace

cudaError_t LaunchRouterTopK(const float* logits, uint32_t tokens, const RouterConfig& config,
                             int32_t* experts, float* weights, cudaStream_t stream) {
  if (tokens == 0) return cudaSuccess;
  constexpr uint32_t kThreads = 128;
  RouterTopKKernel<<<(tokens + kThreads - 1) / kThreads, kThreads, 0, stream>>>(
      logits, tokens, config, experts, weights);
  return cudaGetLastError();
}

}  // namespace moesim::backend::gpu
