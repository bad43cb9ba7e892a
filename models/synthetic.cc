// Compiled with -ffp-contract=off (models/CMakeLists.txt): a fused multiply-add rounds once where
// the code says twice, and compilers fuse by default on some machines (GCC on aarch64), which would
// make Zipf weights, and so routing, differ between machines.
#include "models/synthetic.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <utility>

#include "models/parallel.h"
#include "models/rng.h"
#include "models/systematic_sampling.h"

namespace moesim::models {
namespace {

// Stream tags, so that different uses of one seed never share random numbers.
constexpr uint64_t kOrderStream = 0x4f52444552;           // "ORDER"
constexpr uint64_t kZipfStream = 0x5a495046;              // "ZIPF"
constexpr uint64_t kCollapseStream = 0x434f4c4c41505345;  // "COLLAPSE"
constexpr uint64_t kCountsStream = 0x434f554e5453;        // "COUNTS"
constexpr uint64_t kCorrelationStream = 0x434f5252;       // "CORR"

uint64_t Stream(uint64_t seed, uint64_t tag, uint64_t a, uint64_t b, uint64_t c) {
  return Rng::Mix(Rng::Mix(seed, tag, a), b, c);
}

// True with probability p in [0, 1]: a 53-bit uniform integer below floor(p * 2^53) (p * 2^53 is
// exact, a power-of-two scaling).
bool Bernoulli(Rng& rng, double p) {
  const uint64_t threshold = static_cast<uint64_t>(p * 0x1p53);
  return (rng.Next() >> 11) < threshold;
}

// Fisher-Yates: every permutation of `v` equally likely.
template <typename T>
void Shuffle(Rng& rng, std::vector<T>& v) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.Below(i)]);
}

// ln x for finite x > 0 with + - * / only. x = m 2^e (frexp, exact), m moved into [sqrt(1/2),
// sqrt(2)); ln m = 2 atanh(z) = 2 (z + z^3/3 + z^5/5 + ...), z = (m - 1) / (m + 1), |z| <= 0.172,
// so twelve terms leave an error below z^25 / 25 < 1e-20.
double Ln(double x) {
  constexpr double kLn2 = 0.69314718055994530942;
  constexpr double kSqrtHalf = 0.70710678118654752440;
  int e = 0;
  double m = std::frexp(x, &e);
  if (m < kSqrtHalf) {
    m *= 2;
    --e;
  }
  const double z = (m - 1) / (m + 1);
  const double z2 = z * z;
  double sum = 0;
  for (int i = 23; i >= 1; i -= 2) sum = sum * z2 + 1.0 / i;
  return e * kLn2 + 2 * z * sum;
}

// e^y for y <= 0 with + - * / only: y = n ln2 + r, |r| <= ln2 / 2, e^r by its Taylor series to r^20
// (error below 0.35^21 / 21! < 1e-28), then 2^n exactly (ldexp).
double ExpNonPositive(double y) {
  constexpr double kLn2 = 0.69314718055994530942;
  if (y < -746) return 0;  // below the smallest subnormal
  const double n = std::floor(y / kLn2 + 0.5);
  const double r = y - n * kLn2;
  double sum = 1;
  for (int i = 20; i >= 1; --i) sum = 1 + r * sum / i;
  return std::ldexp(sum, static_cast<int>(n));
}

// The hot-expert order(s) a token may draw from at this step: one without drift; with drift, epoch
// n's and n + 1's, and the probability (numerator over period) of using the second.
struct DriftState {
  std::vector<std::vector<uint32_t>> orders;
  uint64_t numerator = 0;
  uint64_t period = 1;

