#include "sim/network/flow_model.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "sim/engine/completion_queue.h"
#include "sim/engine/engine.h"
#include "sim/network/collective_time.h"
#include "sim/network/flow_links.h"
#include "sim/network/maxmin.h"
#include "sim/network/ring_lockstep.h"

namespace moesim::sim {
namespace {

constexpr uint32_t kNone = UINT32_MAX;

// No transfer waits for another: all start together (a direct all-to-all(v)).
bool Independent(const Schedule& schedule) {
  return std::all_of(schedule.transfers.begin(), schedule.transfers.end(),
                     [](const Transfer& x) { return x.after.empty() && x.after_sent.empty(); });
}

class FlowModel {
 public:
  FlowModel(const topology::Cluster& cluster, const Schedule& schedule,
            std::optional<NcclProtocol> protocol, std::optional<double> efficiency,
            FlowOptions options)
      : cluster_(cluster),
        schedule_(schedule),
        protocol_(protocol),
        efficiency_(efficiency ? *efficiency
                    : protocol ? NcclLatencyModel::Efficiency(*protocol) *
                                     AlgorithmEfficiency(cluster, schedule)
                               : 1.0),
        tolerance_(Independent(schedule) ? options.tolerance : 0),
        model_(LatencyModelFor(cluster, schedule)),
        links_(PlanFlowLinks(cluster, schedule)),
        lockstep_(RingLockstepSeconds(cluster, schedule)) {
    const size_t n = schedule.transfers.size();
    waiting_.resize(n);
    arrived_.resize(n);
    sent_.resize(n);
    dependents_.resize(n);
    streamers_.resize(n);
    run_.start.resize(n);
    run_.finish.resize(n);
    resource_of_.resize(boost::num_edges(cluster.graph()));
    for (uint32_t t = 0; t < n; ++t) {
      const Transfer& x = schedule.transfers[t];
      waiting_[t] = static_cast<uint32_t>(x.after.size() + x.after_sent.size());
      for (uint32_t before : x.after) dependents_[before].push_back(t);
      for (uint32_t before : x.after_sent) streamers_[before].push_back(t);
      // Each paced sender's intra-node hop kind, walked once a GPU (PaceKind).
      if (x.paced) {
        if (pace_of_gpu_.size() <= x.src) pace_of_gpu_.resize(x.src + 1);
        if (!pace_of_gpu_[x.src]) pace_of_gpu_[x.src] = PaceKind(cluster, x.src);
      }
    }
  }

  FlowRun Run() {
    run_.link_bytes = std::move(links_.link_bytes);  // every transfer runs to its end
    const Duration base = protocol_ ? model_.Base(*protocol_) : Duration();
    // The transfers that wait for nothing start in one event per start time, each in transfer
    // order, as one event per transfer would run them (the engine runs equal times in insertion
    // order): a million flows of an all-to-all are not a million events.
    std::vector<std::pair<Duration, std::vector<uint32_t>>> starts;
    for (uint32_t t = 0; t < schedule_.transfers.size(); ++t) {
      if (waiting_[t] != 0) continue;
      const Duration at = StartTime(t, base);
      auto it =
          std::find_if(starts.begin(), starts.end(), [&](const auto& s) { return s.first == at; });
      if (it == starts.end()) {
        starts.emplace_back(at, std::vector<uint32_t>());
        it = starts.end() - 1;
      }
      it->second.push_back(t);
    }
    for (auto& [at, ts] : starts) {
      sim_.ScheduleAt(at, [this, ts = std::move(ts)](Simulation&) {
        for (uint32_t t : ts) Start(t);
      });
    }
    sim_.Run();
    if (finished_ != schedule_.transfers.size()) {
      throw std::logic_error("flow model: a transfer never completed");
    }
    run_.events = sim_.executed_count();
    // The link with the most bytes per bandwidth.
    const topology::Graph& g = cluster_.graph();
    double worst = 0;
    for (auto [it, end] = boost::edges(g); it != end; ++it) {
      const double t =
          run_.link_bytes[g[*it].id] / static_cast<double>(g[*it].achieved.per_second());
      if (t > worst) {
        worst = t;
        run_.bottleneck_link =
            g[boost::source(*it, g)].name + " -> " + g[boost::target(*it, g)].name;
      }
    }
    return std::move(run_);
  }

