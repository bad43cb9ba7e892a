#include "topology/routes.h"

#include <algorithm>
#include <limits>
#include <map>
#include <queue>

namespace moesim::topology {
namespace {

struct Step {
  uint32_t to;
  uint32_t step;  // 2*link + direction
  LinkClass link_class;
  Rate bandwidth;
  Duration latency;
};

// Adjacency of the node template, both directions of every link.
std::vector<std::vector<Step>> Adjacency(const NodeTemplate& node) {
  std::vector<std::vector<Step>> adj(node.devices.size());
  for (uint32_t l = 0; l < node.links.size(); ++l) {
    const auto& e = node.links[l];
    adj[e.a].push_back({e.b, 2 * l, e.link.link_class, e.link.bandwidth, e.link.latency});
    adj[e.b].push_back({e.a, 2 * l + 1, e.link.link_class, e.link.bandwidth, e.link.latency});
  }
  return adj;
}

// Fewest-hop distances from `from` using only steps that `use` accepts; -1 = unreachable.
template <typename Use>
std::vector<int> Bfs(const std::vector<std::vector<Step>>& adj, uint32_t from, Use use) {
  std::vector<int> dist(adj.size(), -1);
  std::queue<uint32_t> q;
  dist[from] = 0;
  q.push(from);
  while (!q.empty()) {
    const uint32_t v = q.front();
    q.pop();
    for (const Step& s : adj[v]) {
      if (use(s) && dist[s.to] < 0) {
        dist[s.to] = dist[v] + 1;
        q.push(s.to);
      }
    }
  }
  return dist;
}

// The fewest-hop paths towards one vertex, for every source at once: the hop distances to it and,
// per vertex, the steps (in adjacency order) that bring a walk one hop closer. Built in O(V + E),
// so enumerating a source's paths costs only their steps, even through a switch of many ports
// (scanning that switch's ports for every GPU pair made a big node's routes cubic).
class PathsTowards {
 public:
  template <typename Use>
  PathsTowards(const std::vector<std::vector<Step>>& adj, uint32_t to, Use use)
      : to_(to), dist_(Bfs(adj, to, use)) {
    offset_.reserve(adj.size() + 1);
    for (uint32_t v = 0; v < adj.size(); ++v) {
      offset_.push_back(static_cast<uint32_t>(closer_.size()));
      if (dist_[v] <= 0) continue;
      for (const Step& s : adj[v]) {
        if (use(s) && dist_[s.to] == dist_[v] - 1) closer_.push_back(&s);
      }
    }
    offset_.push_back(static_cast<uint32_t>(closer_.size()));
  }

  bool Reaches(uint32_t from) const { return dist_[from] >= 0; }

  // Every fewest-hop path from `from` (at most `limit`), as step lists, in the order of a
  // depth-first walk that takes each vertex's steps in adjacency order; `visit(steps)` for each.
  template <typename Visit>
  void ForEachPath(uint32_t from, size_t limit, Visit visit) const {
    if (!Reaches(from)) return;
    std::vector<uint32_t> path;
    size_t found = 0;
    Walk(from, limit, &found, &path, visit);
  }

 private:
  template <typename Visit>
  void Walk(uint32_t v, size_t limit, size_t* found, std::vector<uint32_t>* path,
            Visit& visit) const {
    if (*found >= limit) return;
    if (v == to_) {
      ++*found;
      visit(*path);
      return;
    }
    for (uint32_t i = offset_[v]; i < offset_[v + 1]; ++i) {
      path->push_back(closer_[i]->step);
      Walk(closer_[i]->to, limit, found, path, visit);
      path->pop_back();
    }
  }

