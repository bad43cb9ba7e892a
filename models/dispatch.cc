#include "models/dispatch.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "models/parallel.h"

namespace moesim::models {

uint64_t LayerWork::TotalDropped() const {
  uint64_t n = 0;
  for (uint64_t d : dropped) n += d;
  return n;
}

namespace {

constexpr AllToAllAlgo kAllToAllAlgos[] = {AllToAllAlgo::kDirect, AllToAllAlgo::kPerRank,
                                           AllToAllAlgo::kHierarchical, AllToAllAlgo::kDeepEpNormal,
                                           AllToAllAlgo::kDeepEpLowLatency};

}  // namespace

std::string_view ToString(AllToAllAlgo algo) {
  switch (algo) {
    case AllToAllAlgo::kDirect:
      return "direct";
    case AllToAllAlgo::kPerRank:
      return "per_rank";
    case AllToAllAlgo::kHierarchical:
      return "hierarchical";
    case AllToAllAlgo::kDeepEpNormal:
      return "deepep_normal";
    case AllToAllAlgo::kDeepEpLowLatency:
      return "deepep_low_latency";
  }
  return "?";
}

StatusOr<AllToAllAlgo> ParseAllToAllAlgo(std::string_view name, const Location& where,
                                         std::string_view field) {
  if (name.empty()) return AllToAllAlgo::kDirect;
  std::string valid;
  for (AllToAllAlgo a : kAllToAllAlgos) {
    if (name == ToString(a)) return a;
    valid += (valid.empty() ? "" : ", ") + std::string(ToString(a));
  }
  return InputError(where, field, name, "unknown all-to-all algorithm", valid);
}

bool RelaysByNode(AllToAllAlgo algo) {
  return algo == AllToAllAlgo::kHierarchical || algo == AllToAllAlgo::kDeepEpNormal;
}

AllToAllAlgo KernelsFor(AllToAllAlgo algo, uint32_t ranks, uint32_t gpus_per_node) {
  const bool one_node = gpus_per_node == 0 || ranks <= gpus_per_node;
  return algo == AllToAllAlgo::kDeepEpNormal && one_node ? AllToAllAlgo::kPerRank : algo;
}

const TrafficMatrix& SentTokens(const LayerWork& layer, AllToAllAlgo algo) {
  const bool per_rank =
      algo == AllToAllAlgo::kPerRank && layer.rank_tokens.ranks() == layer.dispatch_tokens.ranks();
  return per_rank ? layer.rank_tokens : layer.dispatch_tokens;
}

StatusOr<uint32_t> ParseChunkTokens(bool given, uint32_t value, AllToAllAlgo algo,
                                    const Location& where, std::string_view field) {
  if (!given) return kDeepEpChunkTokens;
  if (algo != AllToAllAlgo::kDeepEpNormal) {
    return InputError(where, field, std::to_string(value),
                      "only deepep_normal forwards in chunks (the algorithm is " +
                          std::string(ToString(algo)) + ")",
                      "alltoall_algo: \"deepep_normal\", or leave it out");
  }
  if (value == 0) {
    return InputError(where, field, "0", "a chunk of no tokens",
                      "an integer >= 1 (default " + std::to_string(kDeepEpChunkTokens) + ")");
  }
  return value;
}

uint32_t CommSms(AllToAllAlgo algo, const CommSmsInput& input) {
  switch (algo) {
    case AllToAllAlgo::kDirect:
      return input.nccl_channels;
    case AllToAllAlgo::kPerRank:
    case AllToAllAlgo::kHierarchical:
    case AllToAllAlgo::kDeepEpNormal:
      return kDeepEpNumSms;
    case AllToAllAlgo::kDeepEpLowLatency: {
      if (input.experts == 0 || input.device_sms == 0) return 0;
      const uint32_t groups = (input.experts + input.device_sms - 1) / input.device_sms;
      return (input.experts + groups - 1) / groups;
    }
  }
  return 0;
}

namespace {

// Counts one sender's distinct tokens per destination (a node, or a rank): Copy() each copy's
// destination, EndToken() after each token, TakeRow() after the sender's last token.
class DistinctTokenCounter {
 public:
  explicit DistinctTokenCounter(uint32_t destinations) : count_(destinations, 0) {}

  void Copy(uint32_t to) {
    if (std::find(token_.begin(), token_.end(), to) == token_.end()) token_.push_back(to);
  }
  void EndToken() {
    for (uint32_t to : token_) {
      if (count_[to]++ == 0) touched_.push_back(to);
    }
    token_.clear();
  }
  std::vector<TrafficMatrix::Cell> TakeRow() {
    std::sort(touched_.begin(), touched_.end());
    std::vector<TrafficMatrix::Cell> row;
    for (uint32_t to : touched_) {
      row.push_back({to, count_[to]});
      count_[to] = 0;
    }
    touched_.clear();
    return row;
  }