  DriftState(uint32_t experts, uint64_t seed, uint32_t layer, bool shuffle, const Drift& drift) {
    if (drift.period_steps == 0) {
      orders.push_back(HotOrder(experts, seed, layer, 0, shuffle));
      return;
    }
    period = drift.period_steps;
    const uint64_t epoch = drift.step / period;
    numerator = drift.step % period;
    orders.push_back(HotOrder(experts, seed, layer, epoch, shuffle));
    orders.push_back(HotOrder(experts, seed, layer, epoch + 1, shuffle));
  }
  // Which order this token uses: the second with probability numerator / period, exactly.
  size_t Pick(Rng& rng) const {
    if (orders.size() == 1) return 0;
    return rng.Below(period) < numerator ? 1 : 0;
  }
};

LayerRouting EmptyLayer(const RoutingShape& shape, uint32_t layer) {
  LayerRouting out;
  out.layer = layer;
  out.top_k = shape.top_k;
  out.experts.resize(shape.ranks);
  for (auto& ids : out.experts) ids.reserve(shape.tokens_per_rank * shape.top_k);
  return out;
}

// Draws body(first, last) for chunks of the ranks on the machine's cores (models/parallel.h): each
// rank draws from its own stream into its own ids, so the routing is the same bit for bit however
// the ranks are split.
template <typename Body>
void ForRanks(const RoutingShape& shape, const Body& body) {
  ParallelChunks(shape.ranks, uint64_t{shape.ranks} * shape.tokens_per_rank,
                 [&body](uint32_t first, uint32_t last, uint32_t) { body(first, last); });
}

}  // namespace

GroupLimitFault CheckGroupLimit(const GroupLimit& limit, uint32_t experts, uint32_t k) {
  if (limit.groups == 0 || limit.groups > 64 || experts % limit.groups != 0) {
    return GroupLimitFault::kGroups;
  }
  const uint64_t per = experts / limit.groups;
  if (limit.top == 0 || limit.top > limit.groups || limit.top * per < k) {
    return GroupLimitFault::kTop;
  }
  if (limit.score_top > per) return GroupLimitFault::kScoreTop;
  return GroupLimitFault::kNone;
}

void TopKByGroupScore(std::span<const uint64_t> scores, const GroupLimit& limit, uint32_t k,
                      std::vector<uint32_t>& ids) {
  const uint32_t experts = static_cast<uint32_t>(scores.size());
  const uint32_t per = experts / limit.groups;
  // Larger score first, then the lower id: a strict total order, so no sort is left to chance.
  const auto better = [&](uint32_t a, uint32_t b) {
    return scores[a] != scores[b] ? scores[a] > scores[b] : a < b;
  };
  std::vector<uint32_t> members(per);
  std::vector<std::pair<unsigned __int128, uint32_t>> groups(limit.groups);  // (score, group)
  for (uint32_t g = 0; g < limit.groups; ++g) {
    for (uint32_t i = 0; i < per; ++i) members[i] = g * per + i;
    std::partial_sort(members.begin(), members.begin() + limit.score_top, members.end(), better);
    unsigned __int128 sum = 0;
    for (uint32_t i = 0; i < limit.score_top; ++i) sum += scores[members[i]];
    groups[g] = {sum, g};
  }
  std::partial_sort(groups.begin(), groups.begin() + limit.top, groups.end(),
                    [](const auto& a, const auto& b) {
                      return a.first != b.first ? a.first > b.first : a.second < b.second;
                    });
  std::vector<uint32_t> candidates;
  candidates.reserve(uint64_t{limit.top} * per);
  for (uint32_t j = 0; j < limit.top; ++j) {
    for (uint32_t i = 0; i < per; ++i) candidates.push_back(groups[j].second * per + i);
  }
  std::partial_sort(candidates.begin(), candidates.begin() + k, candidates.end(), better);
  ids.insert(ids.end(), candidates.begin(), candidates.begin() + k);
}

