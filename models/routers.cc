#include "models/routers.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>

namespace moesim::models {
namespace {

// The shortest text that reads back as the same double ("1.25", "nan").
std::string Num(double x) {
  char buffer[32];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, x).ptr;
  return std::string(buffer, end);
}

Error ArgError(const std::string& field, const std::string& value, const std::string& problem,
               const std::string& valid = {}) {
  return InputError(Location{}, field, value, problem, valid);
}

template <typename T>
StatusOr<std::vector<double>> MakeLogits(std::span<const T> values, uint32_t experts) {
  if (experts == 0) return ArgError("experts", "0", "a router needs experts", "an integer >= 1");
  if (values.size() % experts != 0) {
    return ArgError("logits", std::to_string(values.size()) + " values",
                    "not a whole number of tokens of " + std::to_string(experts) + " experts",
                    "a multiple of " + std::to_string(experts));
  }
  std::vector<double> out(values.begin(), values.end());
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) {
      return ArgError(
          "logits[" + std::to_string(i / experts) + "][" + std::to_string(i % experts) + "]",
          Num(out[i]), "not finite", "finite numbers");
    }
  }
  return out;
}

// p_e = exp(x_e - max) / sum_j exp(x_j - max): the softmax, shifted so that no exp overflows.
void Softmax(std::span<const double> x, std::vector<double>& p) {
  p.resize(x.size());
  const double max = *std::max_element(x.begin(), x.end());
  double sum = 0;
  for (size_t e = 0; e < x.size(); ++e) sum += p[e] = std::exp(x[e] - max);
  for (double& v : p) v /= sum;  // sum >= 1: the maximum contributes exp(0)
}

// Orders ids by score, highest first, equal scores by the lower id: a strict total order, so the
// result does not depend on the sorting algorithm.
struct BestFirst {
  std::span<const double> score;
  bool operator()(uint32_t a, uint32_t b) const {
    return score[a] != score[b] ? score[a] > score[b] : a < b;
  }
};

// The k best of `ids` by `score`, best first.
void TopK(std::vector<uint32_t>& ids, std::span<const double> score, uint32_t k) {
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), BestFirst{score});
  ids.resize(k);
}

RouterOutput EmptyOutput(uint32_t experts, uint64_t tokens) {
  RouterOutput out;
  out.num_experts = experts;
  out.offsets.reserve(tokens + 1);
  out.expert_tokens.assign(experts, 0);
  out.dropped_per_expert.assign(experts, 0);
  return out;
}

void AddChoice(RouterOutput& out, uint32_t expert, double weight) {
  out.choices.push_back({expert, weight});
  ++out.expert_tokens[expert];
}

void EndToken(RouterOutput& out) { out.offsets.push_back(out.choices.size()); }

Status CheckPositive(const std::string& field, double value) {
  if (!std::isfinite(value) || value <= 0) {
    return ArgError(field, Num(value), "must be a finite number > 0");
  }
  return Status::Ok();
}

