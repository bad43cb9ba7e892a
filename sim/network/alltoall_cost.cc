#include "sim/network/alltoall_cost.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "sim/network/flow_model.h"
#include "topology/fabric_legs.h"

namespace moesim::sim {
namespace {

using models::TrafficMatrix;

// The `count` links that take longest to drain their bytes (ties: graph order).
std::vector<std::pair<topology::Edge, double>> Busiest(const topology::Graph& g,
                                                       const std::vector<double>& edge_bytes,
                                                       size_t count) {
  std::vector<std::pair<topology::Edge, double>> links;
  for (auto [it, end] = boost::edges(g); it != end; ++it) {
    if (edge_bytes[g[*it].id] > 0) links.emplace_back(*it, edge_bytes[g[*it].id]);
  }
  auto drain = [&](const std::pair<topology::Edge, double>& l) {
    return l.second / static_cast<double>(g[l.first].achieved.per_second());
  };
  std::stable_sort(links.begin(), links.end(),
                   [&](const auto& a, const auto& b) { return drain(a) > drain(b); });
  if (links.size() > count) links.resize(count);
  return links;
}

// Sums per-edge bytes by link class.
std::map<std::string, double> ByClass(const topology::Graph& g,
                                      const std::vector<double>& edge_bytes) {
  std::map<std::string, double> out;
  for (auto [it, end] = boost::edges(g); it != end; ++it) {
    if (edge_bytes[g[*it].id] > 0)
      out[std::string(topology::ToString(g[*it].link_class))] += edge_bytes[g[*it].id];
  }
  return out;
}

// The fabric legs of an all-to-all's routes, their links listed once per leg
// (topology/fabric_legs.h), with what this model needs of each: the bytes crossing it, its slowest
// link, its part of a route's latency.
class FabricLegs {
 public:
  struct Leg {
    // Bytes of all the pairs crossing the leg.
    uint64_t bytes = 0;
    // The slowest of its links to drain, once the loads are known.
    Duration worst_drain;
    // The leg's part of a route's latency, once known.
    std::optional<Duration> latency;
  };

  FabricLegs(const topology::Graph& graph, const topology::Router& router)
      : links_(graph, router) {}

  // The leg's index; a leg seen for the first time joins exponent().
  uint32_t IndexOf(topology::Router::FabricLeg leg) {
    const uint32_t index = links_.IndexOf(leg);
    if (index < legs_.size()) return index;
    legs_.emplace_back();
    for (const auto& [id, share] : links_.links(index)) {
      if (!exponent_) break;
      int m = 0;  // the least m with share x 2^m whole
      while (m <= 52 && std::ldexp(share, m) != std::floor(std::ldexp(share, m))) ++m;
      exponent_ = m <= 52 ? std::optional<int>(std::max(*exponent_, m)) : std::nullopt;
    }
    return index;
  }
  // The leg's links as (link id, share), in the router's order.
  const std::vector<std::pair<uint32_t, double>>& shares(uint32_t index) const {
    return links_.links(index);
  }
  // The least m such that every share of every leg seen is a multiple of 2^-m (1/32: 5), or none
  // when some share is not a multiple of 2^-52 (a third, say).
  std::optional<int> exponent() const { return exponent_; }
  Leg& operator[](uint32_t index) { return legs_[index]; }
  uint32_t size() const { return static_cast<uint32_t>(legs_.size()); }

