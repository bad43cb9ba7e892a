#include "models/placement.h"

#include <algorithm>
#include <stdexcept>

namespace moesim::models {

LayerPlacement::LayerPlacement(uint32_t num_experts, std::vector<std::vector<uint32_t>> slots)
    : slots_(std::move(slots)), replicas_(num_experts) {
  for (uint32_t r = 0; r < slots_.size(); ++r) {
    for (uint32_t i = 0; i < slots_[r].size(); ++i) {
      const uint32_t e = slots_[r][i];
      if (e >= num_experts) throw std::invalid_argument("LayerPlacement: expert out of range");
      replicas_[e].push_back({r, i});
    }
  }
  for (const std::vector<Replica>& r : replicas_) {
    if (r.empty()) throw std::invalid_argument("LayerPlacement: an expert without a replica");
  }
}

uint32_t LayerPlacement::physical_experts() const {
  uint32_t n = 0;
  for (const auto& s : slots_) n += static_cast<uint32_t>(s.size());
  return n;
}

std::vector<uint64_t> RankLoads(const LayerPlacement& layer,
                                std::span<const uint64_t> expert_loads) {
  std::vector<uint64_t> loads(layer.ep(), 0);
  for (uint32_t e = 0; e < layer.num_experts() && e < expert_loads.size(); ++e) {
    const std::vector<LayerPlacement::Replica>& replicas = layer.ReplicasOf(e);
    const uint64_t share = expert_loads[e] / replicas.size();
    const uint64_t rest = expert_loads[e] % replicas.size();
    for (size_t i = 0; i < replicas.size(); ++i) {
      loads[replicas[i].ep_rank] += share + (i < rest ? 1 : 0);
    }
  }
  return loads;
}

uint32_t LayerPlacement::max_slots() const {
  size_t n = 0;
  for (const auto& s : slots_) n = std::max(n, s.size());
  return static_cast<uint32_t>(n);
}

ExpertPlacement ExpertPlacement::Contiguous(uint32_t num_experts, uint32_t ep) {
  const uint32_t per_rank = num_experts / ep;
  std::vector<std::vector<uint32_t>> slots(ep);
  for (uint32_t e = 0; e < num_experts; ++e) slots[e / per_rank].push_back(e);
  return PerLayer({LayerPlacement(num_experts, std::move(slots))}, "contiguous");
}

ExpertPlacement ExpertPlacement::RoundRobin(uint32_t num_experts, uint32_t ep) {
  std::vector<std::vector<uint32_t>> slots(ep);
  for (uint32_t e = 0; e < num_experts; ++e) slots[e % ep].push_back(e);
  return PerLayer({LayerPlacement(num_experts, std::move(slots))}, "round-robin");
}

ExpertPlacement ExpertPlacement::PerLayer(std::vector<LayerPlacement> layers,
                                          std::string description) {
  if (layers.empty()) throw std::invalid_argument("ExpertPlacement: no layer");
  for (const LayerPlacement& l : layers) {
    if (l.num_experts() != layers.front().num_experts() || l.ep() != layers.front().ep())
      throw std::invalid_argument("ExpertPlacement: layers of different shapes");
  }
  ExpertPlacement p;
  p.layers_ = std::move(layers);
  p.description_ = std::move(description);
  return p;
}

uint32_t ExpertPlacement::experts_per_rank() const {
  uint32_t n = 0;
  for (const LayerPlacement& l : layers_) n = std::max(n, l.max_slots());
  return n;
}

const LayerPlacement& ExpertPlacement::layer(uint32_t layer) const {
  return layers_.size() == 1 ? layers_.front() : layers_.at(layer);
}

LayerPlacement::Replica ChooseReplica(const LayerPlacement& layer, uint32_t expert,
                                      const std::vector<uint32_t>& ep_group, uint32_t sender_ep,
                                      uint32_t gpus_per_node, uint64_t nth) {
  const std::vector<LayerPlacement::Replica>& replicas = layer.ReplicasOf(expert);
  if (replicas.size() == 1) return replicas.front();
  const uint32_t sender = ep_group[sender_ep];
  // Candidate levels: 0 = on the sender's GPU, 1 = on its node, 2 = anywhere.
  auto level = [&](const LayerPlacement::Replica& r) {
    if (r.ep_rank == sender_ep) return 0;
    if (gpus_per_node > 0 && ep_group[r.ep_rank] / gpus_per_node == sender / gpus_per_node)
      return 1;
    return 2;
  };
  int best = 2;
  for (const auto& r : replicas) best = std::min(best, level(r));
  uint64_t count = 0;
  for (const auto& r : replicas) count += level(r) <= best ? 1 : 0;
  uint64_t pick = (nth + sender_ep) % count;
  for (const auto& r : replicas) {
    if (level(r) > best) continue;
    if (pick-- == 0) return r;
  }
  return replicas.front();  // unreachable: pick < count
}

}  // namespace moesim::models
