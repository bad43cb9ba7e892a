#include "sim/flow_model.h"

#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>

#include "sim/collective_time.h"
#include "sim/engine.h"
#include "sim/maxmin.h"

namespace moesim::sim {
namespace {

class FlowModel {
 public:
  FlowModel(const topology::Cluster& cluster, const Schedule& schedule,
            std::optional<NcclProtocol> protocol)
      : cluster_(cluster),
        schedule_(schedule),
        protocol_(protocol),
        efficiency_(protocol ? NcclLatencyModel::Efficiency(*protocol) : 1.0),
        model_{schedule.algo == CollectiveAlgo::kTree} {
    const size_t n = schedule.transfers.size();
    waiting_.resize(n);
    dependents_.resize(n);
    flow_of_.resize(n);
    remaining_.assign(n, 0);
    rate_.assign(n, 0);
    updated_.resize(n);
    completion_.resize(n);
    run_.finish.resize(n);
    run_.link_bytes.assign(boost::num_edges(cluster.graph()), 0.0);
    resource_of_.resize(boost::num_edges(cluster.graph()));
    for (uint32_t t = 0; t < n; ++t) {
      waiting_[t] = static_cast<uint32_t>(schedule.transfers[t].after.size());
      for (uint32_t before : schedule.transfers[t].after) dependents_[before].push_back(t);
    }
  }

  FlowRun Run() {
    const Duration base = protocol_ ? model_.Base(*protocol_) : Duration();
    for (uint32_t t = 0; t < schedule_.transfers.size(); ++t) {
      if (waiting_[t] == 0) ScheduleStart(t, base);
    }
    sim_.Run();
    for (uint32_t t = 0; t < schedule_.transfers.size(); ++t) {
      if (!done_.count(t)) throw std::logic_error("flow model: a transfer never completed");
    }
    run_.events = sim_.executed_count();
    // The link with the most bytes per bandwidth.
    const topology::Graph& g = cluster_.graph();
    double worst = 0;
    for (auto [it, end] = boost::edges(g); it != end; ++it) {
      const double t =
          run_.link_bytes[g[*it].id] / static_cast<double>(g[*it].bandwidth.per_second());
      if (t > worst) {
        worst = t;
        run_.bottleneck_link =
            g[boost::source(*it, g)].name + " -> " + g[boost::target(*it, g)].name;
      }
    }
    return std::move(run_);
  }

 private:
  // Starts transfer t after its hop's step latency (NCCL model), counted from `at`.
  void ScheduleStart(uint32_t t, Duration at) {
    const Transfer& x = schedule_.transfers[t];
    const Duration start =
        protocol_ ? at + model_.Step(HopKind(cluster_, x.src, x.dst), *protocol_) : at;
    sim_.ScheduleAt(start, [this, t](Simulation&) { Start(t); });
  }

  void Start(uint32_t t) {
    const Transfer& x = schedule_.transfers[t];
    if (x.bytes == 0) {
      Finish(t);
      return;
    }
    const topology::Graph& g = cluster_.graph();
    std::map<uint32_t, double> shares;  // edge id -> coefficient; ordered, so deterministic
    cluster_.router().ForEachShare(x.src, x.dst,
                                   [&](topology::Edge e, double s) { shares[g[e].id] += s; });
    std::vector<ResourceUse> uses;
    for (const auto& [edge, share] : shares) {
      if (!resource_of_[edge]) {
        // Resources are created when a link is first used; capacity in bytes per second of data.
        const double capacity = static_cast<double>(EdgeBandwidth(edge)) * efficiency_;
        resource_of_[edge] = solver_.AddResource(capacity);
      }
      uses.push_back({*resource_of_[edge], share});
      run_.link_bytes[edge] += share * static_cast<double>(x.bytes);
    }
    const VariableId v = solver_.AddVariable(uses);
    flow_of_[t] = v;
    transfer_of_[v.value] = t;
    remaining_[t] = static_cast<double>(x.bytes);
    updated_[t] = sim_.now();
    RequestSolve();
  }