 private:
  std::vector<uint64_t> count_;    // per destination, for the current sender
  std::vector<uint32_t> touched_;  // destinations with count_ > 0
  std::vector<uint32_t> token_;    // distinct destinations of the current token's copies
};

}  // namespace

LayerWork ExpandLayer(const LayerRouting& routing, const Plan& plan,
                      const ExpertPlacement& placement, double capacity_factor) {
  const uint32_t world = plan.world();
  const LayerPlacement& layer = placement.layer(routing.layer);
  LayerWork work = EmptyLayerWork(routing.layer, plan, placement);
  const uint32_t per_node = placement.gpus_per_node();
  // Senders in chunks over the machine's cores (models/parallel.h). Each sender writes its own row,
  // counts and drops; what every sender adds to the experts' counts goes to its chunk's own
  // tallies, one slot per (rank, local expert), which are then added in chunk order: integers, so
  // the same whatever the split.
  const std::vector<uint64_t> slot_first = TallySlots(work);
  uint64_t copies = 0;
  for (const std::vector<uint32_t>& ids : routing.experts) copies += ids.size();
  std::vector<std::vector<uint64_t>> tallies(ParallelChunkCount(world, copies));
  ParallelChunks(world, copies, [&](uint32_t first, uint32_t last, uint32_t chunk) {
    std::vector<uint64_t>& tally = tallies[chunk];
    // Slots first, then the chunk's drops per logical expert.
    tally.assign(slot_first[world] + layer.num_experts(), 0);
    std::vector<uint64_t> sent_to_expert(layer.num_experts());  // per sender: the replica rule's j
    std::vector<uint64_t> sent_to_ep_rank;  // per sender: its row, indexed by EP rank in its group
    // Distinct tokens per destination node, when the nodes are known, and per destination rank.
    DistinctTokenCounter per_node_token(per_node > 0 ? (world + per_node - 1) / per_node : 0);
    DistinctTokenCounter per_rank_token(world);
    for (uint32_t src = first; src < last; ++src) {
      const std::vector<uint32_t> group = plan.EpGroup(src);
      const uint32_t src_ep = plan.EpRank(src);
      std::fill(sent_to_expert.begin(), sent_to_expert.end(), 0);
      sent_to_ep_rank.assign(group.size(), 0);
      work.tokens_in[src] = routing.tokens(src);
      const std::vector<uint32_t>& experts = routing.experts[src];
      const uint64_t capacity = ExpertCapacity(routing.tokens(src), routing.top_k,
                                               layer.num_experts(), capacity_factor);
      for (uint64_t k = 0; k < experts.size(); ++k) {
        const uint32_t expert = experts[k];
        if (k % routing.top_k == 0) {
          per_node_token.EndToken();
          per_rank_token.EndToken();
        }
        if (expert == kNotDispatched) continue;  // the router did not dispatch this slot
        if (capacity > 0 && sent_to_expert[expert] >= capacity) {
          ++work.dropped[src];
          ++tally[slot_first[world] + expert];
          continue;
        }
        const LayerPlacement::Replica r = ChooseReplica(
            layer, expert, group, src_ep, placement.gpus_per_node(), sent_to_expert[expert]++);
        ++sent_to_ep_rank[r.ep_rank];
        ++tally[slot_first[group[r.ep_rank]] + r.slot];
        if (per_node > 0) per_node_token.Copy(group[r.ep_rank] / per_node);
        per_rank_token.Copy(group[r.ep_rank]);
      }
      per_node_token.EndToken();
      per_rank_token.EndToken();
      if (per_node > 0) work.node_tokens.SetRow(src, per_node_token.TakeRow());
      work.rank_tokens.SetRow(src, per_rank_token.TakeRow());
      std::vector<TrafficMatrix::Cell> row;
      for (uint32_t e = 0; e < group.size(); ++e) {
        if (sent_to_ep_rank[e] > 0) row.push_back({group[e], sent_to_ep_rank[e]});
      }
      std::sort(row.begin(), row.end(), [](const auto& a, const auto& b) { return a.dst < b.dst; });
      work.dispatch_tokens.SetRow(src, std::move(row));
    }
  });
  AddTallies(tallies, slot_first, layer.num_experts(), &work);
  return work;
}

LayerWork EmptyLayerWork(uint32_t layer, const Plan& plan, const ExpertPlacement& placement) {
  const uint32_t world = plan.world();
  LayerWork work;
  work.layer = layer;
  work.dispatch_tokens = TrafficMatrix(world);
  work.expert_tokens.resize(world);
  for (uint32_t rank = 0; rank < world; ++rank) {
    work.expert_tokens[rank].assign(placement.layer(layer).slots().at(plan.EpRank(rank)).size(), 0);
  }
  work.tokens_in.assign(world, 0);
  work.dropped.assign(world, 0);
  if (placement.gpus_per_node() > 0) work.node_tokens = TrafficMatrix(world);
  work.rank_tokens = TrafficMatrix(world);
  return work;
}

std::vector<uint64_t> TallySlots(const LayerWork& work) {
  const size_t ranks = work.expert_tokens.size();
  std::vector<uint64_t> slot_first(ranks + 1, 0);
  for (size_t rank = 0; rank < ranks; ++rank) {
    slot_first[rank + 1] = slot_first[rank] + work.expert_tokens[rank].size();
  }
  return slot_first;
}

void AddTallies(const std::vector<std::vector<uint64_t>>& tallies,
                const std::vector<uint64_t>& slot_first, uint32_t experts, LayerWork* work) {
  const size_t ranks = work->expert_tokens.size();
  for (size_t rank = 0; rank < ranks; ++rank) {
    for (uint64_t slot = 0; slot < work->expert_tokens[rank].size(); ++slot) {
      for (const std::vector<uint64_t>& tally : tallies) {
        work->expert_tokens[rank][slot] += tally[slot_first[rank] + slot];
      }
    }
  }
  work->dropped_per_expert.assign(experts, 0);
  for (uint32_t e = 0; e < experts; ++e) {
    for (const std::vector<uint64_t>& tally : tallies) {
      work->dropped_per_expert[e] += tally[slot_first[ranks] + e];
    }
  }
}

}  // namespace moesim::models
