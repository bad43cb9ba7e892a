// sim/network/ owns how long bytes take to cross a cluster: the max-min solver, the flow model,
// collective schedules, NCCL's latency/protocol model and the all-to-all costs, behind
// NetworkModel. It may include sim/engine/, topology/, models/ and proto/; the solver (maxmin.h)
// only itself.
//
// NetworkModel is the one door to the network for everything above it: the fidelity is chosen
// once per run (MakeNetworkModel), and every caller asks the model, never a fidelity, for a
// collective, an all-to-all(v) or a schedule.
//
//   std::unique_ptr<NetworkModel> net = MakeNetworkModel(cluster, Fidelity::kFlow);
//   net->GroupCollective({0, 8, 16, 24}, CollectiveOp::kAllReduce, CollectiveAlgo::kRing, 1 << 30);
//   net->AllToAllV(layer.dispatch_tokens, token_bytes).ranks[r].time;
//
// Implementations: analytical (closed forms: the least time the links and dependencies allow,
// sim/network/collective_time.h, and the busiest link, sim/network/alltoall_cost.h) and flow (flows
// sharing links by max-min fairness, event by event, sim/network/flow_model.h). Both answer every
// question; a model holds a reference to its cluster, which must outlive it. Thread-safety: const
// methods may run concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "models/traffic_matrix.h"
#include "proto/status.h"
#include "proto/units.h"
#include "sim/network/alltoall_cost.h"
#include "sim/network/collective_memo.h"
#include "sim/network/collective_time.h"
#include "sim/network/collectives.h"
#include "sim/network/flow_model.h"
#include "sim/network/nccl_model.h"
#include "topology/cluster.h"

namespace moesim::sim {

// How communication is timed: `kAnalytical`, closed forms (links' bytes over their bandwidth,
// plus latencies); `kFlow`, every transfer a flow sharing link bandwidth by max-min fairness
// (sim/network/flow_model.h). Compute is timed the same in both.
enum class Fidelity { kAnalytical, kFlow };

std::string_view ToString(Fidelity fidelity);  // "analytical", "flow"
// "analytical" or "flow"; anything else is an error naming `field` and the valid values.
StatusOr<Fidelity> ParseFidelity(std::string_view name, std::string_view field = "--fidelity");

// A collective's time on its group.
struct GroupCommTime {
  Duration time;
  std::string bottleneck_link;  // empty when nothing crossed a link
  // NVLS's kernel pipeline fill, included in time (NvlsPipelineFill): NCCL's tuner, which does not
  // know it, weighs time - pipeline_fill when it picks an algorithm.
  Duration pipeline_fill;
  Duration TunerTime() const { return time - pipeline_fill; }
};

// A collective schedule run as NCCL runs it.
struct CollectiveRun {
  Duration total;
  std::string bottleneck_link;
  NcclProtocol protocol = NcclProtocol::kSimple;  // what NCCL's tuner chose (both fidelities)
  // NVLS's kernel pipeline fill, included in total; NCCL's tuner weighs total - pipeline_fill.
  Duration pipeline_fill;
  // What NCCL's tuner compares across algorithms: the time without the fill it does not model.
  Duration TunerTime() const { return total - pipeline_fill; }
};

// Group collectives' answers shared by the network models of one cluster (collective_memo.h).
class CollectiveMemo : public Memo<GroupCommTime> {};

class NetworkModel {
 public:
  explicit NetworkModel(const topology::Cluster& cluster) : cluster_(cluster) {}
  virtual ~NetworkModel() = default;
  NetworkModel(const NetworkModel&) = delete;
  NetworkModel& operator=(const NetworkModel&) = delete;

  virtual Fidelity fidelity() const = 0;
  // The flow model's tolerance (sim/network/flow_model.h); 0 for the analytical model.
  virtual double flow_tolerance() const { return 0; }
  const topology::Cluster& cluster() const { return cluster_; }

  // A collective schedule whose ranks are the cluster's GPU ids, priced with NCCL's latency model
  // and the protocol its tuner picks (sim/network/collective_time.h); the flow model runs the
  // transfers with that protocol.
  virtual CollectiveRun Collective(const Schedule& schedule) const = 0;

  // A collective over a group of GPUs (a TP, DP, EP or pipeline group): the schedule for ranks
  // 0..n-1 mapped onto `gpus`, timed by Collective. A group of one GPU, or size 0, costs nothing.
  // `gpus` must be distinct GPUs of the cluster; `op` and `algo` must go together
  // (BuildCollective), or std::logic_error. Looked up in the memo when the model has one.
  GroupCommTime GroupCollective(const std::vector<uint32_t>& gpus, CollectiveOp op,
                                CollectiveAlgo algo, uint64_t size) const;
  // The fastest of the algorithms NCCL's tuner weighs for `op` on `gpus` (TunerAlgorithms,
  // sim/network/collective_time.h), as `moesim collective` picks without --algo.
  GroupCommTime TunedGroupCollective(const std::vector<uint32_t>& gpus, CollectiveOp op,
                                     uint64_t size) const;

  // Answers of group collectives (GroupCollective, and group_comm.h's all-to-allvs) are kept in
  // and taken from `memo` (nullptr, the default: none). The memo must outlive the model and serve
  // only this cluster.
  void set_memo(CollectiveMemo* memo) { memo_ = memo; }
  CollectiveMemo* memo() const { return memo_; }

  // A MoE layer's direct all-to-all(v) of `tokens` (token_bytes each), per rank, without NCCL's
  // latency model: full link bandwidth plus route latencies (sim/network/alltoall_cost.h).
  virtual AllToAll AllToAllV(const models::TrafficMatrix& tokens, Bytes token_bytes) const = 0;