  uint32_t to_;
  std::vector<int> dist_;
  std::vector<uint32_t> offset_;
  std::vector<const Step*> closer_;
};

uint64_t Mix(uint64_t a, uint64_t b) {
  uint64_t x = a * 0x9e3779b97f4a7c15ULL ^ (b + 0x7f4a7c15ULL + (a << 6) + (a >> 2));
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ULL;
  return x ^ (x >> 29);
}

}  // namespace

Router::Router(const Graph& graph, const NodeTemplate& node,
               const std::vector<std::vector<Vertex>>& node_vertices,
               std::vector<std::vector<Edge>> node_edges)
    : graph_(graph), node_edges_(std::move(node_edges)) {
  const std::vector<uint32_t> gpus = node.IndicesOf(DeviceKind::kGpu);
  const std::vector<uint32_t> nics = node.IndicesOf(DeviceKind::kNic);
  gpus_per_node_ = static_cast<uint32_t>(gpus.size());
  const uint32_t nodes = static_cast<uint32_t>(node_vertices.size());
  for (uint32_t n = 0; n < nodes; ++n) {
    for (uint32_t g = 0; g < gpus_per_node_; ++g) gpu_node_.push_back(n);
  }
  const auto adj = Adjacency(node);
  auto nvlink = [](const Step& s) { return s.link_class == LinkClass::kNvLink; };
  auto host = [](const Step& s) { return s.link_class != LinkClass::kNvLink; };
  // Paths through NIC or network devices are not paths inside a node.
  auto host_only = [&](const Step& s) {
    return host(s) && node.devices[s.to].kind != DeviceKind::kNic;
  };

  // Inside the node: NVLink if it connects the pair, else PCIe (and CPUs). Paths are found
  // towards one destination GPU for every source at once.
  constexpr size_t kMaxPaths = 64;
  intra_.assign(size_t{gpus_per_node_} * gpus_per_node_, PairPaths{});
  for (uint32_t b = 0; b < gpus_per_node_; ++b) {
    const PathsTowards over_nvlink(adj, gpus[b], nvlink);
    std::optional<PathsTowards> over_host;
    for (uint32_t a = 0; a < gpus_per_node_; ++a) {
      if (a == b) continue;
      const bool nv = over_nvlink.Reaches(gpus[a]);
      if (!nv && !over_host) over_host.emplace(adj, gpus[b], host_only);
      const size_t first = local_paths_.size();
      double total = 0;
      auto keep = [&](const std::vector<uint32_t>& steps) {
        double weight = 1;
        if (nv) {  // stripe in proportion to each path's bottleneck
          uint64_t narrowest = std::numeric_limits<uint64_t>::max();
          for (uint32_t s : steps) {
            narrowest = std::min(narrowest, node.links[s / 2].link.bandwidth.per_second());
          }
          weight = static_cast<double>(narrowest);
        }
        total += weight;
        local_paths_.push_back({local_steps_.size(), static_cast<uint32_t>(steps.size()), weight});
        local_steps_.insert(local_steps_.end(), steps.begin(), steps.end());
      };
      (nv ? over_nvlink : *over_host).ForEachPath(gpus[a], kMaxPaths, keep);
      for (size_t p = first; p < local_paths_.size(); ++p) local_paths_[p].weight /= total;
      intra_[size_t{a} * gpus_per_node_ + b] = {first, local_paths_.size() - first};
    }
  }

  // Each GPU's NIC: fewest PCIe hops; ties go to the NIC serving the fewest GPUs so far.
  nic_number_.assign(node.devices.size(), std::nullopt);
  for (uint32_t k = 0; k < nics.size(); ++k) nic_number_[nics[k]] = k;
  std::vector<uint32_t> served(nics.size(), 0);
  up_.resize(gpus_per_node_);
  nic_of_.assign(gpus_per_node_, std::nullopt);
  for (uint32_t g = 0; g < gpus_per_node_; ++g) {
    const std::vector<int> dist = Bfs(adj, gpus[g], host);
    std::optional<uint32_t> best;
    for (uint32_t k = 0; k < nics.size(); ++k) {
      if (dist[nics[k]] < 0) continue;
      if (!best || dist[nics[k]] < dist[nics[*best]] ||
          (dist[nics[k]] == dist[nics[*best]] && served[k] < served[*best])) {
        best = k;
      }
    }
    if (!best) continue;
    ++served[*best];
    nic_of_[g] = nics[*best];
    PathsTowards(adj, nics[*best], host).ForEachPath(gpus[g], 1, [&](const auto& steps) {
      up_[g] = steps;
    });
  }

  // NIC cabling to the fabric.
  nic_up_.assign(nodes, std::vector<std::optional<Edge>>(nics.size()));
  nic_down_ = nic_up_;
  for (uint32_t n = 0; n < nodes; ++n) {
    for (uint32_t k = 0; k < nics.size(); ++k) {
      const Vertex v = node_vertices[n][nics[k]];
      for (auto [it, end] = boost::out_edges(v, graph_); it != end; ++it) {
        if (graph_[boost::target(*it, graph_)].kind == DeviceKind::kNetworkSwitch)
          nic_up_[n][k] = *it;
      }
      for (auto [it, end] = boost::in_edges(v, graph_); it != end; ++it) {
        if (graph_[boost::source(*it, graph_)].kind == DeviceKind::kNetworkSwitch)
          nic_down_[n][k] = *it;
      }
    }
  }

  // Distances between network switches, towards each first-tier switch.
  switch_slot_.assign(boost::num_vertices(graph_), std::nullopt);
  std::vector<Vertex> switches;
  for (auto [it, end] = boost::vertices(graph_); it != end; ++it) {
    if (graph_[*it].kind == DeviceKind::kNetworkSwitch) {
      switch_slot_[*it] = static_cast<uint32_t>(switches.size());
      switches.push_back(*it);
    }
  }
  edge_by_id_.resize(boost::num_edges(graph_));
  for (auto [it, end] = boost::edges(graph_); it != end; ++it) edge_by_id_[graph_[*it].id] = *it;
  dist_to_.resize(switches.size());
  next_offset_.resize(switches.size());
  next_edge_.resize(switches.size());
  for (uint32_t t = 0; t < switches.size(); ++t) {
    if (graph_[switches[t]].tier != 1) continue;
    std::vector<uint16_t>& dist = dist_to_[t];
    dist.assign(switches.size(), kUnreachable);
    std::queue<Vertex> q;
    dist[t] = 0;
    q.push(switches[t]);
    while (!q.empty()) {
      const Vertex v = q.front();
      q.pop();
      const uint16_t d = dist[*switch_slot_[v]];
      for (auto [it, end] = boost::in_edges(v, graph_); it != end; ++it) {
        const Vertex u = boost::source(*it, graph_);
        if (!switch_slot_[u] || dist[*switch_slot_[u]] != kUnreachable) continue;
        dist[*switch_slot_[u]] = static_cast<uint16_t>(d + 1);
        q.push(u);
      }
    }
    std::vector<uint32_t>& offsets = next_offset_[t];
    std::vector<uint32_t>& edges = next_edge_[t];
    offsets.reserve(switches.size() + 1);
    for (uint32_t s = 0; s < switches.size(); ++s) {
      offsets.push_back(static_cast<uint32_t>(edges.size()));
      if (dist[s] == kUnreachable) continue;
      for (auto [it, end] = boost::out_edges(switches[s], graph_); it != end; ++it) {
        const auto slot = switch_slot_[boost::target(*it, graph_)];
        if (slot && dist[*slot] + 1 == dist[s]) edges.push_back(graph_[*it].id);
      }
    }
    offsets.push_back(static_cast<uint32_t>(edges.size()));
  }
}

void Router::FabricShares(Vertex from, Vertex to, double share,
                          const std::function<void(Edge, double)>& visit) const {
  if (from == to) return;
  // Hop by hop through the shortest-path DAG; the frontier is small (a switch's uplinks), kept
  // sorted by vertex so the visiting order is fixed.
  std::vector<std::pair<Vertex, double>> frontier{{from, share}}, next;
  while (!(frontier.size() == 1 && frontier.front().first == to)) {
    next.clear();
    for (const auto& [v, p] : frontier) {
      const std::span<const uint32_t> hops = NextHops(v, to);
      const double part = p / static_cast<double>(hops.size());
      for (uint32_t id : hops) {
        const Edge e = edge_by_id_[id];
        visit(e, part);
        next.emplace_back(boost::target(e, graph_), part);
      }
    }
    std::sort(next.begin(), next.end(),
              [](const auto& x, const auto& y) { return x.first < y.first; });
    frontier.clear();
    for (const auto& [w, p] : next) {
      if (!frontier.empty() && frontier.back().first == w)
        frontier.back().second += p;
      else
        frontier.emplace_back(w, p);
    }
  }
}

uint32_t Router::FabricHops(Vertex from, Vertex to) const {
  return dist_to_[*switch_slot_[to]][*switch_slot_[from]];
}

void Router::ForEachShare(uint32_t src, uint32_t dst,
                          const std::function<void(Edge, double)>& visit) const {
  if (src == dst) return;
  const uint32_t sn = gpu_node_[src], dn = gpu_node_[dst];
  const uint32_t a = src % gpus_per_node_, b = dst % gpus_per_node_;
  if (sn == dn) {
    for (const LocalPath& p : PathsBetween(a, b)) {
      for (uint32_t step : StepsOf(p)) visit(EdgeOf(sn, step), p.weight);
    }
    return;
  }
  const uint32_t nic_a = *nic_number_[*nic_of_[a]], nic_b = *nic_number_[*nic_of_[b]];
  for (uint32_t step : up_[a]) visit(EdgeOf(sn, step), 1.0);
  const Edge out = *nic_up_[sn][nic_a];
  const Edge in = *nic_down_[dn][nic_b];
  visit(out, 1.0);
  FabricShares(boost::target(out, graph_), boost::source(in, graph_), 1.0, visit);
  visit(in, 1.0);
  for (auto it = up_[b].rbegin(); it != up_[b].rend(); ++it) visit(EdgeOf(dn, *it ^ 1u), 1.0);
}

std::optional<Router::FabricLeg> Router::AppendLocalShares(
    uint32_t src, uint32_t dst, std::vector<std::pair<uint32_t, double>>* out) const {
  if (src == dst) return std::nullopt;
  const uint32_t sn = gpu_node_[src], dn = gpu_node_[dst];
  const uint32_t a = src % gpus_per_node_, b = dst % gpus_per_node_;
  auto add = [&](Edge e, double share) { out->emplace_back(graph_[e].id, share); };
  if (sn == dn) {  // as ForEachShare
    for (const LocalPath& p : PathsBetween(a, b)) {
      for (uint32_t step : StepsOf(p)) add(EdgeOf(sn, step), p.weight);
    }
    return std::nullopt;
  }
  const uint32_t nic_a = *nic_number_[*nic_of_[a]], nic_b = *nic_number_[*nic_of_[b]];
  for (uint32_t step : up_[a]) add(EdgeOf(sn, step), 1.0);
  const Edge out_edge = *nic_up_[sn][nic_a];
  const Edge in_edge = *nic_down_[dn][nic_b];
  add(out_edge, 1.0);
  add(in_edge, 1.0);
  for (auto it = up_[b].rbegin(); it != up_[b].rend(); ++it) add(EdgeOf(dn, *it ^ 1u), 1.0);
  const Vertex from = boost::target(out_edge, graph_), to = boost::source(in_edge, graph_);
  if (from == to) return std::nullopt;
  return FabricLeg{from, to};
}

void Router::ForEachFabricShare(FabricLeg leg,
                                const std::function<void(Edge, double)>& visit) const {
  FabricShares(leg.from, leg.to, 1.0, visit);
}

void Router::SamplePath(uint32_t src, uint32_t dst, uint64_t flow, std::vector<Edge>* path) const {
  path->clear();
  if (src == dst) return;
  const uint64_t key = Mix(Mix(flow, src), dst);
  const uint32_t sn = gpu_node_[src], dn = gpu_node_[dst];
  const uint32_t a = src % gpus_per_node_, b = dst % gpus_per_node_;
  if (sn == dn) {
    const std::span<const LocalPath> paths = PathsBetween(a, b);
    const double u = static_cast<double>(key >> 11) / static_cast<double>(1ULL << 53);
    double cumulative = 0;
    const LocalPath* chosen = &paths.back();
    for (const LocalPath& p : paths) {
      cumulative += p.weight;
      if (u < cumulative) {
        chosen = &p;
        break;
      }
    }
    for (uint32_t step : StepsOf(*chosen)) path->push_back(EdgeOf(sn, step));
    return;
  }
  const uint32_t nic_a = *nic_number_[*nic_of_[a]], nic_b = *nic_number_[*nic_of_[b]];
  for (uint32_t step : up_[a]) path->push_back(EdgeOf(sn, step));
  const Edge out = *nic_up_[sn][nic_a];
  const Edge in = *nic_down_[dn][nic_b];
  path->push_back(out);
  const Vertex to = boost::source(in, graph_);
  for (Vertex v = boost::target(out, graph_); v != to;) {
    const std::span<const uint32_t> hops = NextHops(v, to);
    const Edge e = edge_by_id_[hops[Mix(key, v) % hops.size()]];
    path->push_back(e);
    v = boost::target(e, graph_);
  }
  path->push_back(in);
  for (auto it = up_[b].rbegin(); it != up_[b].rend(); ++it) path->push_back(EdgeOf(dn, *it ^ 1u));
}

uint32_t Router::Hops(uint32_t src, uint32_t dst) const {
  if (src == dst) return 0;
  const uint32_t sn = gpu_node_[src], dn = gpu_node_[dst];
  const uint32_t a = src % gpus_per_node_, b = dst % gpus_per_node_;
  if (sn == dn) return PathsBetween(a, b).front().step_count;
  const Edge out = *nic_up_[sn][*nic_number_[*nic_of_[a]]];
  const Edge in = *nic_down_[dn][*nic_number_[*nic_of_[b]]];
  return static_cast<uint32_t>(up_[a].size() + up_[b].size()) + 2 +
         FabricHops(boost::target(out, graph_), boost::source(in, graph_));
}

uint64_t Router::PathCount(uint32_t src, uint32_t dst) const {
  if (src == dst) return 0;
  const uint32_t sn = gpu_node_[src], dn = gpu_node_[dst];
  const uint32_t a = src % gpus_per_node_, b = dst % gpus_per_node_;
  if (sn == dn) return PathsBetween(a, b).size();
  const Vertex from = boost::target(*nic_up_[sn][*nic_number_[*nic_of_[a]]], graph_);
  const Vertex to = boost::source(*nic_down_[dn][*nic_number_[*nic_of_[b]]], graph_);
  if (from == to) return 1;
  // Count shortest paths hop by hop through the distance DAG.
  std::map<Vertex, uint64_t> frontier{{from, 1}};
  while (!(frontier.size() == 1 && frontier.begin()->first == to)) {
    std::map<Vertex, uint64_t> next;
    for (const auto& [v, count] : frontier) {
      for (uint32_t id : NextHops(v, to)) next[boost::target(edge_by_id_[id], graph_)] += count;
    }
    frontier = std::move(next);
  }
  return frontier.begin()->second;
}

Rate Router::Bottleneck(uint32_t src, uint32_t dst) const {
  std::map<Edge, double> share;
  ForEachShare(src, dst, [&](Edge e, double s) { share[e] += s; });
  double best = std::numeric_limits<double>::infinity();
  for (const auto& [e, s] : share) {
    best = std::min(best, static_cast<double>(graph_[e].bandwidth.per_second()) / s);
  }
  return share.empty() ? Rate() : Rate::PerSecond(static_cast<uint64_t>(best));
}

Duration Router::Latency(uint32_t src, uint32_t dst) const {
  // Every path of a route has the same links up to the fabric and the same number of fabric hops;
  // the fabric builders give every switch link of a fabric the same latency, so one sampled path
  // has the route's latency.
  std::vector<Edge> path;
  SamplePath(src, dst, 0, &path);
  Duration total;
  for (const Edge& e : path) total += graph_[e].latency;
  return total;
}

std::optional<std::pair<uint32_t, uint32_t>> Router::FindUnreachable() const {
  for (uint32_t a = 0; a < gpus_per_node_; ++a) {
    for (uint32_t b = 0; b < gpus_per_node_; ++b) {
      if (a != b && PathsBetween(a, b).empty()) return std::pair{a, b};
    }
  }
  const uint32_t nodes = static_cast<uint32_t>(node_edges_.size());
  if (nodes <= 1) return std::nullopt;
  for (uint32_t g = 0; g < gpus_per_node_; ++g) {
    if (!nic_of_[g]) return std::pair{g, gpus_per_node_ + g};
  }
  // Every cabled first-tier switch must reach every other.
  std::vector<std::pair<Vertex, uint32_t>> attach;  // (switch, a GPU behind it)
  for (uint32_t n = 0; n < nodes; ++n) {
    for (uint32_t g = 0; g < gpus_per_node_; ++g) {
      const auto& up = nic_up_[n][*nic_number_[*nic_of_[g]]];
      const auto& down = nic_down_[n][*nic_number_[*nic_of_[g]]];
      if (!up || !down)
        return std::pair{n * gpus_per_node_ + g, ((n + 1) % nodes) * gpus_per_node_};
      attach.emplace_back(boost::target(*up, graph_), n * gpus_per_node_ + g);
    }
  }
  std::sort(attach.begin(), attach.end());
  attach.erase(std::unique(attach.begin(), attach.end(),
                           [](const auto& x, const auto& y) { return x.first == y.first; }),
               attach.end());
  for (const auto& [s, gs] : attach) {
    for (const auto& [t, gt] : attach) {
      if (dist_to_[*switch_slot_[t]][*switch_slot_[s]] == kUnreachable) return std::pair{gs, gt};
    }
  }
  return std::nullopt;
}

}  // namespace moesim::topology