 private:
  // Starts transfer t once all it waits for is done, at `at` (when the last of it was): its hop's
  // step latency (NCCL model) after the last transfer it waits for to arrive (`after`), and no
  // earlier than the last it waits for to be sent (`after_sent`, the stream before it on its
  // sender), an intra-node step latency after that for a paced one (Transfer::paced). A stream's
  // later chunk (Transfer::streamed) pays no step latency.
  void ScheduleStart(uint32_t t, Duration at) {
    sim_.ScheduleAt(StartTime(t, at), [this, t](Simulation&) { Start(t); });
  }
  Duration StartTime(uint32_t t, Duration at) const {
    const Transfer& x = schedule_.transfers[t];
    const Duration paced = x.paced && protocol_ && !x.after_sent.empty()
                               ? sent_[t] + model_.Step(*pace_of_gpu_[x.src], *protocol_)
                               : Duration();
    if (x.after.empty() && !x.after_sent.empty()) return std::max(at, paced);
    const Duration arrived = x.after.empty() ? at : arrived_[t];
    return std::max({at, paced,
                     protocol_ && !x.streamed
                         ? arrived + model_.Step(HopKind(cluster_, x.src, x.dst), *protocol_)
                         : arrived});
  }

  // Transfer t's last byte has left: the transfers streaming after it may go.
  void Sent(uint32_t t) {
    for (uint32_t next : streamers_[t]) {
      sent_[next] = std::max(sent_[next], sim_.now());
      if (--waiting_[next] == 0) ScheduleStart(next, sim_.now());
    }
  }

  void Start(uint32_t t) {
    const Transfer& x = schedule_.transfers[t];
    run_.start[t] = sim_.now();
    if (x.bytes == 0) {
      Sent(t);
      Finish(t);
      return;
    }
    // One use per constraint (sim/network/flow_links.h), by the edge that stands for it.
    uses_.clear();
    for (uint32_t u = links_.use_first[t]; u < links_.use_first[t + 1]; ++u) {
      const auto& [edge, share] = links_.uses[u];
      if (!resource_of_[edge]) {
        // Resources are created when a link is first used; capacity in bytes per second of data.
        const double capacity = static_cast<double>(EdgeBandwidth(edge)) * efficiency_;
        resource_of_[edge] = solver_.AddResource(capacity);
      }
      uses_.push_back({*resource_of_[edge], share});
    }
    // A ring's channel no faster than its share of its links (RingLockstepSeconds).
    std::optional<double> bound;
    if (!lockstep_.empty() && lockstep_[t] > 0)
      bound = static_cast<double>(x.bytes) * efficiency_ / lockstep_[t];
    // NCCL's channels to a network peer (Transfer::rate_cap), at the protocol's efficiency as a
    // link.
    if (x.rate_cap > Rate()) {
      const double cap = static_cast<double>(x.rate_cap.per_second()) * efficiency_;
      bound = bound ? std::min(*bound, cap) : cap;
    }
    const VariableId v = solver_.AddVariable(uses_, 1.0, bound);
    if (flights_.size() <= v.value) flights_.resize(v.value + 1);
    flights_[v.value] =
        Flight{static_cast<double>(x.bytes), 0, sim_.now(), Duration(), sim_.now(), t, kNone};
    RequestSolve();
  }