LayerRouting UniformRouting(const RoutingShape& shape, uint64_t seed, uint32_t layer,
                            const GroupLimit& limit) {
  LayerRouting out = EmptyLayer(shape, layer);
  const uint32_t per = limit.Limits() ? shape.num_experts / limit.groups : 0;
  const bool by_score = per > 0 && limit.score_top > 0;
  ForRanks(shape, [&](uint32_t first, uint32_t last) {
    std::vector<uint32_t> groups, local;
    std::vector<uint64_t> scores(by_score ? shape.num_experts : 0);
    for (uint32_t rank = first; rank < last; ++rank) {
      Rng rng(Rng::Mix(seed, layer, rank));
      std::vector<uint32_t>& ids = out.experts[rank];
      for (uint64_t t = 0; t < shape.tokens_per_rank; ++t) {
        if (per == 0) {
          Floyd(rng, shape.num_experts, shape.top_k, ids);
          continue;
        }
        if (by_score) {
          for (uint64_t& score : scores) score = rng.Next() >> 11;
          TopKByGroupScore(scores, limit, shape.top_k, ids);
          continue;
        }
        // The token's groups, then k of their top x per experts (local index i: group i / per).
        groups.clear();
        local.clear();
        Floyd(rng, limit.groups, limit.top, groups);
        Floyd(rng, limit.top * per, shape.top_k, local);
        for (uint32_t i : local) ids.push_back(groups[i / per] * per + i % per);
      }
    }
  });
  return out;
}

std::vector<uint32_t> HotOrder(uint32_t experts, uint64_t seed, uint32_t layer, uint64_t epoch,
                               bool shuffle) {
  std::vector<uint32_t> order(experts);
  for (uint32_t e = 0; e < experts; ++e) order[e] = e;
  if (shuffle || epoch > 0) {
    Rng rng(Stream(seed, kOrderStream, layer, epoch, 0));
    Shuffle(rng, order);
  }
  return order;
}

std::vector<double> ZipfPopularity(uint32_t experts, double alpha) {
  std::vector<double> p(experts);
  double sum = 0;
  for (uint32_t r = 1; r <= experts; ++r) sum += p[r - 1] = ExpNonPositive(-alpha * Ln(r));
  for (double& v : p) v /= sum;
  return p;
}

std::vector<double> InclusionProbabilities(std::span<const double> popularity, uint32_t k) {
  const size_t n = popularity.size();
  std::vector<uint32_t> ids(n);
  for (uint32_t e = 0; e < n; ++e) ids[e] = e;
  std::sort(ids.begin(), ids.end(), [&](uint32_t a, uint32_t b) {
    return popularity[a] != popularity[b] ? popularity[a] > popularity[b] : a < b;
  });
  // Cap the most popular experts at 1, one at a time, while c p_e > 1 for the best uncapped one,
  // where c = (k - capped) / (popularity of the uncapped).
  std::vector<double> pi(n, 0.0);
  size_t capped = 0;
  while (capped < k && capped < n) {
    double rest = 0;
    for (size_t i = capped; i < n; ++i) rest += popularity[ids[i]];
    const double c = (k - static_cast<double>(capped)) / rest;
    if (rest > 0 && c * popularity[ids[capped]] <= 1) {
      for (size_t i = capped; i < n; ++i) pi[ids[i]] = c * popularity[ids[i]];
      break;
    }
    if (rest <= 0) {  // only experts of popularity 0 left: they share what remains equally
      for (size_t i = capped; i < n; ++i)
        pi[ids[i]] = (k - static_cast<double>(capped)) / (n - capped);
      break;
    }
    pi[ids[capped++]] = 1;
  }
  return pi;
}

