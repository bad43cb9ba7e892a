#include "sim/moe_layer.h"


#include <algorithm>
#include <cmath>
#include <map>

#include "models/model_spec.h"
#include "models/send_matrices.h"
#include "sim/collectives.h"
#include "sim/compute_model.h"
#include "sim/flow_model.h"

namespace moesim::sim {
namespace {

using models::TrafficMatrix;

// One rank's share of a phase.
struct RankCost {
  Duration time;
  Bytes bytes;
  uint64_t flops = 0;
  const char* bound = "none";
};

RankCost ComputeCost(const models::OpCost& cost, Rate peak, Rate memory) {
  if (cost.flops == 0 && cost.bytes.value == 0) return {};
  const Duration flops_time = TimeFor(cost.flops, peak);
  const Duration memory_time = TransferTime(cost.bytes, memory);
  const bool flops_bound = flops_time >= memory_time;
  return RankCost{std::max(flops_time, memory_time), cost.bytes, cost.flops,
                  flops_bound ? "flops" : "memory"};
}

// An all-to-all, per rank. Every pair's bytes are laid on the links of its route (split as the
// route splits them); each link takes its load over its bandwidth. A rank finishes when the busiest
// link any of its transfers (sent or received) crosses is drained, plus the longest latency of
// those routes. On one NVSwitch this is the larger of a GPU's sent and received bytes over its
// NVLink bandwidth.
struct AllToAll {
  std::vector<RankCost> ranks;
  std::string bottleneck_link;                // empty when nothing crosses a link
  std::map<std::string, double> class_bytes;  // link class -> bytes over links of that class
  std::vector<std::pair<topology::Edge, double>> busiest;  // (link, bytes), most loaded first
};

// The `count` links that take longest to drain their bytes (ties: graph order).
std::vector<std::pair<topology::Edge, double>> Busiest(const topology::Graph& g,
                                                       const std::vector<double>& edge_bytes,
                                                       size_t count) {
  std::vector<std::pair<topology::Edge, double>> links;
  for (auto [it, end] = boost::edges(g); it != end; ++it) {
    if (edge_bytes[g[*it].id] > 0) links.emplace_back(*it, edge_bytes[g[*it].id]);
  }
  auto drain = [&](const std::pair<topology::Edge, double>& l) {
    return l.second / static_cast<double>(g[l.first].bandwidth.per_second());
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

// One pass over the matrix, row by row, keeps the pairs with bytes (with EP groups smaller than the
// cluster most pairs have none) and what each rank sends and receives; each such pair's route is
// walked once, its links kept for the second pass, which needs the links' drain times.
AllToAll AllToAllCosts(const topology::Cluster& cluster, const TrafficMatrix& tokens,
                       Bytes token_bytes) {
  const topology::Graph& g = cluster.graph();
  const topology::Router& router = cluster.router();
  const uint32_t n = tokens.ranks();
  std::vector<double> load(boost::num_edges(g), 0.0);
  std::vector<uint64_t> sent(n, 0), received(n, 0);  // tokens, off the diagonal
  struct Pair {
    uint32_t src = 0, dst = 0;
    uint64_t first_link = 0;  // its links are links[first_link, next pair's first_link)
  };
  std::vector<Pair> pairs;
  std::vector<uint32_t> links;  // edge ids
  for (uint32_t i = 0; i < n; ++i) {
    for (uint32_t j = 0; j < n; ++j) {
      const uint64_t count = tokens.at(i, j);
      if (i == j || count == 0) continue;
      sent[i] += count;
      received[j] += count;
      const double bytes = static_cast<double>(count * token_bytes.value);
      pairs.push_back(Pair{i, j, links.size()});
      router.ForEachShare(i, j, [&](topology::Edge e, double share) {
        load[g[e].id] += bytes * share;
        links.push_back(static_cast<uint32_t>(g[e].id));
      });
    }
  }
  std::vector<Duration> drain(load.size());
  AllToAll result;
  result.class_bytes = ByClass(g, load);
  result.busiest = Busiest(g, load, 5);
  Duration slowest;
  for (auto [it, end] = boost::edges(g); it != end; ++it) {
    const double bytes = load[g[*it].id];
    if (bytes <= 0) continue;
    const Duration t =
        TransferTime(Bytes{static_cast<uint64_t>(std::ceil(bytes))}, g[*it].bandwidth);
    drain[g[*it].id] = t;
    if (t > slowest) {  // the first edge (in graph order) among equals
      slowest = t;
      result.bottleneck_link =
          g[boost::source(*it, g)].name + " -> " + g[boost::target(*it, g)].name;
    }
  }
  // Each rank: the busiest link its transfers (sent or received) cross, and their longest route.
  std::vector<Duration> busiest(n), latency(n);
  for (size_t p = 0; p < pairs.size(); ++p) {
    const Pair& pair = pairs[p];
    const uint64_t last = p + 1 < pairs.size() ? pairs[p + 1].first_link : links.size();
    Duration worst;
    for (uint64_t k = pair.first_link; k < last; ++k) worst = std::max(worst, drain[links[k]]);
    const Duration route = router.Latency(pair.src, pair.dst);
    for (const uint32_t r : {pair.src, pair.dst}) {
      busiest[r] = std::max(busiest[r], worst);
      latency[r] = std::max(latency[r], route);
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

// Appends the phase made of `costs` (one per rank) to `result`; returns its time. For communication
// phases `link_bytes_total` is what crossed links and `bottleneck` the busiest link.
Duration AddPhase(pb::Result& result, const topology::Graph* graph, const char* name,
                  uint32_t layer, const std::vector<RankCost>& costs, Bytes link_bytes_total,
                  bool communication, const AllToAll* comm = nullptr) {
  pb::Phase* phase = result.add_phases();
  if (comm != nullptr) {
    phase->set_bottleneck_link(comm->bottleneck_link);
    for (const auto& [name, bytes] : comm->class_bytes)
      (*phase->mutable_link_class_bytes())[name] = bytes;
  }
  phase->set_name(name);
  phase->set_layer(layer);
  uint32_t critical = 0;
  for (uint32_t r = 0; r < costs.size(); ++r) {
    phase->add_rank_time_ns(costs[r].time.nanoseconds_ceil());
    if (costs[r].time > costs[critical].time) critical = r;
  }
  const RankCost& worst = costs[critical];
  phase->set_time_ns(worst.time.nanoseconds_ceil());
  phase->set_critical_rank(critical);
  phase->set_bound(worst.bound);
  phase->set_bytes(communication ? link_bytes_total.value : worst.bytes.value);
  phase->set_flops(worst.flops);
  if (comm != nullptr && worst.time.picoseconds() > 0) {
    const topology::Graph& g = *graph;
    for (const auto& [edge, bytes] : comm->busiest) {
      pb::LinkLoad* l = phase->add_busiest_links();
      l->set_link(g[boost::source(edge, g)].name + " -> " + g[boost::target(edge, g)].name);
      l->set_link_class(std::string(topology::ToString(g[edge].link_class)));
      l->set_bytes(static_cast<uint64_t>(std::ceil(bytes)));
      const double drain = bytes / static_cast<double>(g[edge].bandwidth.per_second());
      l->set_utilization(drain / (static_cast<double>(worst.time.picoseconds()) / 1e12));
    }
  }
  return worst.time;
}

}  // namespace

Status CheckMoeLayerSupport(const models::Workload& workload, const TextFile& file) {
  const models::ParallelSizes& s = workload.plan.sizes();
  if (s.etp > 1) {
    return InputError(file.Locate("plan.etp"), "plan.etp", std::to_string(s.etp),
                      "expert tensor parallelism is not simulated yet", "1");
  }
  if (s.pp > 1) {
    return InputError(file.Locate("plan.pp"), "plan.pp", std::to_string(s.pp),
                      "pipeline stages are not simulated yet (this version runs one MoE layer "
                      "forward on every GPU)",
                      "1");
  }
  return Status::Ok();
}

// The same all-to-all on the flow model: each rank's time is when the last flow it sends or
// receives is done.
AllToAll AllToAllFlows(const topology::Cluster& cluster, const TrafficMatrix& tokens,
                       Bytes token_bytes) {
  const uint32_t n = tokens.ranks();
  TrafficMatrix bytes(n);
  for (uint32_t i = 0; i < n; ++i) {
    for (uint32_t j = 0; j < n; ++j) bytes.at(i, j) = tokens.at(i, j) * token_bytes.value;
  }
  AllToAll result;
  result.ranks.resize(n);
  const StatusOr<Schedule> schedule = BuildAllToAllV(bytes, CollectiveAlgo::kDirect);
  const FlowRun run = RunFlows(cluster, *schedule, std::nullopt);
  for (uint32_t t = 0; t < schedule->transfers.size(); ++t) {
    const Transfer& x = schedule->transfers[t];
    for (uint32_t r : {x.src, x.dst}) {
      RankCost& c = result.ranks[r];
      c.time = std::max(c.time, run.finish[t]);
      c.bound = "link";
    }
  }
  for (uint32_t r = 0; r < n; ++r) {
    result.ranks[r].bytes =
        Bytes{std::max(tokens.SentOffRank(r), tokens.ReceivedOffRank(r)) * token_bytes.value};
  }
  result.bottleneck_link = run.bottleneck_link;
  result.class_bytes = ByClass(cluster.graph(), run.link_bytes);
  result.busiest = Busiest(cluster.graph(), run.link_bytes, 5);
  return result;
}

pb::Result SimulateMoeLayers(const topology::Cluster& cluster, const models::Workload& workload,
                             Fidelity fidelity) {
  const pb::ModelSpec& model = workload.model;
  const Rate peak = PeakFlops(cluster.gpu_spec(), model.dtype());
  const Rate hbm = cluster.gpu_spec().hbm_bandwidth;
  const Bytes token_bytes = models::TokenBytes(model);
  const uint32_t world = workload.plan.world();

  pb::Result result;
  result.set_scenario(workload.name);
  result.set_executor(fidelity == Fidelity::kFlow ? "flow" : "analytical");
  result.set_gpus(world);
  result.set_model(model.name());

  Duration total;
  for (const models::LayerWork& layer : workload.layers) {
    const TrafficMatrix& dispatch = layer.dispatch_tokens;
    const TrafficMatrix combine = dispatch.Transposed();
    std::vector<RankCost> router(world), expert(world);
    const bool flow = fidelity == Fidelity::kFlow;
    const AllToAll dispatch_cost = flow ? AllToAllFlows(cluster, dispatch, token_bytes)
                                        : AllToAllCosts(cluster, dispatch, token_bytes);
    const AllToAll combine_cost = flow ? AllToAllFlows(cluster, combine, token_bytes)
                                       : AllToAllCosts(cluster, combine, token_bytes);
    for (uint32_t r = 0; r < world; ++r) {
      router[r] = ComputeCost(models::RouterCost(model, layer.tokens_in[r]), peak, hbm);
      models::OpCost experts;
      for (uint64_t n : layer.expert_tokens[r]) {
        const models::OpCost one = models::ExpertFfnCost(model, n);
        experts.flops += one.flops;
        experts.bytes += one.bytes;
      }
      expert[r] = ComputeCost(experts, peak, hbm);
    }
    const Bytes moved{dispatch.OffDiagonal() * token_bytes.value};
    const topology::Graph* g = &cluster.graph();
    total += AddPhase(result, g, "router", layer.layer, router, {}, false);
    total += AddPhase(result, g, "dispatch", layer.layer, dispatch_cost.ranks, moved, true,
                      &dispatch_cost);
    total += AddPhase(result, g, "expert", layer.layer, expert, {}, false);
    total +=
        AddPhase(result, g, "combine", layer.layer, combine_cost.ranks, moved, true, &combine_cost);
    models::AddSendMatrices(result, layer.layer, dispatch, token_bytes.value);
  }
  result.set_total_ns(total.nanoseconds_ceil());
  return result;
}

}  // namespace moesim::sim