  uint64_t EdgeBandwidth(uint32_t edge_id) {
    if (edge_bandwidth_.empty()) {
      const topology::Graph& g = cluster_.graph();
      edge_bandwidth_.resize(boost::num_edges(g));
      for (auto [it, end] = boost::edges(g); it != end; ++it) {
        edge_bandwidth_[g[*it].id] = g[*it].achieved.per_second();
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
    run_.rate_changes += solver_.Solve().size();
    run_.recomputed += solver_.last_solve().variables;
    // Every step the solve recomputed gets a new queue entry at its earliest flow; the entries of
    // the steps its flows were in before are retired (steps are recomputed whole).
    const std::vector<MaxMinSolver::Recomputed>& list = solver_.recomputed();
    constexpr size_t kAhead = 32;
    uint32_t group = kNone;
    const Flight* earliest = nullptr;
    uint32_t earliest_variable = 0;
    const auto queue_step = [&] {
      if (earliest != nullptr) {
        completions_.Queue(group, earliest->when, earliest->transfer, earliest_variable);
      }
    };
    for (size_t i = 0; i < list.size(); ++i) {
      // The flights are scattered over memory: fetch well ahead (a flight takes a few dozen
      // cycles here, a fetch from memory hundreds), both cache lines a flight may straddle.
      if (i + kAhead < list.size()) {
        const Flight* ahead = &flights_[list[i + kAhead].variable.value];
        __builtin_prefetch(ahead);
        __builtin_prefetch(reinterpret_cast<const char*>(ahead + 1) - 1);
      }
      if (list[i].step_start) {
        queue_step();
        group = completions_.NewGroup();
        earliest = nullptr;
      }
      const uint32_t v = list[i].variable.value;
      Flight& f = flights_[v];
      if (f.group != kNone) completions_.Retire(f.group);
      f.group = group;
      if (f.rate != list[i].rate) {
        // Bytes through at the old rate since the last update.
        const double elapsed =
            static_cast<double>(now.picoseconds() - f.updated.picoseconds()) / 1e12;
        f.remaining = std::max(0.0, f.remaining - f.rate * elapsed);
        f.updated = now;
        f.rate = list[i].rate;
        if (f.rate > 0) {
          const double seconds = f.remaining / f.rate;
          f.when = now + Duration::Picoseconds(static_cast<int64_t>(std::ceil(seconds * 1e12)));
        }
      }
      // A rate rounded to 0 stalls the flow until a later solve.
      if (f.rate > 0 && (earliest == nullptr || f.when < earliest->when ||
                         (f.when == earliest->when && f.transfer < earliest->transfer))) {
        earliest = &f;
        earliest_variable = v;
      }
    }
    queue_step();
    completions_.Release();
    Arm();
  }

  // Keeps the engine's one completion event at the earliest completion.
  void Arm() {
    if (completions_.empty()) {
      if (armed_) sim_.Cancel(*armed_);
      armed_.reset();
      return;
    }
    const Duration next = completions_.top_time();
    if (armed_ && armed_at_ == next) return;
    if (armed_) sim_.Cancel(*armed_);
    armed_at_ = next;
    armed_ = sim_.ScheduleAt(next, [this](Simulation&) { CompleteDue(); });
  }

  // With a tolerance e, a flow due within e of its whole time (start to due) goes with the flows
  // due now: it has had its bandwidth for at least 1 - e of its time.
  bool DueEnough(uint32_t v, Duration now) const {
    const Flight& f = flights_[v];
    if (f.when == now) return true;
    return tolerance_ > 0 &&
           static_cast<double>((f.when - now).picoseconds()) <=
               tolerance_ * static_cast<double>((f.when - f.started).picoseconds());
  }

  // Every transfer due now (with a tolerance, due enough), in transfer order; the solve they
  // request re-arms the queue. A step due now may hold other flows due now: each is looked at. The
  // first step whose earliest flow is not due enough ends the search (a step taken out of the queue
  // must lose a flow, so that the solve re-queues it).
  void CompleteDue() {
    armed_.reset();
    const Duration now = sim_.now();
    due_.clear();
    while (!completions_.empty() && DueEnough(completions_.top_variable(), now)) {
      const uint32_t v = completions_.top_variable();
      completions_.Retire(completions_.top_group());  // its step is re-solved next
      step_.clear();
      solver_.StepOf(VariableId{v}, &step_);
      for (const VariableId u : step_) {
        const Flight& f = flights_[u.value];
        if (f.rate > 0 && DueEnough(u.value, now)) due_.emplace_back(f.transfer, u.value);
      }
    }
    std::sort(due_.begin(), due_.end());
    for (const auto& [t, v] : due_) Complete(v);
    if (!solve_pending_) Arm();
  }

  // Flow v is through (or, with a tolerance, due enough): its variable (and flight) free
  // for reuse. A flow due later is through at its due time.
  void Complete(uint32_t v) {
    const uint32_t t = flights_[v].transfer;
    const Duration when = flights_[v].when;
    solver_.RemoveVariable(VariableId{v});
    RequestSolve();
    if (dependents_[t].empty() && streamers_[t].empty()) {
      // Nothing waits for it: its end is written down without an event of its own (its last
      // byte's route latency after it is through, without a protocol).
      Ended(t, protocol_ ? when
                         : when + cluster_.RouteLatency(schedule_.transfers[t].src,
                                                        schedule_.transfers[t].dst));
      return;
    }
    if (when > sim_.now()) {
      sim_.ScheduleAt(when, [this, t](Simulation&) { Through(t); });
      return;
    }
    Through(t);
  }

  // Transfer t's last byte has left its sender.
  void Through(uint32_t t) {
    Sent(t);
    if (protocol_) {
      Finish(t);
      return;
    }
    // Physical latency: the last byte still has to cross the route.
    const Transfer& x = schedule_.transfers[t];
    sim_.ScheduleAfter(cluster_.RouteLatency(x.src, x.dst), [this, t](Simulation&) { Finish(t); });
  }

  void Ended(uint32_t t, Duration at) {
    ++finished_;
    run_.finish[t] = at;
    run_.total = std::max(run_.total, at);
  }

  void Finish(uint32_t t) {
    Ended(t, sim_.now());
    for (uint32_t next : dependents_[t]) {
      arrived_[next] = std::max(arrived_[next], sim_.now());
      if (--waiting_[next] == 0) ScheduleStart(next, sim_.now());
    }
  }

  const topology::Cluster& cluster_;
  const Schedule& schedule_;
  std::optional<NcclProtocol> protocol_;
  double efficiency_;
  double tolerance_;
  NcclLatencyModel model_;
  Simulation sim_;
  MaxMinSolver solver_;
  bool solve_pending_ = false;
  std::vector<uint32_t> waiting_;
  std::vector<Duration> arrived_;  // [t]: when the last transfer t waits for (`after`) arrived
  std::vector<Duration> sent_;     // [t]: when the last it waits for (`after_sent`) had left
  std::vector<std::optional<StepLinkKind>> pace_of_gpu_;  // [gpu]: PaceKind of a paced sender
  std::vector<std::vector<uint32_t>> dependents_;  // [t]: transfers that wait for t to arrive
  std::vector<std::vector<uint32_t>> streamers_;   // [t]: transfers that wait for t to be sent
  // A transfer in flight since `started`: bytes left as of `updated`, at `rate` since then, done at
  // `when` (if rate > 0); `group` is the queue entry of its solver step (kNone before its first
  // solve).
  struct Flight {
    double remaining = 0;
    double rate = 0;
    Duration updated;
    Duration when;
    Duration started;
    uint32_t transfer = kNone;
    uint32_t group = kNone;
  };
  std::vector<Flight> flights_;  // per solver variable id (ids are reused once a flow is through)
  CompletionQueue completions_;
  // Scratch of CompleteDue(): the flows due, as (transfer, variable), and a step's variables.
  std::vector<std::pair<uint32_t, uint32_t>> due_;
  std::vector<VariableId> step_;
  std::optional<EventId> armed_;  // the engine event at armed_at_, the earliest completion
  Duration armed_at_;
  std::vector<std::optional<ResourceId>> resource_of_;
  std::vector<uint64_t> edge_bandwidth_;
  FlowLinks links_;                // which links are constraints, and which edge stands for each
  std::vector<double> lockstep_;   // a ring's: per transfer, RingLockstepSeconds; else empty
  std::vector<ResourceUse> uses_;  // scratch of Start()
  size_t finished_ = 0;
  FlowRun run_;
};

}  // namespace

std::string FlowToleranceNote(double tolerance) {
  if (tolerance <= 0) return "";
  std::ostringstream out;
  out << ", tolerance " << tolerance * 100 << " % on direct all-to-alls";
  return out.str();
}

FlowRun RunFlows(const topology::Cluster& cluster, const Schedule& schedule,
                 std::optional<NcclProtocol> protocol, std::optional<double> efficiency,
                 FlowOptions options) {
  return FlowModel(cluster, schedule, protocol, efficiency, options).Run();
}

}  // namespace moesim::sim
