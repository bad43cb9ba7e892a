#include "topology/fabric_legs.h"

namespace moesim::topology {

uint32_t FabricLegLinks::IndexOf(Router::FabricLeg leg) {
  const uint64_t key = static_cast<uint64_t>(leg.from) << 32 | static_cast<uint64_t>(leg.to);
  const auto [it, added] = index_.try_emplace(key, static_cast<uint32_t>(links_.size()));
  if (added) {
    std::vector<std::pair<uint32_t, double>>& links = links_.emplace_back();
    router_.ForEachFabricShare(
        leg, [&](Edge e, double share) { links.emplace_back(graph_[e].id, share); });
  }
  return it->second;
}

}  // namespace moesim::topology
