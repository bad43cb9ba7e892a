#include <catch2/catch.hpp>
#include <cmath>

#include "backend/kernels/bf16.h"
#include "backend/run/layer_inputs.h"

namespace moesim::backend {

TEST_CASE("layer inputs: token rows carry their stamp and bf16-exact values from -1 to 1") {
  const std::vector<float> x = TokenBatch(/*seed=*/1, /*layer=*/0, /*rank=*/3, /*tokens=*/5, 64);
  REQUIRE(x.size() == 5 * 64);
  for (uint64_t t = 0; t < 5; ++t) {
    CHECK(ReadStamp(&x[t * 64]) == Stamp{3, t});
    for (uint32_t i = kStampElements; i < 64; ++i) {
      const float v = x[t * 64 + i];
      CHECK(v >= -1.0f);
      CHECK(v < 1.0f);
      CHECK(RoundToBf16(v) == v);
    }
  }
  // Any row can be regenerated alone (the dispatch check relies on it), and seeds differ.
  std::vector<float> row(64);
  FillTokenRow(1, 0, 3, 4, row);
  CHECK(std::equal(row.begin(), row.end(), x.begin() + 4 * 64));
  FillTokenRow(2, 0, 3, 4, row);
  CHECK_FALSE(std::equal(row.begin() + 2, row.end(), x.begin() + 4 * 64 + 2));
}

TEST_CASE("layer inputs: dense expert weights are their factors' products and exact in bf16") {
  const uint32_t h = 16, f = 12;
  const ExpertWeights w = MakeExpertWeights(/*seed=*/5, /*first=*/2, /*count=*/2, h, f);
  REQUIRE(w.gate.size() == 2 * h * f);
  for (uint32_t e = 0; e < 2; ++e) {
    const ExpertFactors p = MakeExpertFactors(5, 2 + e, h, f);
    for (uint32_t i = 0; i < h; ++i) {
      for (uint32_t j = 0; j < f; ++j) {
        // gate[i][j] = u[i] * v[i mod 4][j]; down[j][i] = p[j] * q[j mod 4][i].
        const float gate = w.gate[e * h * f + i * f + j];
        CHECK(gate == p.gate_u[i] * p.gate_v[(i % kWeightRank) * f + j]);
        CHECK(w.up[e * h * f + i * f + j] == p.up_u[i] * p.up_v[(i % kWeightRank) * f + j]);
        CHECK(w.down[e * h * f + j * h + i] == p.down_p[j] * p.down_q[(j % kWeightRank) * h + i]);
        CHECK(RoundToBf16(gate) == gate);
        // |u| in [0.5, 15/16], |v| in [0.5, 15/16] * 2^-2 (the power of 2 nearest 1/sqrt(16)).
        CHECK(std::abs(gate) >= 0.5f * 0.5f * 0.25f);
        CHECK(std::abs(gate) <= 0.9375f * 0.9375f * 0.25f);
      }
    }
  }
  // Expert 3 is the same whichever block it is drawn in.
  const ExpertWeights alone = MakeExpertWeights(5, 3, 1, h, f);
  CHECK(std::equal(alone.down.begin(), alone.down.end(), w.down.begin() + h * f));
}

}  // namespace moesim::backend
