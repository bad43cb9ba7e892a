#include "sim/network/network_model.h"

#include <algorithm>
#include <bit>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "proto/checked.h"
#include "proto/result.pb.h"
#include "sim/network/collective_time.h"
#include "sim/network/flow_model.h"
#include "sim/network/group_comm.h"

namespace moesim::sim {

std::string_view ToString(Fidelity fidelity) {
  return fidelity == Fidelity::kFlow ? "flow" : "analytical";
}

StatusOr<Fidelity> ParseFidelity(std::string_view name, std::string_view field) {
  if (name == "analytical") return Fidelity::kAnalytical;
  if (name == "flow") return Fidelity::kFlow;
  return InputError(Location{}, std::string(field), "\"" + std::string(name) + "\"",
                    "is not a network model", "analytical or flow");
}

uint32_t RingChannels(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus) {
  return std::max<uint32_t>(1, GroupGpusPerNode(cluster, gpus));
}

void MapOntoGroup(Schedule& schedule, const std::vector<uint32_t>& gpus) {
  for (Transfer& t : schedule.transfers) {
    t.src = gpus.at(t.src);
    t.dst = gpus.at(t.dst);
  }
}

uint32_t NetPeerChannels(const topology::Cluster& cluster, uint32_t ranks, uint32_t fullest) {
  const uint32_t nics = cluster.node().CountOf(topology::DeviceKind::kNic);
  return NcclP2pChannelsPerNetPeer(cluster.nccl_version(), cluster.node().nic_bandwidth.giga(),
                                   ranks, NcclP2pChannels(std::min(fullest, std::max(1u, nics))));
}

uint32_t CapNetPeers(const topology::Cluster& cluster, Schedule& schedule) {
  const bool p2p =
      schedule.op == CollectiveOp::kSendRecv ||
      (schedule.op == CollectiveOp::kAllToAll &&
       (schedule.algo == CollectiveAlgo::kDirect || schedule.algo == CollectiveAlgo::kPairwise));
  if (!p2p || schedule.transfers.empty()) return 0;
  const topology::Router& router = cluster.router();
  // The communicator's GPUs on the node where it has the most, in one pass over the transfers (a
  // 2,048-GPU all-to-all lists 4 M).
  std::vector<bool> member(router.gpus(), false);
  std::vector<uint32_t> per_node(cluster.nodes(), 0);
  uint32_t fullest = 0;
  bool across = false;
  for (const Transfer& t : schedule.transfers) {
    for (uint32_t g : {t.src, t.dst}) {
      if (member[g]) continue;
      member[g] = true;
      fullest = std::max(fullest, ++per_node[router.NodeOf(g)]);
    }
    across = across || router.NodeOf(t.src) != router.NodeOf(t.dst);
  }
  if (!across) return 0;
  const uint32_t channels = NetPeerChannels(cluster, schedule.ranks, fullest);
  const Rate cap = Rate::GigaPerSecond(channels * kNcclP2pChannelNetGbps);
  for (Transfer& t : schedule.transfers) {
    if (router.NodeOf(t.src) != router.NodeOf(t.dst)) t.rate_cap = cap;
  }
  return channels;
}

RingStep RingStepOf(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus,
                    CollectiveOp op, uint64_t size) {
  if (gpus.size() < 2 || size == 0 || !IsRingFamily(op)) {
    throw std::logic_error(
        "RingStepOf: a ring all-reduce, all-gather or reduce-scatter of some bytes over two or "
        "more GPUs");
  }
  // Every step of a ring moves size / n from each rank to the next: the same link loads each
  // time. One step is listed and timed as `steps` of them (TimeRing), what the full schedule
  // (collectives.h) gives, without its 2n(n-1) transfers (8 M for a ring of 2,048). Across
  // nodes the step is split over NCCL's channels as BuildCollective splits it.
  const uint32_t n = static_cast<uint32_t>(gpus.size());
  RingStep r;
  r.steps = RingSteps(op, n);
  uint32_t channels = RingChannels(cluster, gpus);
  if (n % channels != 0) channels = 1;
  Schedule& s = r.step;
  s.op = op;
  s.algo = CollectiveAlgo::kRing;
  s.ranks = n;
  s.size = size;
  s.steps = 1;
  const uint64_t chunk = size / n;
  for (uint32_t c = 0; c < channels; ++c) {
    const std::vector<uint32_t> order = RingOrder(n, channels, c);
    const uint64_t part = chunk / channels + (c == 0 ? chunk % channels : 0);
    for (uint32_t p = 0; p < n; ++p)
      s.transfers.push_back({order[p], order[(p + 1) % n], part, 0, {}, {}});
  }
  MapOntoGroup(s, gpus);
  return r;
}

CollectiveTiming TimeRingFromOneStep(const topology::Cluster& cluster,
                                     const std::vector<uint32_t>& gpus, CollectiveOp op,
                                     uint64_t size) {
  const RingStep r = RingStepOf(cluster, gpus, op, size);
  return TimeRing(cluster, r.step, r.steps);
}

CollectiveTiming FlowRingFromOneStep(const topology::Cluster& cluster,
                                     const std::vector<uint32_t>& gpus, CollectiveOp op,
                                     uint64_t size) {
  const RingStep r = RingStepOf(cluster, gpus, op, size);
  // The protocol and efficiency NCCL's tuner picks (the analytical model), as the flow model
  // runs every schedule.
  const CollectiveTiming tuned = TimeRing(cluster, r.step, r.steps);
  const FlowRun run = RunFlows(cluster, r.step, tuned.protocol, tuned.efficiency);
  // What each transfer took from its start (the base and its hop's step latency after the call,
  // flow_model.h) is its time on the wire beside the step's others.
  std::vector<Duration> wire(r.step.transfers.size());
  for (size_t t = 0; t < wire.size(); ++t) wire[t] = run.finish[t] - run.start[t];
  return TimeRingOnWire(cluster, r.step, r.steps, tuned.protocol, tuned.efficiency, wire);
}

GroupCommTime NetworkModel::GroupCollective(const std::vector<uint32_t>& gpus, CollectiveOp op,
                                            CollectiveAlgo algo, uint64_t size) const {
  if (memo_ == nullptr) return TimeGroupCollective(gpus, op, algo, size);
  MemoKey key('G');
  key.Add(static_cast<uint64_t>(fidelity()))
      .Add(std::bit_cast<uint64_t>(flow_tolerance()))
      .Add(static_cast<uint64_t>(op))
      .Add(static_cast<uint64_t>(algo))
      .Add(size)
      .Add(gpus);
  return memo_->Get(key.Take(), [&] { return TimeGroupCollective(gpus, op, algo, size); });
}

GroupCommTime NetworkModel::TunedGroupCollective(const std::vector<uint32_t>& gpus, CollectiveOp op,
                                                 uint64_t size) const {
  std::optional<GroupCommTime> best;
  for (CollectiveAlgo algo : TunerAlgorithms(cluster(), gpus, op)) {
    GroupCommTime t = GroupCollective(gpus, op, algo, size);
    // As NCCL's tuner: by the time it models, without NVLS's pipeline fill.
    if (!best || t.TunerTime() < best->TunerTime()) best = std::move(t);
  }
  return *best;
}

GroupCommTime NetworkModel::TimeGroupCollective(const std::vector<uint32_t>& gpus, CollectiveOp op,
                                                CollectiveAlgo algo, uint64_t size) const {
  if (gpus.size() < 2 || size == 0) return {};
  const uint32_t n = static_cast<uint32_t>(gpus.size());
  uint32_t per_node = cluster().gpus_per_node(), channels = 1;
  // A ring across nodes runs over NCCL's channels, one per GPU of a node, so it uses every NIC
  // (RingChannels; BuildCollective falls back to one ring where they do not divide the group).
  if (algo == CollectiveAlgo::kRing) channels = RingChannels(cluster(), gpus);
  if (algo == CollectiveAlgo::kTree) {
    // A tree's nodes are the group's: its GPUs per node where it spans whole blocks of them, all
    // of it where it sits in one node, else one GPU a node; NCCL's channels as a ring's.
    per_node = GroupGpusPerNode(cluster(), gpus);
    const topology::Router& router = cluster().router();
    const bool one_node = std::all_of(gpus.begin(), gpus.end(), [&](uint32_t g) {
      return router.NodeOf(g) == router.NodeOf(gpus.front());
    });
    if (per_node == 0) per_node = one_node ? n : 1;
    channels = RingChannels(cluster(), gpus);
  }
  // CollNet Direct's heads are the group's GPUs on a node (TunerAllReduceAlgorithms offers it only
  // where CheckCollNet finds as many on each of 2 or more nodes).
  if (algo == CollectiveAlgo::kCollNet) per_node = GroupGpusPerNode(cluster(), gpus);
  // NVLS across nodes (where the switches reduce) reduces in each node the group's GPUs there.
  if (algo == CollectiveAlgo::kNvls && NodesSpanned(cluster(), gpus) > 1)
    per_node = GroupGpusPerNode(cluster(), gpus);
  StatusOr<Schedule> schedule = BuildCollective(
      op, algo, n, size, per_node, channels, NvlsEfficiency(cluster().gpu_spec().sm),
      NcclNvlsChannels(cluster().gpu_spec().sm, NodesSpanned(cluster(), gpus)));
  // The step model only asks for ops and algorithms that exist; a failure is a programming error.
  if (!schedule.ok()) throw std::logic_error(schedule.error().message());
  MapOntoGroup(*schedule, gpus);
  CapNetPeers(cluster(), *schedule);
  const CollectiveRun run = Collective(*schedule);
  return {run.total, run.bottleneck_link, run.pipeline_fill};
}

namespace {

// Closed forms: a collective's least time over its links and dependencies (collective_time.h),
// each all-to-all's busiest link per rank (alltoall_cost.h).
class AnalyticalNetwork final : public NetworkModel {
 public:
  using NetworkModel::NetworkModel;
  Fidelity fidelity() const override { return Fidelity::kAnalytical; }