// The group limit a TopKOptions asks for (groups = 1 when none), checked against E and k.
StatusOr<RouterGroupLimit> ResolveGroups(const TopKOptions& options, uint32_t experts) {
  const uint32_t k = options.top_k;
  if (options.group_limit && options.node_limit) {
    return ArgError("group_limit, node_limit", "both given",
                    "they are two ways to say the same limit", "at most one of them");
  }
  if (options.node_limit) {
    const NodeLimit& node = *options.node_limit;
    const uint32_t p = node.experts_per_node;
    if (p == 0 || experts % p != 0) {
      return ArgError("node_limit.experts_per_node", std::to_string(p),
                      "does not divide the " + std::to_string(experts) + " experts",
                      "a divisor of " + std::to_string(experts));
    }
    const uint32_t nodes = experts / p;
    if (node.max_nodes == 0 || node.max_nodes > nodes || uint64_t{node.max_nodes} * p < k) {
      const uint32_t least = (k + p - 1) / p;
      return ArgError("node_limit.max_nodes", std::to_string(node.max_nodes),
                      "outside the nodes, or too few for top_k = " + std::to_string(k),
                      std::to_string(least) + " to " + std::to_string(nodes));
    }
    // DeepSeek-V3 §2.1.2: nodes ranked by the sum of their highest K_r / M scores.
    const uint32_t per_node = (k + node.max_nodes - 1) / node.max_nodes;
    return RouterGroupLimit{nodes, node.max_nodes, std::min(per_node, p)};
  }
  const RouterGroupLimit group = options.group_limit.value_or(RouterGroupLimit{});
  if (group.groups == 0 || experts % group.groups != 0) {
    return ArgError("group_limit.groups", std::to_string(group.groups),
                    "does not divide the " + std::to_string(experts) + " experts",
                    "a divisor of " + std::to_string(experts));
  }
  const uint32_t size = experts / group.groups;
  if (group.top_groups == 0 || group.top_groups > group.groups ||
      uint64_t{group.top_groups} * size < k) {
    return ArgError("group_limit.top_groups", std::to_string(group.top_groups),
                    "outside the groups, or too few experts for top_k = " + std::to_string(k),
                    std::to_string((k + size - 1) / size) + " to " + std::to_string(group.groups));
  }
  if (group.score_top == 0 || group.score_top > size) {
    return ArgError("group_limit.score_top", std::to_string(group.score_top),
                    "outside a group's " + std::to_string(size) + " experts",
                    "1 to " + std::to_string(size));
  }
  return group;
}

}  // namespace

StatusOr<Logits> Logits::FromRowMajor(std::span<const float> values, uint32_t experts) {
  MOESIM_ASSIGN_OR_RETURN(std::vector<double> v, MakeLogits(values, experts));
  return Logits(std::move(v), experts);
}

StatusOr<Logits> Logits::FromRowMajor(std::span<const double> values, uint32_t experts) {
  MOESIM_ASSIGN_OR_RETURN(std::vector<double> v, MakeLogits(values, experts));
  return Logits(std::move(v), experts);
}

uint64_t RouterOutput::TokensWithoutExpert() const {
  uint64_t n = 0;
  for (uint64_t t = 0; t < tokens(); ++t) n += offsets[t + 1] == offsets[t];
  return n;
}

