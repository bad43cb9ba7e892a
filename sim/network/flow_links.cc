#include "sim/network/flow_links.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "topology/fabric_legs.h"

namespace moesim::sim {
namespace {

constexpr uint32_t kUnconstrained = FlowLinks::kNotConstrained;

// A link on a route: its edge id, share, and where the route first crosses it.
struct Hop {
  uint32_t edge;
  double share;
  uint32_t position;
};

// Routes as hops, each link once (shares of a link crossed twice summed), in route order: the links
// outside the switch fabric from the router per transfer, each fabric leg's from
// topology/fabric_legs.h (walked once per leg). A leg's links are distinct from the local ones and
// from each other (a leg is a set of shortest paths between two switches).
class RouteWalker {
 public:
  explicit RouteWalker(const topology::Cluster& cluster)
      : cluster_(cluster), legs_(cluster.graph(), cluster.router()) {
    const topology::Graph& g = cluster.graph();
    target_.resize(boost::num_edges(g));
    for (auto [it, end] = boost::edges(g); it != end; ++it) {
      target_[g[*it].id] = boost::target(*it, g);
    }
  }

  void Hops(uint32_t src, uint32_t dst, std::vector<Hop>* out) {
    local_.clear();
    out->clear();
    const auto leg = cluster_.router().AppendLocalShares(src, dst, &local_);
    bool crossed = !leg.has_value();
    for (const auto& [edge, share] : local_) {
      Add(edge, share, out);
      // The fabric leg goes after the link into the switch it starts from.
      if (!crossed && target_[edge] == leg->from) {
        AddLeg(*leg, out);
        crossed = true;
      }
    }
    if (!crossed) AddLeg(*leg, out);  // not after a local link (never, on the fabrics built)
  }

 private:
  static uint32_t Position(const std::vector<Hop>& hops) {
    return static_cast<uint32_t>(hops.size());
  }
  // Local links are few: a repeat is found by scanning.
  static void Add(uint32_t edge, double share, std::vector<Hop>* out) {
    for (Hop& hop : *out) {
      if (hop.edge == edge) {
        hop.share += share;
        return;
      }
    }
    out->push_back(Hop{edge, share, Position(*out)});
  }
  void AddLeg(topology::Router::FabricLeg leg, std::vector<Hop>* out) {
    for (const auto& [edge, share] : legs_.links(legs_.IndexOf(leg))) {
      out->push_back(Hop{edge, share, Position(*out)});
    }
  }