namespace {

// ZipfRouting under a group limit (ZipfOptions::limit).
LayerRouting GroupLimitedZipf(const RoutingShape& shape, const ZipfOptions& options, uint64_t seed,
                              uint32_t layer) {
  const uint32_t e = shape.num_experts, k = shape.top_k;
  const GroupLimit& limit = options.limit;
  const uint32_t per = e / limit.groups;
  const std::vector<double> p = ZipfPopularity(e, options.alpha);  // by popularity rank
  const DriftState drift(e, seed, layer, options.shuffle_experts, options.drift);
  // Per hot-expert order: each expert's popularity, and its groups on the line, by group mass.
  struct Order {
    std::vector<double> popularity;  // by expert id
    ZipfOrder groups;
    std::vector<Batch> batches;
  };
  std::vector<uint32_t> group_ids(limit.groups);
  for (uint32_t g = 0; g < limit.groups; ++g) group_ids[g] = g;
  std::vector<Order> orders;
  for (const std::vector<uint32_t>& order : drift.orders) {
    Order& o = orders.emplace_back();
    o.popularity.assign(e, 0.0);
    for (uint32_t r = 0; r < e; ++r) o.popularity[order[r]] = p[r];
    std::vector<double> mass(limit.groups, 0.0);
    for (uint32_t x = 0; x < e; ++x) mass[x / per] += o.popularity[x];
    const std::vector<double> pi = InclusionProbabilities(mass, limit.top);
    o.groups = MakeZipfOrder(InclusionUnits(pi, limit.top), group_ids);
    o.batches = Batches(static_cast<uint32_t>(o.groups.initial.size()));
  }
  // The experts of each (order, set of groups) that tokens draw, built when first drawn and kept
  // for the first kMaxLines sets (DeepSeek's 4 of 8 groups have 70; 8 of 64 would have 4.4e9, and
  // those are built for each token anew). Kept or not, a set's line is the same, so each thread
  // keeps its own.
  struct Experts {
    ZipfOrder line;
    std::vector<Batch> batches;
  };
  constexpr size_t kMaxLines = 4096;
  using Key = std::pair<size_t, uint64_t>;  // order, bit g set for group g

  LayerRouting out = EmptyLayer(shape, layer);
  ForRanks(shape, [&](uint32_t first, uint32_t last) {
    std::map<Key, Experts> lines;
    Experts spare;
    auto line_of = [&](const Key& key) -> const Experts& {
      auto found = lines.find(key);
      if (found != lines.end()) return found->second;
      Experts& built = lines.size() < kMaxLines ? lines[key] : spare;
      std::vector<double> popularity;
      std::vector<uint32_t> ids;
      for (uint32_t g = 0; g < limit.groups; ++g) {
        if ((key.second >> g & 1) == 0) continue;
        for (uint32_t x = g * per; x < (g + 1) * per; ++x) {
          ids.push_back(x);
          popularity.push_back(orders[key.first].popularity[x]);
        }
      }
      built.line = MakeZipfOrder(InclusionUnits(InclusionProbabilities(popularity, k), k), ids);
      built.batches = Batches(static_cast<uint32_t>(built.line.initial.size()));
      return built;
    };
    std::vector<std::vector<uint64_t>> group_scratch(orders.size());
    std::map<Key, std::vector<uint64_t>>
        scratch;  // per rank, so that ranks do not depend on others
    std::vector<uint32_t> chosen(limit.top);
    for (uint32_t rank = first; rank < last; ++rank) {
      Rng rng(Stream(seed, kZipfStream, layer, rank, options.drift.step));
      for (size_t o = 0; o < orders.size(); ++o) group_scratch[o] = orders[o].groups.initial;
      scratch.clear();
      std::vector<uint32_t>& ids = out.experts[rank];
      ids.resize(shape.tokens_per_rank * k);
      for (uint64_t t = 0; t < shape.tokens_per_rank; ++t) {
        const size_t o = drift.Pick(rng);
        Systematic(rng, orders[o].groups, limit.top, orders[o].batches, group_scratch[o],
                   chosen.data());
        Key key{o, 0};
        for (uint32_t g : chosen) key.second |= uint64_t{1} << g;
        const Experts& line = line_of(key);
        auto [s, fresh] = scratch.try_emplace(key);
        if (fresh) s->second = line.line.initial;
        Systematic(rng, line.line, k, line.batches, s->second, ids.data() + t * k);
      }
    }
  });
  return out;
}

}  // namespace