StatusOr<RouterOutput> RouteTopK(const Logits& logits, const TopKOptions& options) {
  const uint32_t experts = logits.experts();
  const uint32_t k = options.top_k;
  if (k == 0 || k > experts) {
    return ArgError("top_k", std::to_string(k),
                    "outside the " + std::to_string(experts) + " experts",
                    "1 to " + std::to_string(experts));
  }
  if (!options.selection_bias.empty()) {
    if (options.selection_bias.size() != experts) {
      return ArgError("selection_bias", std::to_string(options.selection_bias.size()) + " values",
                      "one bias per expert", std::to_string(experts) + " values, or none");
    }
    for (size_t e = 0; e < experts; ++e) {
      if (!std::isfinite(options.selection_bias[e])) {
        return ArgError("selection_bias[" + std::to_string(e) + "]", Num(options.selection_bias[e]),
                        "not finite", "finite numbers");
      }
    }
  }
  MOESIM_RETURN_IF_ERROR(CheckPositive("scaling_factor", options.scaling_factor));
  MOESIM_ASSIGN_OR_RETURN(const RouterGroupLimit group, ResolveGroups(options, experts));
  const uint32_t group_size = experts / group.groups;

  RouterOutput out = EmptyOutput(experts, logits.tokens());
  out.choices.reserve(logits.tokens() * k);
  std::vector<double> score;            // s_e: softmax probability or sigmoid
  std::vector<double> biased(experts);  // s_e + b_e: what selection compares
  std::vector<double> group_score(group.groups);
  std::vector<uint32_t> ids, groups, in_group;
  for (uint64_t t = 0; t < logits.tokens(); ++t) {
    const std::span<const double> x = logits.row(t);
    if (options.score == ScoreFunction::kSoftmax) {
      Softmax(x, score);
    } else {
      score.resize(experts);
      for (uint32_t e = 0; e < experts; ++e) score[e] = 1.0 / (1.0 + std::exp(-x[e]));
    }
    for (uint32_t e = 0; e < experts; ++e) {
      biased[e] = score[e] + (options.selection_bias.empty() ? 0.0 : options.selection_bias[e]);
    }

    // Candidates: every expert, or those of the token's top_groups best groups.
    ids.clear();
    if (group.groups == 1) {
      for (uint32_t e = 0; e < experts; ++e) ids.push_back(e);
    } else {
      for (uint32_t g = 0; g < group.groups; ++g) {
        in_group.clear();
        for (uint32_t e = g * group_size; e < (g + 1) * group_size; ++e) in_group.push_back(e);
        TopK(in_group, biased, group.score_top);
        double sum = 0;
        for (uint32_t e : in_group) sum += biased[e];  // best first: a fixed order of additions
        group_score[g] = sum;
      }
      groups.clear();
      for (uint32_t g = 0; g < group.groups; ++g) groups.push_back(g);
      TopK(groups, group_score, group.top_groups);
      std::sort(groups.begin(), groups.end());
      for (uint32_t g : groups) {
        for (uint32_t e = g * group_size; e < (g + 1) * group_size; ++e) ids.push_back(e);
      }
    }
    TopK(ids, biased, k);

    // Weights from the unbiased scores; normalized over the k chosen when asked (a sum of 0, all
    // sigmoids underflowed, leaves them 0 as DeepSeek-V3's "+ 1e-20" guard does), then scaled.
    double sum = 0;
    for (uint32_t e : ids) sum += score[e];
    for (uint32_t e : ids) {
      double w = score[e];
      if (options.normalize && sum > 0) w /= sum;
      AddChoice(out, e, w * options.scaling_factor);
    }
    EndToken(out);
  }
  return out;
}

StatusOr<RouterOutput> GShardTop2(const Logits& logits, Rng& rng) {
  const uint32_t experts = logits.experts();
  if (experts < 2) {
    return ArgError("experts", std::to_string(experts), "top-2 routing needs two experts",
                    "an integer >= 2");
  }
  RouterOutput out = EmptyOutput(experts, logits.tokens());
  std::vector<double> p;
  std::vector<uint32_t> ids(experts);
  for (uint64_t t = 0; t < logits.tokens(); ++t) {
    Softmax(logits.row(t), p);
    for (uint32_t e = 0; e < experts; ++e) ids[e] = e;
    std::partial_sort(ids.begin(), ids.begin() + 2, ids.end(), BestFirst{p});
    const uint32_t e1 = ids[0], e2 = ids[1];
    const double w1 = p[e1] / (p[e1] + p[e2]);
    const double w2 = p[e2] / (p[e1] + p[e2]);
    // u uniform on the 2^53 doubles k * 2^-53 in [0, 1); keep e2 iff u < 2 * w2.
    const double u = static_cast<double>(rng.Next() >> 11) * 0x1p-53;
    AddChoice(out, e1, w1);
    if (u < 2 * w2) {
      AddChoice(out, e2, w2);
    } else {
      out.dropped.push_back({t, e2, w2, DropReason::kRandomSecond});
      ++out.dropped_per_expert[e2];
    }
    EndToken(out);
  }
  return out;
}

StatusOr<RouterOutput> DenseRouting(const Logits& logits) {
  const uint32_t experts = logits.experts();
  RouterOutput out = EmptyOutput(experts, logits.tokens());
  out.choices.reserve(logits.tokens() * experts);
  std::vector<double> p;
  std::vector<uint32_t> ids(experts);
  for (uint64_t t = 0; t < logits.tokens(); ++t) {
    Softmax(logits.row(t), p);
    for (uint32_t e = 0; e < experts; ++e) ids[e] = e;
    std::sort(ids.begin(), ids.end(), BestFirst{p});
    for (uint32_t e : ids) AddChoice(out, e, p[e]);
    EndToken(out);
  }
  return out;
}