 private:
  topology::FabricLegLinks links_;
  std::vector<Leg> legs_;
  std::optional<int> exponent_ = 0;
};

}  // namespace

// Two passes over the matrix's cells, row by row (pairs with no bytes, or on the diagonal, are
// skipped). The first lays each pair's bytes on its route's links, in the order ForEachShare
// visits them, so every link's load is summed in the same order as one ForEachShare per pair
// would; the second, once the links' drain times are known, finds the busiest link and the longest
// route latency of each rank's transfers. The work is the matrix's cells times the links outside
// the fabric, plus each fabric leg's links once.
//
// Fabric links take no bytes from links outside the fabric, so their loads can be summed on their
// own. When every leg's shares are multiples of 2^-m (ECMP over 2, 4, ... 32 spines) and all the
// bytes B moved satisfy B 2^m < 2^53, every product bytes x share and every partial sum is a
// multiple of 2^-m below 2^(53-m): exact in a double, so the sum does not depend on its order, and
// each leg's bytes are added once (its total x share) instead of once per pair. Otherwise (a third
// of the traffic to each of 3 spines, say) each pair is laid on the leg's links in matrix order.
AllToAll AllToAllCosts(const topology::Cluster& cluster, const TrafficMatrix& tokens,
                       Bytes token_bytes) {
  const topology::Graph& g = cluster.graph();
  const topology::Router& router = cluster.router();
  const uint32_t n = tokens.ranks();
  std::vector<double> load(boost::num_edges(g), 0.0);
  std::vector<uint64_t> sent(n, 0), received(n, 0);  // tokens, off the diagonal
  FabricLegs legs(g, router);
  std::vector<std::optional<uint32_t>> pair_leg;   // per pair with bytes, in matrix order
  std::vector<std::pair<uint32_t, double>> local;  // one route's links outside the fabric
  for (uint32_t i = 0; i < n; ++i) {
    for (const TrafficMatrix::Cell& cell : tokens.row(i)) {
      const uint32_t j = cell.dst;
      if (i == j || cell.count == 0) continue;
      sent[i] += cell.count;
      received[j] += cell.count;
      const double bytes = static_cast<double>(cell.count * token_bytes.value);
      local.clear();
      const auto leg = router.AppendLocalShares(i, j, &local);
      for (const auto& [id, share] : local) load[id] += bytes * share;
      std::optional<uint32_t>& l = pair_leg.emplace_back();
      if (leg) {
        l = legs.IndexOf(*leg);
        legs[*l].bytes += cell.count * token_bytes.value;
      }
    }
  }
  const uint64_t moved = tokens.OffDiagonal() * token_bytes.value;
  const std::optional<int> m = legs.exponent();
  if (m && moved < (uint64_t{1} << (53 - *m))) {
    for (uint32_t l = 0; l < legs.size(); ++l) {
      for (const auto& [id, share] : legs.shares(l)) {
        load[id] += static_cast<double>(legs[l].bytes) * share;
      }
    }
  } else {
    size_t p = 0;
    for (uint32_t i = 0; i < n; ++i) {
      for (const TrafficMatrix::Cell& cell : tokens.row(i)) {
        if (i == cell.dst || cell.count == 0) continue;
        const double bytes = static_cast<double>(cell.count * token_bytes.value);
        if (const std::optional<uint32_t> l = pair_leg[p++]) {
          for (const auto& [id, share] : legs.shares(*l)) load[id] += bytes * share;
        }
      }
    }
  }
  std::vector<Duration> drain(load.size()), link_latency(load.size());
  AllToAll result;
  result.class_bytes = ByClass(g, load);
  result.busiest = Busiest(g, load, 5);
  Duration slowest;
  for (auto [it, end] = boost::edges(g); it != end; ++it) {
    link_latency[g[*it].id] = g[*it].latency;
    const double bytes = load[g[*it].id];
    if (bytes <= 0) continue;
    const Duration t =
        TransferTime(Bytes{static_cast<uint64_t>(std::ceil(bytes))}, g[*it].achieved);
    drain[g[*it].id] = t;
    if (t > slowest) {  // the first edge (in graph order) among equals
      slowest = t;
      result.bottleneck_link =
          g[boost::source(*it, g)].name + " -> " + g[boost::target(*it, g)].name;
    }
  }
  for (uint32_t l = 0; l < legs.size(); ++l) {
    for (const auto& [id, share] : legs.shares(l))
      legs[l].worst_drain = std::max(legs[l].worst_drain, drain[id]);
  }
  // Each rank: the busiest link its transfers (sent or received) cross, and their longest route.
  // A route's latency is Cluster::RouteLatency's: inside a node, that of one sampled path; across
  // nodes, its links outside the fabric plus the leg's, which is the same for every route of the
  // leg (the fabric builders give every switch-to-switch link of a fabric the same latency), plus
  // the transport's net_latency.
  std::vector<Duration> busiest(n), latency(n);
  size_t p = 0;
  for (uint32_t i = 0; i < n; ++i) {
    for (const TrafficMatrix::Cell& cell : tokens.row(i)) {
      const uint32_t j = cell.dst;
      if (i == j || cell.count == 0) continue;
      local.clear();
      router.AppendLocalShares(i, j, &local);
      Duration worst, local_latency;
      for (const auto& [id, share] : local) {
        worst = std::max(worst, drain[id]);
        local_latency += link_latency[id];
      }
      Duration route;
      if (const std::optional<uint32_t> l = pair_leg[p++]) {
        FabricLegs::Leg& leg = legs[*l];
        worst = std::max(worst, leg.worst_drain);
        if (!leg.latency) leg.latency = router.Latency(i, j) - local_latency;
        route = local_latency + *leg.latency + cluster.net_latency();
      } else {
        route = router.NodeOf(i) == router.NodeOf(j) ? router.Latency(i, j)
                                                     : local_latency + cluster.net_latency();
      }
      for (const uint32_t r : {i, j}) {
        busiest[r] = std::max(busiest[r], worst);
        latency[r] = std::max(latency[r], route);
      }
    }
  }
  std::vector<RankCost>& costs = result.ranks;
  costs.resize(n);
  for (uint32_t r = 0; r < n; ++r) {
    if (sent[r] == 0 && received[r] == 0) continue;
    const Bytes moved{std::max(sent[r], received[r]) * token_bytes.value};
    costs[r] = RankCost{busiest[r] + latency[r], moved, 0, "link"};
  }
  return result;
}

namespace {

// A rank's share of a schedule's transfers: what it sends and what it receives, the larger one.
void ScheduleRankBytes(const Schedule& schedule, AllToAll& result) {
  std::vector<uint64_t> sent(schedule.ranks, 0), received(schedule.ranks, 0);
  for (const Transfer& x : schedule.transfers) {
    sent[x.src] += x.bytes;
    received[x.dst] += x.bytes;
  }
  for (uint32_t r = 0; r < schedule.ranks; ++r)
    result.ranks[r].bytes = Bytes{std::max(sent[r], received[r])};
}

}  // namespace

// The same all-to-all on the flow model: each rank's time is when the last flow it sends or
// receives is done.
AllToAll AllToAllFlows(const topology::Cluster& cluster, const TrafficMatrix& tokens,
                       Bytes token_bytes, FlowOptions options) {
  const uint32_t n = tokens.ranks();
  const TrafficMatrix bytes = tokens.Scaled(token_bytes.value);
  AllToAll result;
  result.ranks.resize(n);
  const StatusOr<Schedule> schedule = BuildAllToAllV(bytes, CollectiveAlgo::kDirect);
  const FlowRun run = RunFlows(cluster, *schedule, std::nullopt, std::nullopt, options);
  for (uint32_t t = 0; t < schedule->transfers.size(); ++t) {
    const Transfer& x = schedule->transfers[t];
    for (uint32_t r : {x.src, x.dst}) {
      RankCost& c = result.ranks[r];
      c.time = std::max(c.time, run.finish[t]);
      c.bound = "link";
    }
  }
  const std::vector<uint64_t> received = tokens.ReceivedOffRanks();
  for (uint32_t r = 0; r < n; ++r) {
    result.ranks[r].bytes = Bytes{std::max(tokens.SentOffRank(r), received[r]) * token_bytes.value};
  }
  result.bottleneck_link = run.bottleneck_link;
  result.class_bytes = ByClass(cluster.graph(), run.link_bytes);
  result.busiest = Busiest(cluster.graph(), run.link_bytes, 5);
  return result;
}

// A schedule with relays (the hierarchical all-to-all) at the analytical fidelity. As for the
// direct all-to-all, every transfer's bytes are laid on its route's links, all steps together, and
// a rank waits for the busiest link any of its transfers crosses; its latency is the longest chain
// of route latencies (a transfer's own after those it waits for; a stream's next chunk after the
// one before has left, that one's chain less its own route) among its transfers. All steps share
// the links at once: the relay forwards as bytes arrive, as DeepEP pipelines chunks through it;
// the flow model forwards whole messages or chunks, so it is never below this.
AllToAll ScheduleCosts(const topology::Cluster& cluster, const Schedule& schedule) {
  const topology::Graph& g = cluster.graph();
  const topology::Router& router = cluster.router();
  std::vector<double> load(boost::num_edges(g), 0.0);
  for (const Transfer& x : schedule.transfers) {
    router.ForEachShare(x.src, x.dst, [&](topology::Edge e, double share) {
      load[g[e].id] += static_cast<double>(x.bytes) * share;
    });
  }
  AllToAll result;
  result.class_bytes = ByClass(g, load);
  result.busiest = Busiest(g, load, 5);
  std::vector<Duration> drain(load.size());
  Duration slowest;
  for (auto [it, end] = boost::edges(g); it != end; ++it) {
    const double bytes = load[g[*it].id];
    if (bytes <= 0) continue;
    drain[g[*it].id] =
        TransferTime(Bytes{static_cast<uint64_t>(std::ceil(bytes))}, g[*it].achieved);
    if (drain[g[*it].id] > slowest) {  // the first edge (in graph order) among equals
      slowest = drain[g[*it].id];
      result.bottleneck_link =
          g[boost::source(*it, g)].name + " -> " + g[boost::target(*it, g)].name;
    }
  }
  const uint32_t n = schedule.ranks;
  std::vector<Duration> busiest(n), latency(n), chain(schedule.transfers.size());
  for (uint32_t t = 0; t < schedule.transfers.size(); ++t) {
    const Transfer& x = schedule.transfers[t];
    Duration worst;
    router.ForEachShare(x.src, x.dst,
                        [&](topology::Edge e, double) { worst = std::max(worst, drain[g[e].id]); });
    for (uint32_t u : x.after) chain[t] = std::max(chain[t], chain[u]);
    // A stream's next chunk leaves when the one before has left: its arrival less its route.
    for (uint32_t u : x.after_sent) {
      const Transfer& before = schedule.transfers[u];
      chain[t] = std::max(chain[t], chain[u] - cluster.RouteLatency(before.src, before.dst));
    }
    chain[t] += cluster.RouteLatency(x.src, x.dst);
    for (const uint32_t r : {x.src, x.dst}) {
      busiest[r] = std::max(busiest[r], worst);
      latency[r] = std::max(latency[r], chain[t]);
    }
  }
  result.ranks.resize(n);
  for (uint32_t r = 0; r < n; ++r) {
    if (busiest[r] == Duration() && latency[r] == Duration()) continue;
    result.ranks[r].time = busiest[r] + latency[r];
    result.ranks[r].bound = "link";
  }
  ScheduleRankBytes(schedule, result);
  return result;
}

// The same schedule on the flow model: each rank's time is when the last transfer it sends or
// receives is done.
AllToAll ScheduleFlows(const topology::Cluster& cluster, const Schedule& schedule,
                       FlowOptions options) {
  const FlowRun run = RunFlows(cluster, schedule, std::nullopt, std::nullopt, options);
  AllToAll result;
  result.ranks.resize(schedule.ranks);
  for (uint32_t t = 0; t < schedule.transfers.size(); ++t) {
    const Transfer& x = schedule.transfers[t];
    for (uint32_t r : {x.src, x.dst}) {
      RankCost& c = result.ranks[r];
      c.time = std::max(c.time, run.finish[t]);
      c.bound = "link";
    }
  }
  ScheduleRankBytes(schedule, result);
  result.bottleneck_link = run.bottleneck_link;
  result.class_bytes = ByClass(cluster.graph(), run.link_bytes);
  result.busiest = Busiest(cluster.graph(), run.link_bytes, 5);
  return result;
}

}  // namespace moesim::sim
