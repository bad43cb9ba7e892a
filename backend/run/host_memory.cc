#include "backend/run/host_memory.h"

#include <sstream>

namespace moesim::backend {

HostMemoryNeed EstimateRunMemory(const models::Workload& w, uint32_t rank, bool check) {
  constexpr double kFloat = sizeof(float);
  const double h = w.model.hidden_size(), f = w.model.expert_ffn_size();
  const double k = w.model.top_k(), experts = w.model.num_experts();
  HostMemoryNeed need;
  for (const models::LayerWork& layer : w.layers) {
    const double tokens = static_cast<double>(layer.tokens_in.at(rank));
    double rows = 0;
    for (uint64_t n : layer.expert_tokens.at(rank)) rows += static_cast<double>(n);
    const double slots = tokens * k;
    need.buffers += kFloat * (2 * tokens * h + tokens * experts + tokens * k + 2 * slots * h +
                              4 * rows * h + 3 * rows * f);
    if (check) need.buffers += kFloat * tokens * h;
  }
  need.weights = kFloat * (3 * h * f * w.placement.experts_per_rank() + h * experts);
  return need;
}

Status CheckHostMemory(const HostMemoryNeed& need, uint32_t ranks_on_node,
                       std::optional<double> available) {
  if (!available) return Status::Ok();
  const double all = need.total() * ranks_on_node;
  constexpr double kUsable = 0.9;
  if (all <= kUsable * *available) return Status::Ok();
  std::ostringstream msg;
  msg << "out of host memory: each rank needs " << FormatBytes(need.total()) << " (buffers "
      << FormatBytes(need.buffers) << ", weights " << FormatBytes(need.weights) << ")";
  if (ranks_on_node > 1)
    msg << ", " << FormatBytes(all) << " for the " << ranks_on_node << " ranks on this node";
  msg << ", but only " << FormatBytes(*available)
      << " is available (MemAvailable, /proc/meminfo; moebench uses at most 90% of it); use fewer "
         "tokens, a smaller model or more nodes";
  return Error(msg.str());
}

}  // namespace moesim::backend