  CollectiveRun Collective(const Schedule& schedule) const override {
    const CollectiveTiming t = TimeCollective(cluster(), schedule);
    return {t.total, t.bottleneck_link, t.protocol, t.pipeline_fill};
  }

  AllToAll AllToAllV(const models::TrafficMatrix& tokens, Bytes token_bytes) const override {
    return AllToAllCosts(cluster(), tokens, token_bytes);
  }

  AllToAll RelayedAllToAll(const Schedule& schedule) const override {
    return ScheduleCosts(cluster(), schedule);
  }

 protected:
  GroupCommTime TimeGroupCollective(const std::vector<uint32_t>& gpus, CollectiveOp op,
                                    CollectiveAlgo algo, uint64_t size) const override {
    if (gpus.size() < 2 || size == 0 || algo != CollectiveAlgo::kRing || !IsRingFamily(op)) {
      return NetworkModel::TimeGroupCollective(gpus, op, algo, size);
    }
    const CollectiveTiming t = TimeRingFromOneStep(cluster(), gpus, op, size);
    return {t.total, t.bottleneck_link, Duration()};  // rings: no NVLS fill
  }
};

// Flows sharing links by max-min fairness, event by event (flow_model.h).
class FlowNetwork final : public NetworkModel {
 public:
  FlowNetwork(const topology::Cluster& cluster, FlowOptions options)
      : NetworkModel(cluster), options_(options) {}
  Fidelity fidelity() const override { return Fidelity::kFlow; }
  double flow_tolerance() const override { return options_.tolerance; }

