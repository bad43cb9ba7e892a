#include "models/expected_layer.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "models/synthetic.h"

namespace moesim::models {

LayerWork ExpectedLayer(std::span<const uint64_t> loads, uint32_t ep, uint64_t tokens_per_rank,
                        uint32_t top_k, const ExpertPlacement& placement, uint64_t capacity) {
  LayerWork w;
  w.dispatch_tokens = TrafficMatrix(ep);
  w.tokens_in.assign(ep, tokens_per_rank);
  w.dropped.assign(ep, 0);
  w.dropped_per_expert.assign(loads.size(), 0);
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
        w.dropped_per_expert[e] += share - capacity;
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

namespace {

// Distinct tokens per (sender, group of `per_group` consecutive EP ranks), as SetExpectedNodeTokens
// explains for nodes: group n holds EP ranks n x per_group onwards.
TrafficMatrix ExpectedDistinctTokens(std::span<const uint32_t> sample, uint32_t top_k,
                                     uint32_t per_group, uint64_t tokens_per_rank,
                                     const ExpertPlacement& placement,
                                     const TrafficMatrix& dispatch) {
  const LayerPlacement& layer = placement.layer(0);
  const uint32_t ep = layer.ep(), groups = ep / per_group;
  // Per expert, (group, fraction of its replicas there).
  std::vector<std::vector<std::pair<uint32_t, double>>> on(layer.num_experts());
  for (uint32_t e = 0; e < layer.num_experts(); ++e) {
    const std::vector<LayerPlacement::Replica>& replicas = layer.ReplicasOf(e);
    for (const LayerPlacement::Replica& r : replicas) {
      const uint32_t group = r.ep_rank / per_group;
      if (on[e].empty() || on[e].back().first != group) on[e].emplace_back(group, 0.0);
      on[e].back().second += 1.0 / static_cast<double>(replicas.size());
    }
  }
  std::vector<double> hits(groups, 0.0), miss(groups, 1.0);
  std::vector<uint32_t> touched;
  const size_t tokens = sample.size() / top_k;
  for (size_t t = 0; t < tokens; ++t) {
    for (uint32_t j = 0; j < top_k; ++j) {
      if (sample[t * top_k + j] == kNotDispatched) continue;  // a router's drop reaches no group
      for (const auto& [group, fraction] : on[sample[t * top_k + j]]) {
        if (miss[group] == 1.0) touched.push_back(group);
        miss[group] *= 1.0 - fraction;
      }
    }
    for (const uint32_t group : touched) {
      hits[group] += 1.0 - miss[group];
      miss[group] = 1.0;
    }
    touched.clear();
  }
  TrafficMatrix out(ep);
  std::vector<uint64_t> copies(groups, 0);
  for (uint32_t src = 0; src < ep; ++src) {
    std::fill(copies.begin(), copies.end(), 0);
    for (const TrafficMatrix::Cell& cell : dispatch.row(src)) {
      copies[cell.dst / per_group] += cell.count;
    }
    for (uint32_t n = 0; n < groups; ++n) {
      if (copies[n] == 0) continue;
      const double expected = tokens == 0 ? 0
                                          : static_cast<double>(tokens_per_rank) * hits[n] /
                                                static_cast<double>(tokens);
      const uint64_t rounded = static_cast<uint64_t>(std::llround(expected));
      out.at(src, n) = std::clamp<uint64_t>(rounded, 1, copies[n]);
    }
  }
  return out;
}

}  // namespace

void SetExpectedNodeTokens(std::span<const uint32_t> sample, uint32_t top_k, uint32_t gpus_per_node,
                           uint64_t tokens_per_rank, const ExpertPlacement& placement,
                           LayerWork* w) {
  w->node_tokens = ExpectedDistinctTokens(sample, top_k, gpus_per_node, tokens_per_rank, placement,
                                          w->dispatch_tokens);
}

void SetExpectedRankTokens(std::span<const uint32_t> sample, uint32_t top_k,
                           uint64_t tokens_per_rank, const ExpertPlacement& placement,
                           LayerWork* w) {
  w->rank_tokens =
      ExpectedDistinctTokens(sample, top_k, 1, tokens_per_rank, placement, w->dispatch_tokens);
}

}  // namespace moesim::models
