#include "models/dispatch.h"

namespace moesim::models {

TrafficMatrix TrafficMatrix::Transposed() const {
  TrafficMatrix t(n_);
  for (uint32_t i = 0; i < n_; ++i) {
    for (uint32_t j = 0; j < n_; ++j) t.at(j, i) = at(i, j);
  }
  return t;
}

uint64_t TrafficMatrix::SentOffRank(uint32_t rank) const {
  uint64_t sum = 0;
  for (uint32_t j = 0; j < n_; ++j) sum += j == rank ? 0 : at(rank, j);
  return sum;
}

uint64_t TrafficMatrix::ReceivedOffRank(uint32_t rank) const {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < n_; ++i) sum += i == rank ? 0 : at(i, rank);
  return sum;
}

uint64_t TrafficMatrix::Total() const {
  uint64_t sum = 0;
  for (uint64_t c : cells_) sum += c;
  return sum;
}

LayerWork ExpandLayer(const LayerRouting& routing, const Plan& plan,
                      const ExpertPlacement& placement) {
  const uint32_t world = plan.world();
  LayerWork work;
  work.layer = routing.layer;
  work.dispatch_tokens = TrafficMatrix(world);
  work.expert_tokens.assign(world, std::vector<uint64_t>(placement.experts_per_rank(), 0));
  work.tokens_in.assign(world, 0);
  for (uint32_t src = 0; src < world; ++src) {
    const std::vector<uint32_t> group = plan.EpGroup(src);
    work.tokens_in[src] = routing.tokens(src);
    for (uint32_t expert : routing.experts[src]) {
      const uint32_t dst = group[placement.EpRankOf(expert)];
      ++work.dispatch_tokens.at(src, dst);
      ++work.expert_tokens[dst][placement.LocalIndexOf(expert)];
    }
  }
  return work;
}

}  // namespace moesim::models