  const topology::Cluster& cluster_;
  topology::FabricLegLinks legs_;
  std::vector<topology::Vertex> target_;  // per edge id
  std::vector<std::pair<uint32_t, double>> local_;
};

// SplitMix64's finalizer (Steele, Lea, Flood 2014).
uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::vector<uint64_t> EdgeBandwidths(const topology::Cluster& cluster) {
  const topology::Graph& g = cluster.graph();
  std::vector<uint64_t> bandwidth(boost::num_edges(g));
  for (auto [it, end] = boost::edges(g); it != end; ++it) {
    bandwidth[g[*it].id] = g[*it].achieved.per_second();
  }
  return bandwidth;
}

// Groups: links are told apart by count and two independent 64-bit order-free hashes of their
// (transfer, share) sets; within a group the narrowest (lowest id among equals) stands for all.
// Also sums each link's bytes.
void GroupLinks(RouteWalker& walker, const Schedule& schedule,
                const std::vector<uint64_t>& bandwidth, FlowLinks* links) {
  struct Signature {
    uint64_t a = 0, b = 0;
    uint32_t count = 0;
    auto operator<=>(const Signature&) const = default;
  };
  const size_t edges = bandwidth.size();
  std::vector<Signature> signature(edges);
  std::vector<Hop> hops;
  for (uint32_t t = 0; t < schedule.transfers.size(); ++t) {
    const Transfer& x = schedule.transfers[t];
    if (x.bytes == 0) continue;  // never a flow
    walker.Hops(x.src, x.dst, &hops);
    for (const Hop& hop : hops) {
      links->link_bytes[hop.edge] += hop.share * static_cast<double>(x.bytes);
      const uint64_t key = (uint64_t{t} << 32) ^ std::bit_cast<uint64_t>(hop.share);
      signature[hop.edge].a += Mix(key ^ 0x5851F42D4C957F2DULL);
      signature[hop.edge].b += Mix(Mix(key) ^ 0x14057B7EF767814FULL);
      ++signature[hop.edge].count;
    }
  }
  std::vector<uint32_t> used;
  for (uint32_t e = 0; e < edges; ++e) {
    if (signature[e].count > 0) used.push_back(e);
  }
  std::sort(used.begin(), used.end(), [&](uint32_t x, uint32_t y) {
    if (signature[x] != signature[y]) return signature[x] < signature[y];
    if (bandwidth[x] != bandwidth[y]) return bandwidth[x] < bandwidth[y];
    return x < y;
  });
  links->resource.assign(edges, kUnconstrained);
  for (size_t i = 0; i < used.size(); ++i) {
    const bool same = i > 0 && signature[used[i]] == signature[used[i - 1]];
    links->resource[used[i]] = same ? links->resource[used[i - 1]] : used[i];
    if (same) {
      ++links->grouped;
    } else {
      ++links->constraints;
    }
  }
}

// Leaves out the constraints implied by others (see IMPLIED in flow_links.h). For each way of
// choosing q(v) (0: first other constraint on the route, 1: last), every (r, q, a_rv / a_qv) is
// listed, bucketed by r, and summed per r. Then lists each transfer's constraints.
void LeaveOutImplied(RouteWalker& walker, const Schedule& schedule,
                     const std::vector<uint64_t>& bandwidth, FlowLinks* links) {
  struct Cover {
    uint32_t constraint;  // r
    uint32_t by;          // q(v), or kUnconstrained when v crosses no other constraint
    double ratio;         // a_rv / a_qv
  };
  std::vector<Cover> covers[2];
  std::vector<Hop> hops;
  std::vector<Hop> constraints;  // the route's constraints, in route order
  links->use_first.assign(schedule.transfers.size() + 1, 0);
  links->uses.clear();
  for (uint32_t t = 0; t < schedule.transfers.size(); ++t) {
    const Transfer& x = schedule.transfers[t];
    links->use_first[t] = static_cast<uint32_t>(links->uses.size());
    if (x.bytes == 0) continue;
    walker.Hops(x.src, x.dst, &hops);
    constraints.clear();
    for (const Hop& hop : hops) {
      const uint32_t r = links->resource[hop.edge];
      // A group's links carry each transfer with the same share: one constraint, counted once.
      if (std::none_of(constraints.begin(), constraints.end(),
                       [&](const Hop& c) { return c.edge == r; })) {
        constraints.push_back(Hop{r, hop.share, hop.position});
      }
    }
    const size_t first_use = links->uses.size();
    for (const Hop& c : constraints) links->uses.emplace_back(c.edge, c.share);
    std::sort(links->uses.begin() + first_use, links->uses.end());
    for (size_t i = 0; i < constraints.size(); ++i) {
      const Hop& r = constraints[i];
      if (constraints.size() == 1) {
        covers[0].push_back(Cover{r.edge, kUnconstrained, 0});
        covers[1].push_back(Cover{r.edge, kUnconstrained, 0});
        continue;
      }
      const Hop& first = constraints[i == 0 ? 1 : 0];
      const Hop& last = constraints[i + 1 == constraints.size() ? i - 1 : constraints.size() - 1];
      covers[0].push_back(Cover{r.edge, first.edge, r.share / first.share});
      covers[1].push_back(Cover{r.edge, last.edge, r.share / last.share});
    }
  }
  links->use_first.back() = static_cast<uint32_t>(links->uses.size());
  // Each list by constraint, keeping transfer order within one (a counting sort: the lists hold a
  // few entries per transfer, and comparison sorts of them took most of this pass).
  std::vector<uint32_t> bucket_first[2];
  for (int k = 0; k < 2; ++k) {
    std::vector<uint32_t>& first = bucket_first[k];
    first.assign(bandwidth.size() + 1, 0);
    for (const Cover& c : covers[k]) ++first[c.constraint + 1];
    for (size_t r = 0; r < bandwidth.size(); ++r) first[r + 1] += first[r];
    std::vector<Cover> sorted(covers[k].size());
    std::vector<uint32_t> next(first.begin(), first.end() - 1);
    for (const Cover& c : covers[k]) sorted[next[c.constraint]++] = c;
    covers[k] = std::move(sorted);
  }

  // A constraint another's cover relies on is kept (pinned); decided in id order. Per candidate r,
  // M_q is gathered over r's entries with a stamp per q, and summed in order of first appearance.
  std::vector<uint8_t> pinned(bandwidth.size(), 0), left_out(bandwidth.size(), 0);
  std::vector<uint32_t> stamp(bandwidth.size(), kUnconstrained), cover;
  std::vector<double> largest(bandwidth.size(), 0);
  for (uint32_t r = 0; r < bandwidth.size(); ++r) {
    if (links->resource[r] != r || pinned[r]) continue;
    for (int k = 0; k < 2 && !left_out[r]; ++k) {
      const uint32_t begin = bucket_first[k][r], end = bucket_first[k][r + 1];
      bool possible = true;
      cover.clear();
      for (uint32_t i = begin; i < end && possible; ++i) {
        const Cover& c = covers[k][i];
        if (c.by == kUnconstrained || left_out[c.by]) {
          possible = false;
        } else if (stamp[c.by] != 2 * r + k) {
          stamp[c.by] = 2 * r + k;
          largest[c.by] = c.ratio;
          cover.push_back(c.by);
        } else {
          largest[c.by] = std::max(largest[c.by], c.ratio);
        }
      }
      if (!possible) continue;
      double sum = 0;  // sum over q of M_q c_q
      for (const uint32_t q : cover) sum += largest[q] * static_cast<double>(bandwidth[q]);
      if (sum <= static_cast<double>(bandwidth[r]) * (1 + 1e-12)) {
        left_out[r] = 1;
        ++links->implied;
        for (const uint32_t q : cover) pinned[q] = 1;
      }
    }
  }
  for (uint32_t e = 0; e < bandwidth.size(); ++e) {
    if (links->resource[e] != kUnconstrained && left_out[links->resource[e]])
      links->resource[e] = kUnconstrained;
  }
  size_t kept = 0;
  for (size_t t = 0; t + 1 < links->use_first.size(); ++t) {
    const uint32_t begin = links->use_first[t], end = links->use_first[t + 1];
    links->use_first[t] = static_cast<uint32_t>(kept);
    for (uint32_t u = begin; u < end; ++u) {
      if (!left_out[links->uses[u].first]) links->uses[kept++] = links->uses[u];
    }
  }
  links->use_first.back() = static_cast<uint32_t>(kept);
  links->uses.resize(kept);
}

}  // namespace

FlowLinks PlanFlowLinks(const topology::Cluster& cluster, const Schedule& schedule) {
  FlowLinks links;
  const std::vector<uint64_t> bandwidth = EdgeBandwidths(cluster);
  links.link_bytes.assign(bandwidth.size(), 0.0);
  RouteWalker walker(cluster);
  GroupLinks(walker, schedule, bandwidth, &links);
  LeaveOutImplied(walker, schedule, bandwidth, &links);
  return links;
}

}  // namespace moesim::sim
