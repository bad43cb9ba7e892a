// Expanding one layer's routing into per-rank work: which tokens each rank sends to each other rank
// (the dispatch all-to-all; combine sends them back, the transpose), and how many tokens each local
// expert then processes (the grouped-GEMM shapes). Both executors call this, so they agree.
//
// Counting rule (Megatron-Core's all-to-all dispatcher): a token is sent once per selected expert,
// so a token whose two experts live on the same rank is sent twice. A token whose expert is on its
// own rank stays: it is counted on the diagonal and crosses no link. An expert with several
// replicas receives each token at one of them, by the rule in models/placement.h. The same copies
// are also counted as distinct tokens per destination rank (rank_tokens, what DeepEP's intranode
// dispatch sends) and per destination node (node_tokens, what its internode dispatch sends across).
// A slot holding kNotDispatched (models/routing.h: a router's drop) sends nothing and is not
// counted in `dropped`, which counts this expansion's own capacity drops only.
//
//   LayerWork w = ExpandLayer(routing, plan, placement);
//   w.dispatch_tokens.at(0, 1);    // token copies rank 0 sends to rank 1
//   w.rank_tokens.at(0, 1);        // distinct tokens among them
//   w.expert_tokens[1][0];         // tokens rank 1's first local expert processes
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "models/plan.h"
#include "models/routing.h"
#include "models/traffic_matrix.h"
#include "proto/status.h"

namespace moesim::models {

struct LayerWork {
  uint32_t layer = 0;
  // Tokens per (source, destination) in dispatch; combine is dispatch_tokens.Transposed().
  TrafficMatrix dispatch_tokens;
  // expert_tokens[rank][i]: tokens the i-th local expert (slot i of the placement's layer) of
  // `rank` processes; one entry per slot of the rank's EP rank, so ranks may differ in length.
  std::vector<std::vector<uint64_t>> expert_tokens;
  // Tokens each rank holds before dispatch (routed by its router).
  std::vector<uint64_t> tokens_in;
  // Token copies each rank dropped because an expert was over capacity (0 without a capacity).
  std::vector<uint64_t> dropped;
  // The same by logical expert: copies routed to expert e that its senders dropped (size
  // num_experts; all 0 without a capacity).
  std::vector<uint64_t> dropped_per_expert;
  // node_tokens.at(rank, node): distinct tokens of `rank` with at least one copy sent to a rank of
  // `node` (node = rank / gpus per node), its own node included; columns are nodes, so only the
  // first ceil(ranks / gpus per node) are used. A token with experts on two GPUs of one node
  // counts once: what crosses the network once under DeepEP's deduplicated dispatch
  // (sim/network/alltoall_hierarchical.h). Empty (0 ranks) when the nodes are unknown (a placement
  // without gpus_per_node, or an expected layer that SetExpectedNodeTokens has not filled, in
  // models/expected_layer.h): every copy then crosses.
  TrafficMatrix node_tokens;
  // rank_tokens.at(src, dst): distinct tokens of `src` with at least one copy sent to `dst`, the
  // diagonal included (tokens with an expert on their own rank); at most dispatch_tokens.at(src,
  // dst), and not zero where that is not. A token with two experts on one GPU counts once: what
  // crosses once to that GPU under the per-rank deduplicated dispatch (workload.alltoall_algo
  // "per_rank", DeepEP's intranode kernels), whose combine sends the GPU's reduced output back
  // once (the transpose). Empty (0 ranks) for an expected layer that SetExpectedRankTokens has not
  // filled (models/expected_layer.h): every copy then crosses.
  TrafficMatrix rank_tokens;

