#include "sim/compute/profile_model.h"

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

double AllToAllWork::LinkBytes(pb::LinkProfile::Duplex duplex) const {
  return duplex == pb::LinkProfile::HALF ? sent_off + received_off
                                         : std::max(sent_off, received_off);
}

AllToAllWork AllToAllWorkOf(const models::TrafficMatrix& tokens, uint64_t token_bytes,
                            uint32_t rank) {
  const double b = static_cast<double>(token_bytes);
  const uint64_t sent = tokens.SentOffRank(rank), received = tokens.ReceivedOffRank(rank);
  const uint64_t own = tokens.at(rank, rank);
  return AllToAllWork{static_cast<double>(sent) * b, static_cast<double>(received) * b,
                      static_cast<double>(sent + received + 2 * own) * b};
}

double AllToAllRankNs(const pb::LinkProfile& link, const AllToAllWork& work) {
  if (work.local == 0) return 0;
  const double bytes = work.LinkBytes(link.duplex());
  if (link.has_large_messages() && bytes >= link.large_messages().min_link_bytes()) {
    const pb::LinkProfile::SizeBand& b = link.large_messages();
    const double local = b.has_local_bandwidth_gbps() ? work.local / b.local_bandwidth_gbps() : 0.0;
    return b.latency_ns() + bytes / b.bandwidth_gbps() + local;
  }
  const double local =
      link.has_local_bandwidth_gbps() ? work.local / link.local_bandwidth_gbps() : 0.0;
  // A "local" entry has no link bandwidth; nothing crosses a link there.
  return link.latency_ns() + (bytes > 0 ? bytes / link.bandwidth_gbps() : 0.0) + local;
}

StatusOr<std::string> GroupLinkClass(const topology::Cluster& cluster,
                                     const models::TrafficMatrix& tokens,
                                     const std::vector<uint32_t>& group) {
  const topology::Graph& g = cluster.graph();
  std::set<std::string> classes;
  for (uint32_t i = 0; i < group.size(); ++i) {
    for (uint32_t j = 0; j < group.size(); ++j) {
      if (i == j || tokens.at(i, j) == 0) continue;
      cluster.router().ForEachShare(group[i], group[j], [&](topology::Edge e, double) {
        classes.insert(std::string(topology::ToString(g[e].link_class)));
      });
    }
  }
  if (classes.size() == 1) return *classes.begin();
  if (classes.empty()) return std::string(kLocalLinkClass);
  return Error("the all-to-all crosses several link classes (" +
               Join(std::vector<std::string>(classes.begin(), classes.end())) +
               "); the profile's alpha-beta model takes one class per all-to-all");
}

StatusOr<std::string> AllToAllLinkClass(const topology::Cluster& cluster,
                                        const models::TrafficMatrix& tokens) {
  std::vector<uint32_t> all(tokens.ranks());
  for (uint32_t r = 0; r < tokens.ranks(); ++r) all[r] = r;
  return GroupLinkClass(cluster, tokens, all);
}

const pb::LinkProfile* FindLinkProfile(const pb::HardwareProfile& profile,
                                       const std::string& link_class,
                                       const std::string& collective) {
  for (const pb::LinkProfile& l : profile.links()) {
    if (l.link_class() == link_class && l.collective() == collective) return &l;
  }
  // A MoE all-to-all without its own entry: the class's equal all-to-all (moebench a2a).
  if (collective == "dispatch" || collective == "combine") {
    for (const pb::LinkProfile& l : profile.links()) {
      if (l.link_class() == link_class && l.collective() == "alltoall") return &l;
    }
  }
  return nullptr;
}

pb::ModelSpec ModelAsMeasured(const pb::ModelSpec& model, const pb::Result& measured) {
  pb::ModelSpec m = model;
  if (measured.dtype() == "fp32") m.set_dtype(pb::FP32);
  if (measured.dtype() == "bf16") m.set_dtype(pb::BF16);
  if (measured.dtype() == "fp8") m.set_dtype(pb::FP8);  // moebench run --dtype fp8
  return m;
}

}  // namespace moesim::sim
