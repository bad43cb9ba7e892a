#include "models/expected_layer.h"

#include <vector>

#include "models/synthetic.h"

namespace moesim::models {

LayerWork ExpectedLayer(std::span<const uint64_t> loads, uint32_t ep, uint64_t tokens_per_rank,
                        uint32_t top_k, const ExpertPlacement& placement, uint64_t capacity) {
  LayerWork w;
  w.dispatch_tokens = TrafficMatrix(ep);
  w.tokens_in.assign(ep, tokens_per_rank);
  w.dropped.assign(ep, 0);
  w.expert_tokens.resize(ep);
  for (uint32_t r = 0; r < ep; ++r)
    w.expert_tokens[r].assign(placement.layer(0).slots().at(r).size(), 0);
  const std::vector<uint64_t> totals = ScaleCounts(loads, uint64_t{ep} * tokens_per_rank * top_k);
  const LayerPlacement& layer = placement.layer(0);
  for (uint32_t e = 0; e < totals.size(); ++e) {
    const std::vector<LayerPlacement::Replica>& replicas = layer.ReplicasOf(e);
    const uint64_t r = replicas.size();
    const uint64_t each = totals[e] / ep, extra = totals[e] % ep;
    for (uint32_t j = 0; j < ep; ++j) {
      const uint32_t src = (e + j) % ep;
      uint64_t share = each + (j < extra ? 1 : 0);
      if (capacity > 0 && share > capacity) {
        w.dropped[src] += share - capacity;
        share = capacity;
      }
      // Spread over the expert's replicas, the leftover to the replicas after the sender's index.
      for (uint64_t k = 0; k < r; ++k) {
        const uint64_t part = share / r + (((k + r - src % r) % r) < share % r ? 1 : 0);
        const LayerPlacement::Replica& to = replicas[k];
        w.dispatch_tokens.at(src, to.ep_rank) += part;
        w.expert_tokens[to.ep_rank][to.slot] += part;
      }
    }
  }
  return w;
}

}  // namespace moesim::models