  uint64_t EdgeBandwidth(uint32_t edge_id) {
    if (edge_bandwidth_.empty()) {
      const topology::Graph& g = cluster_.graph();
      edge_bandwidth_.resize(boost::num_edges(g));
      for (auto [it, end] = boost::edges(g); it != end; ++it) {
        edge_bandwidth_[g[*it].id] = g[*it].bandwidth.per_second();
      }
    }
    return edge_bandwidth_[edge_id];
  }

  // One re-solve per instant: flows starting or ending at the same time are solved together.
  void RequestSolve() {
    if (solve_pending_) return;
    solve_pending_ = true;
    sim_.ScheduleAt(sim_.now(), [this](Simulation&) { Resolve(); });
  }

  void Resolve() {
    solve_pending_ = false;
    ++run_.solves;
    const Duration now = sim_.now();
    for (VariableId v : solver_.Solve()) {
      auto it = transfer_of_.find(v.value);
      if (it == transfer_of_.end()) continue;
      const uint32_t t = it->second;
      // Bytes through at the old rate since the last update.
      const double elapsed =
          static_cast<double>(now.picoseconds() - updated_[t].picoseconds()) / 1e12;
      remaining_[t] = std::max(0.0, remaining_[t] - rate_[t] * elapsed);
      updated_[t] = now;
      rate_[t] = solver_.Rate(v);
      if (completion_[t]) sim_.Cancel(*completion_[t]);
      const double seconds = remaining_[t] / rate_[t];
      const Duration when =
          now + Duration::Picoseconds(static_cast<int64_t>(std::ceil(seconds * 1e12)));
      completion_[t] = sim_.ScheduleAt(when, [this, t](Simulation&) { Complete(t); });
    }
  }

  void Complete(uint32_t t) {
    completion_[t].reset();
    const VariableId v = *flow_of_[t];
    transfer_of_.erase(v.value);
    solver_.RemoveVariable(v);
    flow_of_[t].reset();
    RequestSolve();
    if (protocol_) {
      Finish(t);
      return;
    }
    // Physical latency: the last byte still has to cross the route.
    const Transfer& x = schedule_.transfers[t];
    sim_.ScheduleAfter(cluster_.router().Latency(x.src, x.dst),
                       [this, t](Simulation&) { Finish(t); });
  }

  void Finish(uint32_t t) {
    done_.insert(t);
    run_.finish[t] = sim_.now();
    run_.total = std::max(run_.total, sim_.now());
    for (uint32_t next : dependents_[t]) {
      if (--waiting_[next] == 0) ScheduleStart(next, sim_.now());
    }
  }

  const topology::Cluster& cluster_;
  const Schedule& schedule_;
  std::optional<NcclProtocol> protocol_;
  double efficiency_;
  NcclLatencyModel model_;
  Simulation sim_;
  MaxMinSolver solver_;
  bool solve_pending_ = false;
  std::vector<uint32_t> waiting_;
  std::vector<std::vector<uint32_t>> dependents_;
  std::vector<std::optional<VariableId>> flow_of_;
  std::map<uint32_t, uint32_t> transfer_of_;  // variable id -> transfer
  std::vector<double> remaining_, rate_;
  std::vector<Duration> updated_;
  std::vector<std::optional<EventId>> completion_;
  std::vector<std::optional<ResourceId>> resource_of_;
  std::vector<uint64_t> edge_bandwidth_;
  std::set<uint32_t> done_;
  FlowRun run_;
};

}  // namespace

FlowRun RunFlows(const topology::Cluster& cluster, const Schedule& schedule,
                 std::optional<NcclProtocol> protocol) {
  return FlowModel(cluster, schedule, protocol).Run();
}

}  // namespace moesim::sim
