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
  w.expert_tokens.assign(ep, std::vector<uint64_t>(placement.experts_per_rank(), 0));
  const std::vector<uint64_t> totals = ScaleCounts(loads, uint64_t{ep} * tokens_per_rank * top_k);
  for (uint32_t e = 0; e < totals.size(); ++e) {
    const uint32_t dst = placement.EpRankOf(e);
    const uint64_t each = totals[e] / ep, extra = totals[e] % ep;
    for (uint32_t j = 0; j < ep; ++j) {
      const uint32_t src = (e + j) % ep;
      uint64_t share = each + (j < extra ? 1 : 0);
      if (capacity > 0 && share > capacity) {
        w.dropped[src] += share - capacity;
        share = capacity;
      }
      w.dispatch_tokens.at(src, dst) += share;
      w.expert_tokens[dst][placement.LocalIndexOf(e)] += share;
    }
  }
  return w;
}

}  // namespace moesim::models