  CollectiveRun Collective(const Schedule& schedule) const override {
    // The flow model runs with the protocol the analytical model (NCCL's tuner) chose, at the
    // same efficiency.
    const CollectiveTiming tuned = TimeCollective(cluster(), schedule);
    const FlowRun run = RunFlows(cluster(), schedule, tuned.protocol, tuned.efficiency, options_);
    // NVLS's pipeline fill on the flows' own bytes time: no less than the analytical fill, as the
    // flows take no less time.
    const Duration fill = NvlsPipelineFill(cluster(), schedule, run.total - tuned.latency);
    // Where NCCL's channels to a network peer hold the transfers, they are what binds.
    return {run.total + fill, tuned.capped ? tuned.bottleneck_link : run.bottleneck_link,
            tuned.protocol, fill};
  }

  AllToAll AllToAllV(const models::TrafficMatrix& tokens, Bytes token_bytes) const override {
    return AllToAllFlows(cluster(), tokens, token_bytes, options_);
  }

  AllToAll RelayedAllToAll(const Schedule& schedule) const override {
    return ScheduleFlows(cluster(), schedule, options_);
  }

 private:
  FlowOptions options_;
};

}  // namespace

std::unique_ptr<NetworkModel> MakeNetworkModel(const topology::Cluster& cluster, Fidelity fidelity,
                                               FlowOptions flow) {
  switch (fidelity) {
    case Fidelity::kAnalytical:
      return std::make_unique<AnalyticalNetwork>(cluster);
    case Fidelity::kFlow:
      return std::make_unique<FlowNetwork>(cluster, flow);
  }
  throw std::logic_error("MakeNetworkModel: unknown fidelity");
}

StatusOr<FlowOptions> ParseFlowOptions(double tolerance, bool flow_used) {
  MOESIM_RETURN_IF_ERROR(
      CheckFigure(tolerance, DeclaredRange<pb::Result>("flow_tolerance"), {}, "--flow-tolerance"));
  if (tolerance > 0 && !flow_used) {
    std::ostringstream value;
    value << tolerance;
    return InputError(Location{}, "--flow-tolerance", value.str(), "applies to the flow model only",
                      "--fidelity flow (plan: or --rerank-flow K)");
  }
  return FlowOptions{tolerance};
}

}  // namespace moesim::sim