  // A MoE layer's all-to-all as a schedule with relays (DeepEP's hierarchical dispatch), per rank,
  // priced like AllToAllV.
  virtual AllToAll RelayedAllToAll(const Schedule& schedule) const = 0;

 protected:
  // GroupCollective without the memo; a model may time some collectives its own way.
  virtual GroupCommTime TimeGroupCollective(const std::vector<uint32_t>& gpus, CollectiveOp op,
                                            CollectiveAlgo algo, uint64_t size) const;

 private:
  const topology::Cluster& cluster_;
  CollectiveMemo* memo_ = nullptr;
};

// NCCL's ring channels for a group (BuildCollective's `ring_channels`): the group's GPUs per node
// where it spans several nodes with as many on each (sim/network/group_comm.h), else 1.
uint32_t RingChannels(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus);

// The schedule's ranks 0..n-1 become the group's GPUs.
void MapOntoGroup(Schedule& schedule, const std::vector<uint32_t>& gpus);

// NCCL's channels bound a send/recv to a rank on another node: each of its channels carries
// kNcclP2pChannelNetGbps, and a network peer gets NcclP2pChannelsPerNetPeer of them. So every
// transfer crossing nodes in a schedule NCCL runs as grouped send/recv (sendrecv; direct and
// pairwise all-to-alls) gets that rate_cap, by the cluster's NCCL release (nccl_version), the
// schedule's ranks (the communicator), its p2p channels (NcclP2pChannels of the NICs its GPUs use
// on the node where it has the most: min(its GPUs there, the node's NICs)) and the NICs' line rate.
// Other schedules are left as they are. The schedule's ranks must be the cluster's GPUs
// (MapOntoGroup). Returns the channels a network peer gets (0 when nothing crosses nodes).
uint32_t CapNetPeers(const topology::Cluster& cluster, Schedule& schedule);
// The channels CapNetPeers gives a network peer in a communicator of `ranks` GPUs with at most
// `fullest` of them on one node: NcclP2pChannelsPerNetPeer by the cluster's NCCL release and NIC
// rate, the communicator's p2p channels NcclP2pChannels(min(fullest, the node's NICs)).
uint32_t NetPeerChannels(const topology::Cluster& cluster, uint32_t ranks, uint32_t fullest);

// Whether a ring runs `op` step by step as TimeRingFromOneStep times it: all-reduce, all-gather,
// reduce-scatter.
inline bool IsRingFamily(CollectiveOp op) {
  return op == CollectiveOp::kAllReduce || op == CollectiveOp::kAllGather ||
         op == CollectiveOp::kReduceScatter;
}

// The steps of a ring `op` over `ranks`: an all-reduce's 2(n - 1) (reduce-scatter, then
// all-gather), an all-gather's or reduce-scatter's n - 1.
inline uint32_t RingSteps(CollectiveOp op, uint32_t ranks) {
  return (op == CollectiveOp::kAllReduce ? 2 : 1) * (ranks - 1);
}

// One step of a ring `op` (IsRingFamily) of `size` bytes over `gpus` (two or more; size > 0;
// else std::logic_error), on NCCL's ring channels (RingChannels): each rank's transfer to the
// next, channel by channel in ring order, none waiting; and how many such steps the ring takes.
struct RingStep {
  Schedule step;
  uint32_t steps = 0;
};
RingStep RingStepOf(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus,
                    CollectiveOp op, uint64_t size);

// That ring timed analytically from its one step (TimeRing, collective_time.h) without listing
// the full schedule's steps x GPUs x channels transfers: equal to the full schedule's time where
// no link carries two of a step's transfers, else no more than it and within 0.1 %
// (tests/group_comm_test.cc). The analytical model's steps time their rings so, and `moesim
// collective` rings too large to list.
CollectiveTiming TimeRingFromOneStep(const topology::Cluster& cluster,
                                     const std::vector<uint32_t>& gpus, CollectiveOp op,
                                     uint64_t size);

// The same ring at flow fidelity from its one step: the step's transfers run together in the
// flow model (RunFlows, sharing every link max-min fairly, at the protocol NCCL's tuner picks),
// and each one's time on the wire there stands for its drain in TimeRing's chains
// (TimeRingOnWire). Where a ring's channels move in lockstep, as its identical steps do, that is
// what the full flow run gives (to the picosecond on two HGX H800 at 16 MiB and 1 GiB,
// tests/group_comm_test.cc) for one step's transfers instead of all of them: `moesim collective
// --fidelity flow` rings too large to run whole. Never below TimeRingFromOneStep (a transfer is no
// faster beside others).
CollectiveTiming FlowRingFromOneStep(const topology::Cluster& cluster,
                                     const std::vector<uint32_t>& gpus, CollectiveOp op,
                                     uint64_t size);

// The only place a fidelity becomes a model; `flow` applies to the flow model only.
std::unique_ptr<NetworkModel> MakeNetworkModel(const topology::Cluster& cluster, Fidelity fidelity,
                                               FlowOptions flow = {});

// --flow-tolerance's value: within Result.flow_tolerance's declared range (0, exact, to 0.1;
// proto/checked.h's CheckFigure), and only with --fidelity flow (or,
// in `plan`, --rerank-flow: `flow_used` says whether the flow model runs); else an error naming
// the option, the value and what is valid.
StatusOr<FlowOptions> ParseFlowOptions(double tolerance, bool flow_used);

}  // namespace moesim::sim
