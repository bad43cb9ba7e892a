#include "sim/flow_links.h"

#include <algorithm>
#include <bit>

namespace moesim::sim {
namespace {

constexpr uint32_t kNone = FlowLinks::kNotConstrained;

// A link on a route: its edge id, share, and where the route first crosses it.
struct Hop {
  uint32_t edge;
  double share;
  uint32_t position;
};

// The route of src -> dst as hops, each link once (shares of a link crossed twice summed), by
// edge id.
void RouteHops(const topology::Cluster& cluster, uint32_t src, uint32_t dst,
               std::vector<Hop>* out) {
  const topology::Graph& g = cluster.graph();
  out->clear();
  cluster.router().ForEachShare(src, dst, [&](topology::Edge e, double s) {
    out->push_back(Hop{g[e].id, s, static_cast<uint32_t>(out->size())});
  });
  std::sort(out->begin(), out->end(), [](const Hop& a, const Hop& b) {
    return a.edge != b.edge ? a.edge < b.edge : a.position < b.position;
  });
  size_t kept = 0;
  for (size_t i = 0; i < out->size(); ++i) {
    if (kept > 0 && (*out)[kept - 1].edge == (*out)[i].edge) {
      (*out)[kept - 1].share += (*out)[i].share;
    } else {
      (*out)[kept++] = (*out)[i];
    }
  }
  out->resize(kept);
}

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
    bandwidth[g[*it].id] = g[*it].bandwidth.per_second();
  }
  return bandwidth;
}

// Groups: links are told apart by count and two independent 64-bit order-free hashes of their
// (transfer, share) sets; within a group the narrowest (lowest id among equals) stands for all.
void GroupLinks(const topology::Cluster& cluster, const Schedule& schedule,
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
    RouteHops(cluster, x.src, x.dst, &hops);
    for (const Hop& hop : hops) {
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
  links->resource.assign(edges, kNone);
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
// listed, sorted, and summed per r.
void LeaveOutImplied(const topology::Cluster& cluster, const Schedule& schedule,
                     const std::vector<uint64_t>& bandwidth, FlowLinks* links) {
  struct Cover {
    uint32_t constraint;  // r
    uint32_t by;          // q(v), or kNone when v crosses no other constraint
    double ratio;         // a_rv / a_qv
    auto operator<=>(const Cover&) const = default;
  };
  std::vector<Cover> covers[2];
  std::vector<Hop> hops;
  std::vector<Hop> constraints;  // the route's constraints, in route order
  for (const Transfer& x : schedule.transfers) {
    if (x.bytes == 0) continue;
    RouteHops(cluster, x.src, x.dst, &hops);
    constraints.clear();
    for (const Hop& hop : hops) {
      const uint32_t r = links->resource[hop.edge];
      // A group's links carry each transfer with the same share: one constraint, counted once.
      if (std::none_of(constraints.begin(), constraints.end(),
                       [&](const Hop& c) { return c.edge == r; })) {
        constraints.push_back(Hop{r, hop.share, hop.position});
      }
    }
    std::sort(constraints.begin(), constraints.end(),
              [](const Hop& a, const Hop& b) { return a.position < b.position; });
    for (size_t i = 0; i < constraints.size(); ++i) {
      const Hop& r = constraints[i];
      if (constraints.size() == 1) {
        covers[0].push_back(Cover{r.edge, kNone, 0});
        covers[1].push_back(Cover{r.edge, kNone, 0});
        continue;
      }
      const Hop& first = constraints[i == 0 ? 1 : 0];
      const Hop& last = constraints[i + 1 == constraints.size() ? i - 1 : constraints.size() - 1];
      covers[0].push_back(Cover{r.edge, first.edge, r.share / first.share});
      covers[1].push_back(Cover{r.edge, last.edge, r.share / last.share});
    }
  }
  for (std::vector<Cover>& list : covers) std::sort(list.begin(), list.end());

  // A constraint another's cover relies on is kept (pinned); decided in id order.
  std::vector<uint8_t> pinned(bandwidth.size(), 0), left_out(bandwidth.size(), 0);
  size_t at[2] = {0, 0};
  std::vector<uint32_t> cover_links;
  for (uint32_t r = 0; r < bandwidth.size(); ++r) {
    if (links->resource[r] != r) continue;
    bool implied = false;
    for (int k = 0; k < 2; ++k) {
      std::vector<Cover>& list = covers[k];
      while (at[k] < list.size() && list[at[k]].constraint < r) ++at[k];
      const size_t begin = at[k];
      size_t end = begin;
      while (end < list.size() && list[end].constraint == r) ++end;
      if (implied || pinned[r]) continue;
      // sum over q of M_q c_q; each q's entries are together, its largest ratio last.
      double sum = 0;
      bool possible = true;
      for (size_t i = begin; i < end && possible; ++i) {
        const uint32_t q = list[i].by;
        if (q == kNone || left_out[q]) possible = false;
        if (possible && (i + 1 == end || list[i + 1].by != q)) {
          sum += list[i].ratio * static_cast<double>(bandwidth[q]);
        }
      }
      if (possible && sum <= static_cast<double>(bandwidth[r]) * (1 + 1e-12)) {
        implied = true;
        for (size_t i = begin; i < end; ++i) pinned[list[i].by] = 1;
      }
    }
    if (implied) {
      left_out[r] = 1;
      ++links->implied;
    }
  }
  for (uint32_t e = 0; e < bandwidth.size(); ++e) {
    if (links->resource[e] != kNone && left_out[links->resource[e]]) links->resource[e] = kNone;
  }
}

}  // namespace

FlowLinks PlanFlowLinks(const topology::Cluster& cluster, const Schedule& schedule) {
  FlowLinks links;
  const std::vector<uint64_t> bandwidth = EdgeBandwidths(cluster);
  GroupLinks(cluster, schedule, bandwidth, &links);
  LeaveOutImplied(cluster, schedule, bandwidth, &links);
  return links;
}

}  // namespace moesim::sim