LayerRouting ZipfRouting(const RoutingShape& shape, const ZipfOptions& options, uint64_t seed,
                         uint32_t layer) {
  if (options.limit.Limits()) return GroupLimitedZipf(shape, options, seed, layer);
  const uint32_t e = shape.num_experts;
  const uint32_t k = shape.top_k;
  const std::vector<double> pi = InclusionProbabilities(ZipfPopularity(e, options.alpha), k);
  const std::vector<uint64_t> by_rank = InclusionUnits(pi, k);  // index = popularity rank
  const DriftState drift(e, seed, layer, options.shuffle_experts, options.drift);
  std::vector<ZipfOrder> orders;  // the same split for every order, with its own experts
  for (const auto& order : drift.orders) {
    ZipfOrder& z = orders.emplace_back();
    std::vector<uint64_t> units(e);  // index = expert
    for (uint32_t r = 0; r < e; ++r) {
      units[order[r]] = by_rank[r];
      if (by_rank[r] == kUnit) z.always.push_back(order[r]);
    }
    for (uint32_t x = 0; x < e; ++x) {
      if (units[x] != kUnit) z.initial.push_back(units[x] << 32 | x);
    }
  }
  const std::vector<Batch> batches = Batches(static_cast<uint32_t>(orders[0].initial.size()));

  LayerRouting out = EmptyLayer(shape, layer);
  ForRanks(shape, [&](uint32_t first, uint32_t last) {
    std::vector<std::vector<uint64_t>> scratch(orders.size());
    for (uint32_t rank = first; rank < last; ++rank) {
      Rng rng(Stream(seed, kZipfStream, layer, rank, options.drift.step));
      for (size_t o = 0; o < orders.size(); ++o) scratch[o] = orders[o].initial;
      std::vector<uint32_t>& ids = out.experts[rank];
      ids.resize(shape.tokens_per_rank * k);
      for (uint64_t t = 0; t < shape.tokens_per_rank; ++t) {
        const size_t o = drift.Pick(rng);
        Systematic(rng, orders[o], k, batches, scratch[o], ids.data() + t * k);
      }
    }
  });
  return out;
}

LayerRouting CollapseRouting(const RoutingShape& shape, const CollapseOptions& options,
                             uint64_t seed, uint32_t layer) {
  const uint32_t k = shape.top_k;
  const uint32_t hot = options.hot_experts == 0 ? k : options.hot_experts;
  const DriftState drift(shape.num_experts, seed, layer, options.shuffle_experts, options.drift);
  LayerRouting out = EmptyLayer(shape, layer);
  for (uint32_t rank = 0; rank < shape.ranks; ++rank) {
    Rng rng(Stream(seed, kCollapseStream, layer, rank, options.drift.step));
    std::vector<uint32_t>& ids = out.experts[rank];
    for (uint64_t t = 0; t < shape.tokens_per_rank; ++t) {
      const std::vector<uint32_t>& order = drift.orders[drift.Pick(rng)];
      if (Bernoulli(rng, options.fraction)) {
        const size_t first = ids.size();
        Floyd(rng, hot, k, ids);  // popularity ranks 0..hot-1, then their experts
        for (size_t j = first; j < ids.size(); ++j) ids[j] = order[ids[j]];
      } else {
        Floyd(rng, shape.num_experts, k, ids);
      }
    }
  }
  return out;
}

