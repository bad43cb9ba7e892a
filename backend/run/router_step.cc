#include "backend/run/router_step.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>

namespace moesim::backend {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

void RouterLogits(const float* x, uint64_t tokens, uint32_t hidden, const float* wr,
                  uint32_t experts, float* logits) {
  const auto n = static_cast<Eigen::Index>(tokens);
  Eigen::Map<const RowMajor> X(x, n, hidden);
  Eigen::Map<const RowMajor> W(wr, hidden, experts);
  Eigen::Map<RowMajor> L(logits, n, experts);
  L.noalias() = X * W;
}

void ChosenExpertWeights(const float* logits, uint64_t tokens, uint32_t experts,
                         std::span<const uint32_t> chosen, uint32_t top_k, float* weights) {
  for (uint64_t t = 0; t < tokens; ++t) {
    const float* l = logits + t * experts;
    const uint32_t* e = chosen.data() + t * top_k;
    float* w = weights + t * top_k;
    float m = l[e[0]];
    for (uint32_t j = 1; j < top_k; ++j) m = std::max(m, l[e[j]]);
    float sum = 0;
    for (uint32_t j = 0; j < top_k; ++j) sum += w[j] = std::exp(l[e[j]] - m);
    for (uint32_t j = 0; j < top_k; ++j) w[j] /= sum;
  }
}

}  // namespace moesim::backend
