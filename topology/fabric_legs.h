// The links of switch-fabric legs, listed once per leg. Every route between the same two
// first-tier switches crosses the same switch-to-switch links with the same shares
// (Router::FabricLeg), and under ECMP a leg is most of a route: a cross-rail route at 16,384 GPUs
// spreads over 32 spines, 64 of its ~70 links. Callers that lay many routes on links (the
// analytical all-to-all, the flow model's constraints) take each route's local links from
// Router::AppendLocalShares and its leg's links from here, walked once.
//
//   FabricLegLinks legs(cluster.graph(), cluster.router());
//   if (auto leg = router.AppendLocalShares(i, j, &local)) {
//     const uint32_t l = legs.IndexOf(*leg);
//     for (const auto& [id, share] : legs.links(l)) load[id] += bytes * share;
//   }
//
// Indices are dense, in the order legs are first seen. Not thread-safe (IndexOf adds legs); one
// per caller.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "topology/graph.h"
#include "topology/routes.h"

namespace moesim::topology {

class FabricLegLinks {
 public:
  FabricLegLinks(const Graph& graph, const Router& router) : graph_(graph), router_(router) {}

  // The leg's index, listing its links the first time it is seen.
  uint32_t IndexOf(Router::FabricLeg leg);
  // The leg's links as (link id, share), in the order Router::ForEachFabricShare visits them.
  const std::vector<std::pair<uint32_t, double>>& links(uint32_t index) const {
    return links_[index];
  }
  uint32_t size() const { return static_cast<uint32_t>(links_.size()); }

 private:
  const Graph& graph_;
  const Router& router_;
  std::unordered_map<uint64_t, uint32_t> index_;  // (from << 32 | to) -> index
  std::vector<std::vector<std::pair<uint32_t, double>>> links_;
};

}  // namespace moesim::topology
