#include "models/dispatch.h"

#include <algorithm>
#include <cmath>

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

uint64_t TrafficMatrix::OffDiagonal() const {
  uint64_t off = 0;
  for (uint32_t r = 0; r < n_; ++r) off += SentOffRank(r);
  return off;
}

uint64_t LayerWork::TotalDropped() const {
  uint64_t n = 0;
  for (uint64_t d : dropped) n += d;
  return n;
}

uint64_t ExpertCapacity(uint64_t tokens, uint32_t top_k, uint32_t experts, double factor) {
  if (factor <= 0 || experts == 0) return 0;
  return static_cast<uint64_t>(
      std::ceil(static_cast<double>(tokens) * top_k / static_cast<double>(experts) * factor));
}

LayerWork ExpandLayer(const LayerRouting& routing, const Plan& plan,
                      const ExpertPlacement& placement, uint64_t capacity) {
  const uint32_t world = plan.world();
  const LayerPlacement& layer = placement.layer(routing.layer);
  LayerWork work;
  work.layer = routing.layer;
  work.dispatch_tokens = TrafficMatrix(world);
  work.expert_tokens.resize(world);
  for (uint32_t rank = 0; rank < world; ++rank) {
    work.expert_tokens[rank].assign(layer.slots().at(plan.EpRank(rank)).size(), 0);
  }
  work.tokens_in.assign(world, 0);
  work.dropped.assign(world, 0);
  std::vector<uint64_t> sent_to_expert(layer.num_experts());  // per sender: the replica rule's j
  for (uint32_t src = 0; src < world; ++src) {
    const std::vector<uint32_t> group = plan.EpGroup(src);
    const uint32_t src_ep = plan.EpRank(src);
    std::fill(sent_to_expert.begin(), sent_to_expert.end(), 0);
    work.tokens_in[src] = routing.tokens(src);
    for (uint32_t expert : routing.experts[src]) {
      if (capacity > 0 && sent_to_expert[expert] >= capacity) {
        ++work.dropped[src];
        continue;
      }
      const LayerPlacement::Replica r = ChooseReplica(
          layer, expert, group, src_ep, placement.gpus_per_node(), sent_to_expert[expert]++);
      const uint32_t dst = group[r.ep_rank];
      ++work.dispatch_tokens.at(src, dst);
      ++work.expert_tokens[dst][r.slot];
    }
  }
  return work;
}

}  // namespace moesim::models
