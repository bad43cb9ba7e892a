// The data a moebench layer runs on, drawn from a fixed seed so that every rank can regenerate
// any rank's tokens and any expert's weights (the checks and the single-process reference rely on
// that), and two runs with the same seed compute the same numbers.
//
// Values are fp32 holding bf16-representable numbers (uniform, rounded to bf16's 8 significant
// bits), the range a bf16 model sees, so the CPU path and a later bf16 GPU path start from the
// same inputs.
//
// Each token row is stamped, as DeepEP's tests do: element 0 holds the source rank and element 1
// the token's index on that rank, both exact small integers in fp32 (< 2^24), so a row that
// arrives at the wrong rank or expert names where it came from.
//
//   std::vector<float> x = TokenBatch(seed, layer, rank, tokens, hidden);
//   ReadStamp(&x[t * hidden]);                           // {rank, t}
//   ExpertWeights w = MakeExpertWeights(seed, /*first=*/2, /*count=*/2, hidden, ffn);
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/kernels/bf16.h"  // RoundToBf16
#include "backend/kernels/cpu_kernels.h"

namespace moesim::backend {

// Elements of a row that carry the stamp; hidden must be at least this.
inline constexpr uint32_t kStampElements = 2;

struct Stamp {
  uint32_t rank = 0;
  uint64_t token = 0;
  bool operator==(const Stamp&) const = default;
};

// Row `token` of `rank`'s batch in `layer`: the stamp, then uniform values in [-1, 1) rounded to
// bf16. Depends only on its arguments (one generator stream per row).
void FillTokenRow(uint64_t seed, uint32_t layer, uint32_t rank, uint64_t token,
                  std::span<float> row);
// [tokens x hidden], rows as FillTokenRow.
std::vector<float> TokenBatch(uint64_t seed, uint32_t layer, uint32_t rank, uint64_t tokens,
                              uint32_t hidden);
Stamp ReadStamp(const float* row);

// Expert weights with a structure that makes the reference cheap and exact to state, while the
// GEMMs still run dense (their cost does not depend on the values). With r = kWeightRank:
//
//   gate[i][j] = u_g[i] * v_g[i mod r][j]   up likewise   down[j][i] = p[j] * q[j mod r][i]
//
// so x . gate[:, j] = sum_k X_k * v_g[k][j] with X_k = sum over i = k (mod r) of x[i] * u_g[i]:
// O(hidden + r * ffn) per token and expert instead of O(hidden * ffn) (ReferenceOutput). Each
// factor is +-(m / 16) * 2^-s with m in 8..15, so every product m * m' <= 225 has at most 8
// significant bits and every weight is exact in bf16 (the GPU path stores the same numbers).
// The scales 2^-s are powers of two near 1/sqrt(hidden) (gate, up) and 1/sqrt(ffn) (down), so
// outputs stay of order one. One generator stream per expert, so expert e's weights are the same
// whichever rank draws them; the same weights serve every layer (real layers differ, costs do
// not).
inline constexpr uint32_t kWeightRank = 4;

struct ExpertFactors {
  uint32_t hidden = 0, ffn = 0;
  std::vector<float> gate_u, up_u;  // [hidden]
  std::vector<float> gate_v, up_v;  // [kWeightRank x ffn]
  std::vector<float> down_p;        // [ffn]
  std::vector<float> down_q;        // [kWeightRank x hidden]
};

ExpertFactors MakeExpertFactors(uint64_t seed, uint32_t expert, uint32_t hidden, uint32_t ffn);

// Experts [first, first + count), dense, in cpu_kernels' layout.
ExpertWeights MakeExpertWeights(uint64_t seed, uint32_t first, uint32_t count, uint32_t hidden,
                                uint32_t ffn);

// The router's weight matrix, [hidden x experts], uniform in [-1/sqrt(hidden), 1/sqrt(hidden)).
std::vector<float> RouterMatrix(uint64_t seed, uint32_t hidden, uint32_t experts);

}  // namespace moesim::backend
