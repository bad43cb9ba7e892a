#include "models/count_routing.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "models/parallel.h"

namespace moesim::models {
namespace {

// Stream tag of the count draw, apart from the per-token generators' (models/synthetic.cc).
constexpr uint64_t kCountStream = 0x636f756e74ULL;  // "count"

// Uniform in [0, 1), 53 bits.
double CountUniform(Rng& rng) { return static_cast<double>(rng.Next() >> 11) * 0x1p-53; }

// x^n by squaring: only multiplications, so the same on every machine.
double CountPower(double x, uint64_t n) {
  double result = 1;
  while (n > 0) {
    if (n & 1) result *= x;
    x *= x;
    n >>= 1;
  }
  return result;
}

// Below this mean a binomial is drawn by inversion, above it from the normal.
constexpr double kInversionMean = 16;

}  // namespace

uint64_t DrawBinomial(Rng& rng, uint64_t n, double p) {
  if (n == 0 || !(p > 0)) return 0;
  if (p >= 1) return n;
  if (p > 0.5) return n - DrawBinomial(rng, n, 1 - p);
  const double q = 1 - p;
  const double mean = static_cast<double>(n) * p;
  if (mean < kInversionMean) {
    // P(0) = q^n >= e^(-2 mean) > 1e-14 (p <= 1/2): no underflow. P(j + 1) = P(j) (n - j) p /
    // ((j + 1) q); past the mode the terms fall fast and reach 0, which ends a walk that rounding
    // kept from passing u.
    const double u = CountUniform(rng), ratio = p / q;
    double prob = CountPower(q, n), cumulative = prob;
    uint64_t j = 0;
    while (u >= cumulative && j < n && prob > 0) {
      prob *= static_cast<double>(n - j) / static_cast<double>(j + 1) * ratio;
      ++j;
      cumulative += prob;
    }
    return j;
  }
  double z = -6;  // Irwin-Hall: the sum of 12 uniforms less 6 has mean 0 and variance 1
  for (int i = 0; i < 12; ++i) z += CountUniform(rng);
  const double x = std::floor(mean + std::sqrt(mean * q) * z + 0.5);
  if (x <= 0) return 0;
  return x >= static_cast<double>(n) ? n : static_cast<uint64_t>(x);
}

std::vector<uint64_t> DrawRankCounts(Rng& rng, std::span<const double> inclusion, uint64_t tokens,
                                     uint32_t top_k) {
  std::vector<uint64_t> counts(inclusion.size(), 0);
  // cumulative[e]: the variances T pi (1 - pi) of experts 0..e, where the difference goes.
  std::vector<double> cumulative(inclusion.size(), 0);
  uint64_t sum = 0;
  double spread = 0;
  for (size_t e = 0; e < inclusion.size(); ++e) {
    const double pi = inclusion[e];
    counts[e] = DrawBinomial(rng, tokens, pi);
    sum += counts[e];
    if (pi > 0 && pi < 1) spread += pi * (1 - pi);
    cumulative[e] = spread;
  }
  // A selection at a time to (or from) an expert drawn in proportion to its variance, passing
  // over one that is full (T) or empty. Ends: while the sum is short of T k = T sum(pi), some
  // expert with 0 < pi < 1 is below T (else the sum would be at least T sum(pi)); likewise above.
  const uint64_t target = tokens * top_k;
  while (sum != target && spread > 0) {
    const double u = CountUniform(rng) * spread;
    const size_t e = std::min<size_t>(
        std::upper_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin(),
        inclusion.size() - 1);
    if (sum < target && counts[e] < tokens) {
      ++counts[e];
      ++sum;
    } else if (sum > target && counts[e] > 0) {
      --counts[e];
      --sum;
    }
  }
  return counts;
}

LayerCounts DrawLayerCounts(const RoutingShape& shape, std::span<const double> inclusion,
                            uint64_t seed, uint32_t layer) {
  LayerCounts out{layer, shape.top_k, shape.tokens_per_rank, {}};
  out.counts.resize(shape.ranks);
  const uint64_t stream = Rng::Mix(seed, kCountStream, layer);
  ParallelChunks(shape.ranks, uint64_t{shape.ranks} * inclusion.size() * 16,
                 [&](uint32_t first, uint32_t last, uint32_t) {
                   for (uint32_t rank = first; rank < last; ++rank) {
                     Rng rng(Rng::Mix(stream, rank, 0));
                     out.counts[rank] =
                         DrawRankCounts(rng, inclusion, shape.tokens_per_rank, shape.top_k);
                   }
                 });
  return out;
}

void AddCountLoads(const LayerCounts& counts, std::vector<std::vector<uint64_t>>* loads) {
  if (loads->size() <= counts.layer) loads->resize(counts.layer + 1);
  std::vector<uint64_t>& row = (*loads)[counts.layer];
  for (const std::vector<uint64_t>& rank : counts.counts) {
    row.resize(std::max(row.size(), rank.size()), 0);
    for (size_t e = 0; e < rank.size(); ++e) row[e] += rank[e];
  }
}

namespace {

// Expected distinct tokens of a sender of T tokens at a destination a sampled token reaches with
// probability `hit`: round(T hit), within 1 and the copies it sends there.
uint64_t ExpectedDistinct(uint64_t tokens, uint64_t copies, double hit) {
  const auto rounded = static_cast<uint64_t>(std::llround(static_cast<double>(tokens) * hit));
  return std::clamp<uint64_t>(rounded, 1, copies);
}

// The chance that a sampled token has a copy at each of `destinations` destinations, where
// `where[d]` says which destination EP rank d is in: the mean over the sample of 1 - prod over the
// token's experts e of (1 - f_e), f_e the fraction of e's replicas there.
std::vector<double> SampleHits(const LayerCounts& counts, const LayerPlacement& layer,
                               const std::vector<uint32_t>& where, uint32_t destinations) {
  // Per expert, (destination, fraction of its replicas there).
  std::vector<std::vector<std::pair<uint32_t, double>>> on(layer.num_experts());
  for (uint32_t e = 0; e < layer.num_experts(); ++e) {
    const std::vector<LayerPlacement::Replica>& replicas = layer.ReplicasOf(e);
    for (const LayerPlacement::Replica& r : replicas) {
      const uint32_t d = where[r.ep_rank];
      auto it =
          std::find_if(on[e].begin(), on[e].end(), [&](const auto& x) { return x.first == d; });
      if (it == on[e].end()) it = on[e].insert(on[e].end(), {d, 0.0});
      it->second += 1.0 / static_cast<double>(replicas.size());
    }
  }
  std::vector<double> hits(destinations, 0.0), miss(destinations, 1.0);
  std::vector<uint32_t> touched;
  const uint32_t k = counts.top_k;
  const size_t tokens = counts.sample.size() / k;
  for (size_t t = 0; t < tokens; ++t) {
    for (uint32_t j = 0; j < k; ++j) {
      for (const auto& [d, fraction] : on[counts.sample[t * k + j]]) {
        if (miss[d] == 1.0) touched.push_back(d);
        miss[d] *= 1.0 - fraction;
      }
    }
    for (uint32_t d : touched) {
      hits[d] += 1.0 - miss[d];
      miss[d] = 1.0;
    }
    touched.clear();
  }
  for (double& h : hits) h = tokens == 0 ? 0.0 : h / static_cast<double>(tokens);
  return hits;
}

}  // namespace

LayerWork ExpandCounts(const LayerCounts& counts, const Plan& plan,
                       const ExpertPlacement& placement, double capacity_factor) {
  const uint32_t world = plan.world();
  const LayerPlacement& layer = placement.layer(counts.layer);
  const uint32_t experts = layer.num_experts(), ep = layer.ep();
  const uint64_t tokens = counts.tokens_per_rank;
  LayerWork work = EmptyLayerWork(counts.layer, plan, placement);
  work.tokens_in.assign(world, tokens);
  const uint32_t per_node = placement.gpus_per_node();
  // Distinct tokens from the sample: per EP rank, and per node of each EP group (the nodes its EP
  // ranks are on depend on the group), keyed by the group's first rank.
  std::vector<uint32_t> identity(ep);
  for (uint32_t d = 0; d < ep; ++d) identity[d] = d;
  const std::vector<double> rank_hits = SampleHits(counts, layer, identity, ep);
  std::vector<std::vector<double>> node_hits(world);    // [first rank of a group][its node slot]
  std::vector<std::vector<uint32_t>> node_slot(world);  // [first rank][EP rank] -> node slot
  if (per_node > 0) {
    for (uint32_t src = 0; src < world; ++src) {
      const std::vector<uint32_t> group = plan.EpGroup(src);
      if (!node_hits[group.front()].empty()) continue;
      std::vector<uint32_t>& slot = node_slot[group.front()];
      std::vector<uint32_t> nodes;
      for (uint32_t d = 0; d < ep; ++d) {
        const uint32_t node = group[d] / per_node;
        const auto it = std::find(nodes.begin(), nodes.end(), node);
        slot.push_back(static_cast<uint32_t>(it - nodes.begin()));
        if (it == nodes.end()) nodes.push_back(node);
      }
      node_hits[group.front()] =
          SampleHits(counts, layer, slot, static_cast<uint32_t>(nodes.size()));
    }
  }
  // As ExpandLayer: senders in chunks, each writing its own rows; expert counts and drops per
  // chunk, added in chunk order.
  const std::vector<uint64_t> slot_first = TallySlots(work);
  const uint64_t work_units = uint64_t{world} * experts * 16;
  std::vector<std::vector<uint64_t>> tallies(ParallelChunkCount(world, work_units));
  ParallelChunks(world, work_units, [&](uint32_t first, uint32_t last, uint32_t chunk) {
    std::vector<uint64_t>& tally = tallies[chunk];
    tally.assign(slot_first[world] + experts, 0);
    std::vector<uint64_t> sent;  // per EP rank of the sender's group
    for (uint32_t src = first; src < last; ++src) {
      const std::vector<uint32_t> group = plan.EpGroup(src);
      const uint32_t src_ep = plan.EpRank(src);
      sent.assign(ep, 0);
      const uint64_t capacity = ExpertCapacity(tokens, counts.top_k, experts, capacity_factor);
      for (uint32_t e = 0; e < experts; ++e) {
        const uint64_t routed = counts.counts[src][e];
        if (routed == 0) continue;
        const uint64_t kept = capacity > 0 ? std::min(routed, capacity) : routed;
        work.dropped[src] += routed - kept;
        tally[slot_first[world] + e] += routed - kept;
        // ExpandLayer's replica for each copy in turn; a single replica takes them all at once.
        const bool one = layer.ReplicasOf(e).size() == 1;
        for (uint64_t nth = 0; nth < (one ? std::min<uint64_t>(kept, 1) : kept); ++nth) {
          const LayerPlacement::Replica r = ChooseReplica(layer, e, group, src_ep, per_node, nth);
          const uint64_t n = one ? kept : 1;
          sent[r.ep_rank] += n;
          tally[slot_first[group[r.ep_rank]] + r.slot] += n;
        }
      }
      std::vector<std::pair<uint32_t, uint32_t>> by_rank;  // (global rank, EP rank), sorted
      for (uint32_t d = 0; d < ep; ++d) {
        if (sent[d] > 0) by_rank.emplace_back(group[d], d);
      }
      std::sort(by_rank.begin(), by_rank.end());
      std::vector<TrafficMatrix::Cell> row, distinct;
      for (const auto& [dst, d] : by_rank) {
        row.push_back({dst, sent[d]});
        distinct.push_back({dst, ExpectedDistinct(tokens, sent[d], rank_hits[d])});
      }
      work.dispatch_tokens.SetRow(src, std::move(row));
      work.rank_tokens.SetRow(src, std::move(distinct));
      if (per_node == 0) continue;
      const std::vector<uint32_t>& slot = node_slot[group.front()];
      const std::vector<double>& hits = node_hits[group.front()];
      std::vector<TrafficMatrix::Cell> nodes;  // by node, ascending as by_rank's ranks
      uint64_t node_copies = 0;
      for (size_t i = 0; i < by_rank.size(); ++i) {
        const auto [dst, d] = by_rank[i];
        node_copies += sent[d];
        if (i + 1 == by_rank.size() || by_rank[i + 1].first / per_node != dst / per_node) {
          nodes.push_back({dst / per_node, ExpectedDistinct(tokens, node_copies, hits[slot[d]])});
          node_copies = 0;
        }
      }
      work.node_tokens.SetRow(src, std::move(nodes));
    }
  });
  AddTallies(tallies, slot_first, experts, &work);
  return work;
}

}  // namespace moesim::models
