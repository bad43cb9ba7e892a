#include "backend/run/layer_inputs.h"

#include <cmath>

#include "models/rng.h"

namespace moesim::backend {
namespace {

// Stream ids keep tokens, experts and the router apart for one seed.
constexpr uint64_t kTokenStream = 1;
constexpr uint64_t kExpertStream = 2;
constexpr uint64_t kRouterStream = 3;

// Uniform in [-1, 1): 24 random bits, exact in fp32.
float Uniform(models::Rng& rng) {
  return static_cast<float>(static_cast<int64_t>(rng.Next() >> 40) - (int64_t{1} << 23)) /
         static_cast<float>(1 << 23);
}

void FillUniform(models::Rng& rng, float scale, float* out, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) out[i] = RoundToBf16(Uniform(rng) * scale);
}

}  // namespace

void FillTokenRow(uint64_t seed, uint32_t layer, uint32_t rank, uint64_t token,
                  std::span<float> row) {
  models::Rng rng(models::Rng::Mix(models::Rng::Mix(seed, kTokenStream, layer), rank, token));
  FillUniform(rng, 1.0f, row.data(), row.size());
  row[0] = static_cast<float>(rank);
  row[1] = static_cast<float>(token);
}

std::vector<float> TokenBatch(uint64_t seed, uint32_t layer, uint32_t rank, uint64_t tokens,
                              uint32_t hidden) {
  std::vector<float> x(tokens * hidden);
  for (uint64_t t = 0; t < tokens; ++t) {
    FillTokenRow(seed, layer, rank, t, std::span<float>(x.data() + t * hidden, hidden));
  }
  return x;
}

Stamp ReadStamp(const float* row) {
  return Stamp{static_cast<uint32_t>(row[0]), static_cast<uint64_t>(row[1])};
}

namespace {

// +-(m / 16) * scale, m uniform in 8..15: 4 significant bits.
float Factor(models::Rng& rng, float scale) {
  const float m = static_cast<float>(8 + rng.Below(8)) / 16.0f;
  return (rng.Below(2) == 0 ? m : -m) * scale;
}

// The power of two nearest 1/sqrt(n).
float InverseSqrtPow2(uint32_t n) {
  return std::ldexp(1.0f, -static_cast<int>(std::lround(0.5 * std::log2(static_cast<double>(n)))));
}

std::vector<float> Factors(models::Rng& rng, uint64_t n, float scale) {
  std::vector<float> out(n);
  for (float& v : out) v = Factor(rng, scale);
  return out;
}

}  // namespace

ExpertFactors MakeExpertFactors(uint64_t seed, uint32_t expert, uint32_t hidden, uint32_t ffn) {
  models::Rng rng(models::Rng::Mix(seed, kExpertStream, expert));
  ExpertFactors f;
  f.hidden = hidden;
  f.ffn = ffn;
  const float in_scale = InverseSqrtPow2(hidden), out_scale = InverseSqrtPow2(ffn);
  f.gate_u = Factors(rng, hidden, 1.0f);
  f.gate_v = Factors(rng, uint64_t{kWeightRank} * ffn, in_scale);
  f.up_u = Factors(rng, hidden, 1.0f);
  f.up_v = Factors(rng, uint64_t{kWeightRank} * ffn, in_scale);
  f.down_p = Factors(rng, ffn, 1.0f);
  f.down_q = Factors(rng, uint64_t{kWeightRank} * hidden, out_scale);
  return f;
}

ExpertWeights MakeExpertWeights(uint64_t seed, uint32_t first, uint32_t count, uint32_t hidden,
                                uint32_t ffn) {
  ExpertWeights w;
  w.experts = count;
  w.hidden = hidden;
  w.ffn = ffn;
  const uint64_t per = uint64_t{hidden} * ffn;
  w.gate.resize(per * count);
  w.up.resize(per * count);
  w.down.resize(per * count);
  for (uint32_t e = 0; e < count; ++e) {
    const ExpertFactors f = MakeExpertFactors(seed, first + e, hidden, ffn);
    float* gate = w.gate.data() + e * per;
    float* up = w.up.data() + e * per;
    float* down = w.down.data() + e * per;
    for (uint32_t i = 0; i < hidden; ++i) {
      const float* gv = f.gate_v.data() + uint64_t{i % kWeightRank} * ffn;
      const float* uv = f.up_v.data() + uint64_t{i % kWeightRank} * ffn;
      for (uint32_t j = 0; j < ffn; ++j) {
        gate[uint64_t{i} * ffn + j] = f.gate_u[i] * gv[j];
        up[uint64_t{i} * ffn + j] = f.up_u[i] * uv[j];
      }
    }
    for (uint32_t j = 0; j < ffn; ++j) {
      const float* q = f.down_q.data() + uint64_t{j % kWeightRank} * hidden;
      for (uint32_t i = 0; i < hidden; ++i) down[uint64_t{j} * hidden + i] = f.down_p[j] * q[i];
    }
  }
  return w;
}

std::vector<float> RouterMatrix(uint64_t seed, uint32_t hidden, uint32_t experts) {
  std::vector<float> w(uint64_t{hidden} * experts);
  models::Rng rng(models::Rng::Mix(seed, kRouterStream, 0));
  FillUniform(rng, 1.0f / std::sqrt(static_cast<float>(hidden)), w.data(), w.size());
  return w;
}

}  // namespace moesim::backend
