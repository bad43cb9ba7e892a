#include "sim/moe/moe_layer.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "models/model_spec.h"
#include "models/send_matrices.h"
#include "sim/compute/compute_model.h"
#include "sim/network/alltoall_cost.h"
#include "sim/network/alltoall_hierarchical.h"
#include "sim/network/alltoall_low_latency.h"
#include "sim/network/collectives.h"

namespace moesim::sim {
namespace {

using models::TrafficMatrix;

RankCost ComputeCost(const models::OpCost& cost, Rate peak, Rate memory) {
  if (cost.flops == 0 && cost.bytes.value == 0) return {};
  const Duration flops_time = TimeFor(cost.flops, peak);
  const Duration memory_time = TransferTime(cost.bytes, memory);
  const bool flops_bound = flops_time >= memory_time;
  return RankCost{std::max(flops_time, memory_time), cost.bytes, cost.flops,
                  flops_bound ? "flops" : "memory"};
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
      const double drain = bytes / static_cast<double>(g[edge].achieved.per_second());
      l->set_utilization(drain / (static_cast<double>(worst.time.picoseconds()) / 1e12));
    }
  }
  return worst.time;
}

// A kernel's own rate (workload.dispatch_kernel_gbps, ...): each rank takes at least its `bytes`
// at `gbps`, on top of what its links allow.
void AtKernelRate(std::vector<RankCost>& ranks, const std::vector<uint64_t>& bytes,
                  std::optional<double> gbps) {
  if (!gbps) return;
  for (uint32_t r = 0; r < std::min(ranks.size(), bytes.size()); ++r) {
    const Duration floor = TimeFor(bytes[r], Rate::GigaPerSecond(*gbps));
    if (floor > ranks[r].time) {
      ranks[r].time = floor;
      ranks[r].bound = "kernel";
    }
  }
}

