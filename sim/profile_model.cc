#include "sim/profile_model.h"

#include <algorithm>
#include <set>

#include "models/model_spec.h"

namespace moesim::sim {

ExpertWork ExpertWorkOf(const pb::ModelSpec& model, const std::vector<uint64_t>& expert_tokens) {
  ExpertWork w;
  for (uint64_t n : expert_tokens) {
    if (n == 0) continue;
    const double per_token = static_cast<double>(models::ExpertFfnCost(model, 1).flops);
    w.flops += per_token * static_cast<double>(n);
    w.active += per_token;
  }
  return w;
}

ExpertWork ExpertWorkOf(const pb::GemmShape& shape) {
  const double per_token = 6.0 * shape.hidden() * shape.ffn();
  const double experts = shape.tokens_per_expert() > 0 ? shape.experts() : 0;
  return ExpertWork{per_token * experts * static_cast<double>(shape.tokens_per_expert()),
                    per_token * experts};
}

double BusiestRankBytes(const models::TrafficMatrix& tokens, uint64_t token_bytes) {
  uint64_t busiest = 0;
  for (uint32_t r = 0; r < tokens.ranks(); ++r)
    busiest = std::max({busiest, tokens.SentOffRank(r), tokens.ReceivedOffRank(r)});
  return static_cast<double>(busiest) * static_cast<double>(token_bytes);
}

StatusOr<std::string> AllToAllLinkClass(const topology::Cluster& cluster,
                                        const models::TrafficMatrix& tokens) {
  const topology::Graph& g = cluster.graph();
  std::set<std::string> classes;
  for (uint32_t i = 0; i < tokens.ranks(); ++i) {
    for (uint32_t j = 0; j < tokens.ranks(); ++j) {
      if (i == j || tokens.at(i, j) == 0) continue;
      cluster.router().ForEachShare(i, j, [&](topology::Edge e, double) {
        classes.insert(std::string(topology::ToString(g[e].link_class)));
      });
    }
  }
  if (classes.size() == 1) return *classes.begin();
  if (classes.empty()) return Error("the all-to-all moves no bytes between ranks");
  return Error("the all-to-all crosses several link classes (" +
               Join(std::vector<std::string>(classes.begin(), classes.end())) +
               "); the profile's alpha-beta model takes one class per all-to-all");
}

pb::ModelSpec ModelAsMeasured(const pb::ModelSpec& model, const pb::Result& measured) {
  pb::ModelSpec m = model;
  if (measured.dtype() == "fp32") m.set_dtype(pb::FP32);
  if (measured.dtype() == "bf16") m.set_dtype(pb::BF16);
  return m;
}

}  // namespace moesim::sim