StatusOr<RouterOutput> ExpertChoice(const Logits& logits, double capacity_factor) {
  MOESIM_RETURN_IF_ERROR(CheckPositive("capacity_factor", capacity_factor));
  const uint32_t experts = logits.experts();
  const uint64_t tokens = logits.tokens();
  const uint64_t c =
      std::min<uint64_t>(tokens, ExpertCapacity(tokens, 1, experts, capacity_factor));

  // S[t][e], softmax over each token's experts.
  std::vector<double> s(tokens * experts);
  std::vector<double> p;
  for (uint64_t t = 0; t < tokens; ++t) {
    Softmax(logits.row(t), p);
    std::copy(p.begin(), p.end(), s.begin() + t * experts);
  }
  // Each expert's c best tokens (equal scores: the lower token id).
  std::vector<std::vector<uint32_t>> chosen(tokens);  // per token, its experts
  std::vector<uint64_t> order(tokens);
  for (uint32_t e = 0; e < experts; ++e) {
    for (uint64_t t = 0; t < tokens; ++t) order[t] = t;
    auto better = [&](uint64_t a, uint64_t b) {
      const double sa = s[a * experts + e], sb = s[b * experts + e];
      return sa != sb ? sa > sb : a < b;
    };
    std::partial_sort(order.begin(), order.begin() + c, order.end(), better);
    for (uint64_t i = 0; i < c; ++i) chosen[order[i]].push_back(e);
  }
  RouterOutput out = EmptyOutput(experts, tokens);
  for (uint64_t t = 0; t < tokens; ++t) {
    const std::span<const double> row(s.data() + t * experts, experts);
    std::sort(chosen[t].begin(), chosen[t].end(), BestFirst{row});
    for (uint32_t e : chosen[t]) AddChoice(out, e, row[e]);
    EndToken(out);
  }
  return out;
}