  uint64_t TotalDropped() const;
};

// `capacity_factor` > 0: each sender sends at most ExpertCapacity(its tokens, top_k, experts,
// capacity_factor) token copies to each expert (Megatron-Core's moe_expert_capacity_factor,
// computed per rank from its own tokens, with the "position" drop policy: the later tokens in the
// rank's order are the ones dropped); the rest are dropped, not sent and not computed. 0: no limit.
LayerWork ExpandLayer(const LayerRouting& routing, const Plan& plan,
                      const ExpertPlacement& placement, double capacity_factor = 0);

// What ExpandLayer and ExpandCounts (models/count_routing.h) share. EmptyLayerWork: layer
// `layer`'s work for `plan`'s ranks with nothing routed yet (expert_tokens sized by each rank's
// slots, zero counts, empty matrices; node_tokens only when the placement knows gpus_per_node).
// Senders in parallel chunks keep per-chunk tallies, one entry per (rank, local expert) from
// TallySlots(work)[rank], then one per logical expert's drops from TallySlots(work)[ranks];
// AddTallies adds them into expert_tokens and dropped_per_expert in chunk order (integers, so the
// same whatever the split).
LayerWork EmptyLayerWork(uint32_t layer, const Plan& plan, const ExpertPlacement& placement);
std::vector<uint64_t> TallySlots(const LayerWork& work);
void AddTallies(const std::vector<std::vector<uint64_t>>& tallies,
                const std::vector<uint64_t>& slot_first, uint32_t experts, LayerWork* work);

// How a MoE layer's dispatch and combine all-to-alls run (the scenario's workload.alltoall_algo,
// the step block's, `moesim plan --alltoall-algo`), and what crosses:
//   kDirect            one copy per selected expert (LayerWork::dispatch_tokens), all pairs at
//                      once: NCCL's grouped send/recv as Megatron-Core's all-to-all dispatcher
//                      calls it
//   kPerRank           one copy per destination GPU (LayerWork::rank_tokens), all pairs at once:
//                      DeepEP's intranode dispatch and combine
//   kHierarchical      once across the network per destination node (LayerWork::node_tokens),
//                      then NVLink, the relay forwarding each whole message once it is through
//                      (and, in steps, timed step by step with NCCL's latency model)
//   kDeepEpNormal      DeepEP's internode normal kernels: the same traffic as kHierarchical, the
//                      relay forwarding chunk by chunk (kDeepEpChunkTokens) while the next chunks
//                      cross, timed as DeepEP's own kernels (no NCCL latency model). Inside one
//                      node DeepEP runs its intranode kernels: kPerRank.
//   kDeepEpLowLatency  DeepEP's low-latency kernels: one message per (token, selected expert)
//                      (LayerWork::dispatch_tokens), RDMA writes through IBGDA to GPUs of other
//                      nodes and NVLink stores within a node, no forwarding; a NIC also spends
//                      its message rate on every message (sim/network/alltoall_low_latency.h)
enum class AllToAllAlgo { kDirect, kPerRank, kHierarchical, kDeepEpNormal, kDeepEpLowLatency };

// "direct", "per_rank", "hierarchical", "deepep_normal", "deepep_low_latency"
std::string_view ToString(AllToAllAlgo algo);
// The names above; "" (the field absent) is kDirect. Anything else is an error at `where` naming
// `field`, the value and the valid names.
StatusOr<AllToAllAlgo> ParseAllToAllAlgo(std::string_view name, const Location& where,
                                         std::string_view field);
// Whether `algo` relays through the GPU of the sender's rail on each remote node
// (sim/network/alltoall_hierarchical.h): kHierarchical and kDeepEpNormal. Both need whole nodes.
bool RelaysByNode(AllToAllAlgo algo);

// The kernels `algo` runs over `ranks` GPUs of `gpus_per_node` per node: DeepEP's normal
// kernels within one node are its intranode ones, kPerRank (deep_ep's Buffer runs
// intranode::dispatch when there is one RDMA rank); any other algorithm is itself.
AllToAllAlgo KernelsFor(AllToAllAlgo algo, uint32_t ranks, uint32_t gpus_per_node);

// Token counts a direct exchange of `layer` under `algo` sends, per (source, destination) rank:
// rank_tokens for kPerRank (dispatch_tokens where rank_tokens is empty), dispatch_tokens, the
// copies, otherwise (the relays build their schedules from the copies too).
const TrafficMatrix& SentTokens(const LayerWork& layer, AllToAllAlgo algo);

// DeepEP's `Buffer.num_sms` default, the SMs its normal kernels (intranode and internode) run on:
// 20 (deep_ep/buffers/legacy.py, `num_sms: int = 20`; DeepEP at commit dd758ca). Its kernels split
// a rank's tokens over num_sms / 2 channels, each a pair of SMs.
inline constexpr uint32_t kDeepEpNumSms = 20;
// The chunk moesim's deepep_normal relay forwards at a time, in tokens of one sender's message to
// one node: 80 = the num_sms / 2 = 10 channels DeepEP splits a rank's tokens over, each sending
// its share in RDMA chunks of num_max_rdma_chunked_send_tokens = 8 tokens (legacy.py's
// get_dispatch_config for 24 to 64 ranks, get_combine_config for 24 to 160; csrc/kernels/legacy/
// internode.cu: a channel's chunk is put with one nvshmemi_ibgda_put_nbi_warp, then the tail
// counter moves, and the relay's forwarder copies whatever has arrived to the NVLink buffers).
// All channels run at once, so a sender's message reaches the relay about 10 x 8 tokens at a
// time. workload.alltoall_chunk_tokens / step.alltoall_chunk_tokens / --alltoall-chunk-tokens
// override it.
inline constexpr uint32_t kDeepEpChunkTokens = 80;

// A scenario's alltoall_chunk_tokens (`given` whether the field is there): absent,
// kDeepEpChunkTokens; given, an integer >= 1 with kDeepEpNormal (the only algorithm that chunks).
// Anything else is an error at `where` naming `field`.
StatusOr<uint32_t> ParseChunkTokens(bool given, uint32_t value, AllToAllAlgo algo,
                                    const Location& where, std::string_view field);

// What CommSms needs besides the algorithm.
struct CommSmsInput {
  uint32_t nccl_channels = 0;  // kDirect: the channels NCCL runs the send/recv on
  uint32_t experts = 0;        // kDeepEpLowLatency: the model's routed experts
  uint32_t device_sms = 0;     // kDeepEpLowLatency: the GPU's SMs (132 on H100/H800 SXM)
};

// The SMs a dispatch or combine kernel of `algo` holds while it runs (for a step that shares SMs
// between communication and compute):
//   kDirect                     nccl_channels: NCCL runs one thread block, one SM, per channel
//   kPerRank, kHierarchical,
//   kDeepEpNormal               kDeepEpNumSms = 20 (DeepEP's Buffer.num_sms)
//   kDeepEpLowLatency           ceil(E / ceil(E / device_sms)): one SM per ceil(E / device_sms)
//                               experts (internode_ll.cu: num_warp_groups = ceil_div(num_experts,
//                               num_device_sms), num_sms = ceil_div(num_experts,
//                               num_warp_groups)); 256 experts on 132 SMs: 128. 0 when experts
//                               or device_sms is 0.
uint32_t CommSms(AllToAllAlgo algo, const CommSmsInput& input);

}  // namespace moesim::models