std::vector<uint64_t> ScaleCounts(std::span<const uint64_t> counts, uint64_t total) {
  unsigned __int128 sum = 0;
  for (uint64_t c : counts) sum += c;
  std::vector<uint64_t> out(counts.size());
  std::vector<unsigned __int128> remainder(counts.size());
  uint64_t given = 0;
  for (size_t e = 0; e < counts.size(); ++e) {
    const unsigned __int128 scaled = static_cast<unsigned __int128>(counts[e]) * total;
    out[e] = static_cast<uint64_t>(scaled / sum);
    remainder[e] = scaled % sum;
    given += out[e];
  }
  std::vector<size_t> ids(counts.size());
  for (size_t e = 0; e < ids.size(); ++e) ids[e] = e;
  std::sort(ids.begin(), ids.end(), [&](size_t a, size_t b) {
    return remainder[a] != remainder[b] ? remainder[a] > remainder[b] : a < b;
  });
  // Fewer than counts.size() units are left (each floor lost less than one).
  for (size_t i = 0; given < total; ++i, ++given) ++out[ids[i]];
  return out;
}

StatusOr<LayerRouting> CountsRouting(const RoutingShape& shape, std::span<const uint64_t> counts,
                                     uint64_t seed, uint32_t layer) {
  const uint32_t k = shape.top_k;
  const uint64_t tokens = uint64_t{shape.ranks} * shape.tokens_per_rank;
  const uint64_t selections = tokens * k;
  if (counts.size() != shape.num_experts) {
    return InputError(Location{}, "counts", std::to_string(counts.size()) + " experts",
                      "the model has " + std::to_string(shape.num_experts) + " experts",
                      "one count per expert");
  }
  uint64_t sum = 0;
  for (uint64_t c : counts) sum += c;
  if (sum == 0 && selections > 0) {
    return InputError(Location{}, "counts", "all 0", "no selections to scale",
                      "at least one count > 0");
  }
  const std::vector<uint64_t> scaled = sum == selections
                                           ? std::vector<uint64_t>(counts.begin(), counts.end())
                                           : ScaleCounts(counts, selections);
  for (uint32_t e = 0; e < shape.num_experts; ++e) {
    if (scaled[e] > tokens) {
      return InputError(
          Location{}, "counts[" + std::to_string(e) + "]",
          std::to_string(counts[e]) +
              (sum == selections ? "" : " (" + std::to_string(scaled[e]) + " scaled)"),
          "more selections than tokens: a token can choose an expert only once",
          "at most " + std::to_string(tokens) + " (the layer's tokens)");
    }
  }

  // Expert ids sorted, dealt round-robin: selection i -> token i mod T, slot i / T. Token t's j-th
  // id is sorted[j * T + t].
  std::vector<uint32_t> sorted;
  sorted.reserve(selections);
  for (uint32_t e = 0; e < shape.num_experts; ++e) sorted.insert(sorted.end(), scaled[e], e);
  std::vector<uint64_t> token_order(tokens);
  for (uint64_t t = 0; t < tokens; ++t) token_order[t] = t;
  Rng rng(Stream(seed, kCountsStream, layer, 0, 0));
  Shuffle(rng, token_order);

  LayerRouting out = EmptyLayer(shape, layer);
  for (uint64_t g = 0; g < tokens; ++g) {
    const uint64_t t = token_order[g];  // the dealt token that becomes global token g
    std::vector<uint32_t>& ids = out.experts[g / shape.tokens_per_rank];
    for (uint32_t j = 0; j < k; ++j) ids.push_back(sorted[j * tokens + t]);
  }
  return out;
}

void CorrelateLayers(std::vector<LayerRouting>& layers, double correlation, uint64_t seed) {
  for (size_t l = 1; l < layers.size(); ++l) {
    const LayerRouting& before = layers[l - 1];
    LayerRouting& now = layers[l];
    const uint32_t k = now.top_k;
    for (size_t rank = 0; rank < now.experts.size(); ++rank) {
      Rng rng(Stream(seed, kCorrelationStream, l, rank, 0));
      std::vector<uint32_t>& ids = now.experts[rank];
      for (uint64_t t = 0; t < now.tokens(static_cast<uint32_t>(rank)); ++t) {
        if (Bernoulli(rng, correlation)) {
          std::copy_n(before.experts[rank].begin() + t * k, k, ids.begin() + t * k);
        }
      }
    }
  }
}

}  // namespace moesim::models