namespace {

// Checks the invariants of RouterOutput that ApplyCapacity and FlatExpertIds rely on.
Status CheckOutput(const RouterOutput& r) {
  if (r.num_experts == 0 || r.offsets.empty() || r.offsets.front() != 0 ||
      r.offsets.back() != r.choices.size() || r.expert_tokens.size() != r.num_experts ||
      r.dropped_per_expert.size() != r.num_experts) {
    return ArgError("router output", "", "inconsistent sizes (not made by a router here)");
  }
  for (uint64_t t = 0; t < r.tokens(); ++t) {
    if (r.offsets[t + 1] < r.offsets[t]) {
      return ArgError("router output offsets[" + std::to_string(t + 1) + "]",
                      std::to_string(r.offsets[t + 1]), "decreasing", "non-decreasing offsets");
    }
  }
  for (size_t i = 0; i < r.choices.size(); ++i) {
    if (r.choices[i].expert >= r.num_experts) {
      return ArgError("router output choices[" + std::to_string(i) + "].expert",
                      std::to_string(r.choices[i].expert), "expert id out of range",
                      "0 to " + std::to_string(r.num_experts - 1));
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<RouterOutput> ApplyCapacity(const RouterOutput& routed, const CapacityOptions& options) {
  MOESIM_RETURN_IF_ERROR(CheckOutput(routed));
  MOESIM_RETURN_IF_ERROR(CheckPositive("capacity_factor", options.capacity_factor));
  const uint32_t experts = routed.num_experts;
  if (options.top_k == 0 || options.top_k > experts) {
    return ArgError("top_k", std::to_string(options.top_k),
                    "outside the " + std::to_string(experts) + " experts",
                    "1 to " + std::to_string(experts));
  }
  const uint64_t tokens = routed.tokens();
  const uint64_t capacity = ExpertCapacity(tokens, options.top_k, experts, options.capacity_factor);

  // Claim places choice by choice in the stated order; `kept` marks the winners.
  std::vector<bool> kept(routed.choices.size(), false);
  std::vector<uint64_t> used(experts, 0);
  std::vector<size_t> refused;  // indices into routed.choices, in the order refused
  auto claim = [&](size_t i) {
    const uint32_t e = routed.choices[i].expert;
    if (used[e] < capacity) {
      ++used[e];
      kept[i] = true;
    } else {
      refused.push_back(i);
    }
  };
  if (options.order == ClaimOrder::kTokenOrder) {
    for (size_t i = 0; i < routed.choices.size(); ++i) claim(i);
  } else {
    uint64_t longest = 0;
    for (uint64_t t = 0; t < tokens; ++t) {
      longest = std::max(longest, routed.offsets[t + 1] - routed.offsets[t]);
    }
    for (uint64_t rank = 0; rank < longest; ++rank) {
      for (uint64_t t = 0; t < tokens; ++t) {
        if (routed.offsets[t] + rank < routed.offsets[t + 1]) claim(routed.offsets[t] + rank);
      }
    }
  }

  RouterOutput out = EmptyOutput(experts, tokens);
  out.overflow = options.overflow;
  out.dropped = routed.dropped;
  out.dropped_per_expert = routed.dropped_per_expert;
  for (uint64_t t = 0; t < tokens; ++t) {
    for (uint64_t i = routed.offsets[t]; i < routed.offsets[t + 1]; ++i) {
      if (kept[i]) AddChoice(out, routed.choices[i].expert, routed.choices[i].weight);
    }
    EndToken(out);
  }
  // Token of each refused choice: the t with offsets[t] <= i < offsets[t + 1].
  for (size_t i : refused) {
    const uint64_t t =
        static_cast<uint64_t>(std::upper_bound(routed.offsets.begin(), routed.offsets.end(), i) -
                              routed.offsets.begin() - 1);
    const Choice& c = routed.choices[i];
    out.dropped.push_back({t, c.expert, c.weight, DropReason::kCapacity});
    ++out.dropped_per_expert[c.expert];
  }
  return out;
}

StatusOr<std::vector<uint32_t>> FlatExpertIds(const RouterOutput& routed) {
  MOESIM_RETURN_IF_ERROR(CheckOutput(routed));
  std::vector<uint32_t> ids;
  if (routed.tokens() == 0) return ids;
  const uint64_t k = routed.offsets[1];
  for (uint64_t t = 0; t < routed.tokens(); ++t) {
    const uint64_t n = routed.offsets[t + 1] - routed.offsets[t];
    if (n != k || k == 0) {
      return ArgError(
          "router output token " + std::to_string(t), std::to_string(n) + " experts",
          "a flat expert list needs the same number of experts for every token (token 0 "
          "has " +
              std::to_string(k) + ")",
          "top-k or dense routing without dropped selections");
    }
  }
  ids.reserve(routed.choices.size());
  for (const Choice& c : routed.choices) ids.push_back(c.expert);
  return ids;
}

StatusOr<LayerRouting> ToLayerRouting(std::span<const RouterOutput> per_rank, uint32_t layer) {
  LayerRouting out;
  out.layer = layer;
  for (size_t r = 0; r < per_rank.size(); ++r) {
    MOESIM_ASSIGN_OR_RETURN(std::vector<uint32_t> ids, FlatExpertIds(per_rank[r]));
    const uint64_t tokens = per_rank[r].tokens();
    if (tokens > 0) {
      const uint32_t k = static_cast<uint32_t>(ids.size() / tokens);
      if (out.top_k != 0 && k != out.top_k) {
        return ArgError("rank " + std::to_string(r), std::to_string(k) + " experts per token",
                        "differs from the ranks before it", std::to_string(out.top_k));
      }
      out.top_k = k;
    }
    out.experts.push_back(std::move(ids));
  }
  if (out.top_k == 0) {
    return ArgError("router outputs", std::to_string(per_rank.size()) + " ranks",
                    "no tokens, so no experts per token", "at least one rank with tokens");
  }
  return out;
}

}  // namespace moesim::models