std::vector<uint64_t> Times(std::vector<uint64_t> tokens, Bytes token_bytes) {
  for (uint64_t& t : tokens) t *= token_bytes.value;
  return tokens;
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

// DeepEP's dispatch of one layer (sim/network/alltoall_hierarchical.h): each token crosses once per
// remote node when the layer knows its distinct tokens per node. ResolveWorkload checked that the
// ranks are whole nodes or part of one, and ExpandLayer's node counts fit its copies, so the build
// cannot fail.
// `chunk_tokens` 0: whole messages (hierarchical); else DeepEP's chunks of that many tokens
// (deepep_normal).
Schedule HierarchicalDispatch(const topology::Cluster& cluster, const models::LayerWork& layer,
                              Bytes token_bytes, uint64_t chunk_tokens = 0) {
  const TrafficMatrix& tokens = layer.dispatch_tokens;
  const TrafficMatrix node_bytes = layer.node_tokens.Scaled(token_bytes.value);
  StatusOr<Schedule> s = BuildHierarchicalAllToAllV(
      tokens.Scaled(token_bytes.value), std::min(cluster.gpus_per_node(), tokens.ranks()),
      Rail::kSource, node_bytes, chunk_tokens * token_bytes.value);
  return std::move(*s);
}

pb::Result SimulateMoeLayers(const topology::Cluster& cluster, const models::Workload& workload,
                             Fidelity fidelity, FlowOptions flow) {
  return SimulateMoeLayers(*MakeNetworkModel(cluster, fidelity, flow), workload);
}

pb::Result SimulateMoeLayers(const NetworkModel& net, const models::Workload& workload) {
  const topology::Cluster& cluster = net.cluster();
  const pb::ModelSpec& model = workload.model;
  const Rate peak = PeakFlops(cluster.gpu_spec(), model.dtype());
  const Rate hbm = cluster.gpu_spec().hbm_bandwidth;
  // What one token weighs in each direction (models/wire_dtype.h): the model's dtype unless the
  // workload names another.
  const Bytes dispatch_bytes = models::WireTokenBytes(model, workload.dispatch_dtype);
  const Bytes combine_bytes = models::WireTokenBytes(model, workload.combine_dtype);
  const uint32_t world = workload.plan.world();

  pb::Result result;
  result.set_scenario(workload.name);
  result.set_executor(std::string(ToString(net.fidelity())));
  result.set_flow_tolerance(net.flow_tolerance());
  result.set_gpus(world);
  result.set_model(model.name());

  // DeepEP's normal kernels on one node are its intranode ones (per_rank).
  const models::AllToAllAlgo algo =
      models::KernelsFor(workload.alltoall_algo, world, cluster.gpus_per_node());
  Duration total;
  for (const models::LayerWork& layer : workload.layers) {
    // Copies per expert (direct, the relays' input, the low-latency messages), or distinct tokens
    // per GPU.
    const TrafficMatrix& sent = models::SentTokens(layer, algo);
    std::vector<RankCost> router(world), expert(world);
    AllToAll dispatch_cost, combine_cost;
    Bytes dispatch_moved{sent.OffDiagonal() * dispatch_bytes.value};
    Bytes combine_moved{sent.OffDiagonal() * combine_bytes.value};
    if (models::RelaysByNode(algo)) {
      // Combine is dispatch backwards: gathered and reduced on the relay, sent back once.
      // deepep_normal forwards in chunks; hierarchical whole messages.
      const uint64_t chunk =
          algo == models::AllToAllAlgo::kDeepEpNormal ? workload.chunk_tokens : 0;
      const Schedule forward = HierarchicalDispatch(cluster, layer, dispatch_bytes, chunk);
      const Schedule backward =
          Reversed(combine_bytes == dispatch_bytes
                       ? forward
                       : HierarchicalDispatch(cluster, layer, combine_bytes, chunk));
      dispatch_cost = net.RelayedAllToAll(forward);
      combine_cost = net.RelayedAllToAll(backward);
      // What the GPUs sent, the relays' forwards included.
      dispatch_moved = combine_moved = Bytes{0};
      for (const Transfer& x : forward.transfers) dispatch_moved += Bytes{x.bytes};
      for (const Transfer& x : backward.transfers) combine_moved += Bytes{x.bytes};
    } else if (algo == models::AllToAllAlgo::kDeepEpLowLatency) {
      // One message per copy: the token and DeepEP's 16-byte header in dispatch, the expert's
      // output alone in combine (models/wire_dtype.h).
      std::vector<uint32_t> gpus(world);
      for (uint32_t r = 0; r < world; ++r) gpus[r] = r;
      const LowLatencyTraffic out = LowLatencyMessages(
          layer, dispatch_bytes.value + models::kLowLatencyHeaderBytes, /*combine=*/false);
      const LowLatencyTraffic back =
          LowLatencyMessages(layer, combine_bytes.value, /*combine=*/true);
      dispatch_cost = LowLatencyAllToAll(net, gpus, out);
      combine_cost = LowLatencyAllToAll(net, gpus, back);
      dispatch_cost.ranks.resize(world);
      combine_cost.ranks.resize(world);
      dispatch_moved = Bytes{out.bytes.OffDiagonal()};
      combine_moved = Bytes{back.bytes.OffDiagonal()};
    } else {
      dispatch_cost = net.AllToAllV(sent, dispatch_bytes);
      combine_cost = net.AllToAllV(sent.Transposed(), combine_bytes);
    }
    // The kernels' own rates bind on top of the links (with EP 1 no all-to-all runs). A combine
    // sends back what its dispatch brought.
    if (workload.plan.sizes().ep > 1) {
      const std::vector<uint64_t> received = sent.ReceivedByRank();
      AtKernelRate(dispatch_cost.ranks, Times(received, dispatch_bytes),
                   workload.dispatch_kernel_gbps);
      AtKernelRate(combine_cost.ranks, Times(received, combine_bytes),
                   workload.combine_kernel_gbps);
    }
    // No RDMA on one node.
    if (models::RelaysByNode(algo) && world > cluster.gpus_per_node()) {
      const std::vector<uint64_t> pairs = layer.node_tokens.SentByRank();
      AtKernelRate(dispatch_cost.ranks, Times(pairs, dispatch_bytes),
                   workload.dispatch_rdma_kernel_gbps);
      AtKernelRate(combine_cost.ranks, Times(pairs, combine_bytes),
                   workload.combine_rdma_kernel_gbps);
    }
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
    const topology::Graph* g = &cluster.graph();
    total += AddPhase(result, g, "router", layer.layer, router, {}, false);
    total += AddPhase(result, g, "dispatch", layer.layer, dispatch_cost.ranks, dispatch_moved, true,
                      &dispatch_cost);
    total += AddPhase(result, g, "expert", layer.layer, expert, {}, false);
    total += AddPhase(result, g, "combine", layer.layer, combine_cost.ranks, combine_moved, true,
                      &combine_cost);
    models::AddSendMatrices(result, layer.layer, sent, dispatch_bytes.value, combine_bytes.value);
  }
  result.set_total_ns(total.nanoseconds_ceil());
  return result;
}

}  // namespace moesim::sim
