#include "sim/step/step_ops.h"

#include <algorithm>
#include <cmath>

#include "models/model_spec.h"
#include "models/params.h"
#include "sim/compute/compute_model.h"
#include "sim/compute/profile_model.h"
#include "sim/network/alltoall_low_latency.h"
#include "sim/network/group_comm.h"

namespace moesim::sim {
namespace {

// Width of what one token keeps in the KV cache per layer, in elements: keys and values of every
// KV head (MHA, GQA), or MLA's latent plus its shared rotary key.
uint64_t KvWidth(const pb::ModelSpec& m) {
  const pb::AttentionSpec& a = m.attention();
  if (a.kind() == pb::AttentionSpec::MLA) return uint64_t{a.kv_lora_rank()} + a.qk_rope_head_dim();
  if (a.num_heads() == 0) return 2ull * m.hidden_size();
  const uint64_t kv_heads = a.num_kv_heads() != 0 ? a.num_kv_heads() : a.num_heads();
  const uint64_t head = a.head_dim() != 0 ? a.head_dim() : m.hidden_size() / a.num_heads();
  return 2 * kv_heads * head;
}

models::TrafficMatrix Bytes(const models::TrafficMatrix& tokens, uint64_t token_bytes) {
  models::TrafficMatrix b(tokens.ranks());
  for (uint32_t i = 0; i < tokens.ranks(); ++i) {
    for (uint32_t j = 0; j < tokens.ranks(); ++j) b.at(i, j) = tokens.at(i, j) * token_bytes;
  }
  return b;
}

}  // namespace

LayerCoster::LayerCoster(const NetworkModel& net, const pb::ModelSpec& model,
                         const models::Plan& plan, const models::LayerWork& layer_work,
                         const StepConfig& config)
    : net_(net),
      cluster_(net.cluster()),
      model_(model),
      plan_(plan),
      work_(layer_work),
      config_(config) {
  const topology::Cluster& cluster = cluster_;
  const models::ParallelSizes& s = plan.sizes();
  elem_ = models::BytesPerElement(model.dtype());
  const bool decode = config.mode == StepMode::kDecode;
  tokens_ = std::max<uint64_t>(
      1, decode ? config.micro_batch / s.cp : uint64_t{config.micro_batch} * config.seq_len / s.cp);
  moe_tokens_ = MoeTokensPerRank(plan, config);
  context_ = config.seq_len;
  const uint64_t h = model.hidden_size();
  // Sequence parallelism: the TP group gathers the sequence before a block and scatters the
  // partial sums after it; nccl-tests sizes are the full buffer.
  tp_gather_ = net.GroupCollective(plan.TpGroup(0), CollectiveOp::kAllGather, CollectiveAlgo::kRing,
                                   tokens_ * h * elem_)
                   .time;
  tp_scatter_ = net.GroupCollective(plan.TpGroup(0), CollectiveOp::kReduceScatter,
                                    CollectiveAlgo::kRing, tokens_ * h * elem_)
                    .time;
  // Context parallelism: every rank needs the keys and values of the whole sequence.
  cp_kv_ = net.GroupCollective(plan.CpGroup(0), CollectiveOp::kAllGather, CollectiveAlgo::kRing,
                               tokens_ * s.cp * KvWidth(model) * elem_)
               .time;
  rates_ = StepComputeRates(cluster, model.dtype(), config);
  // One token in dispatch and in combine (models/wire_dtype.h): the model's dtype, h x elem_,
  // unless the step names another.
  dispatch_token_bytes_ = models::WireTokenBytes(model, config.dispatch_dtype).value;
  combine_token_bytes_ = models::WireTokenBytes(model, config.combine_dtype).value;
  // DeepEP's normal kernels on an EP group inside one node are its intranode ones (per_rank).
  const std::vector<uint32_t> ep_group = plan.EpGroup(0);
  bool one_node = true;
  for (uint32_t gpu : ep_group)
    one_node = one_node && cluster.router().NodeOf(gpu) == cluster.router().NodeOf(ep_group[0]);
  const models::AllToAllAlgo algo =
      config.alltoall_algo == models::AllToAllAlgo::kDeepEpNormal && one_node
          ? models::AllToAllAlgo::kPerRank
          : config.alltoall_algo;
  // Copies per expert, or with per_rank distinct tokens per GPU (models::SentTokens).
  const models::TrafficMatrix& sent = models::SentTokens(work_, algo);
  const models::TrafficMatrix dispatch = Bytes(sent, dispatch_token_bytes_);
  const models::TrafficMatrix combine =
      combine_token_bytes_ == dispatch_token_bytes_ ? dispatch : Bytes(sent, combine_token_bytes_);
  dispatch_ = GroupAllToAllV(net, ep_group, dispatch).time;
  combine_ = GroupAllToAllV(net, ep_group, combine.Transposed()).time;
  if (algo == models::AllToAllAlgo::kPerRank) {
    alltoall_source_ = &sent == &work_.rank_tokens
                           ? "network model, per_rank (one copy per destination GPU)"
                           : "network model, direct (per_rank needs each token's GPUs: this "
                             "layer has only its copies)";
    if (config.alltoall_algo == models::AllToAllAlgo::kDeepEpNormal)
      alltoall_source_ += "; deepep_normal on one node runs DeepEP's intranode kernels";
  }
  if (models::RelaysByNode(algo)) HierarchicalAllToAlls(dispatch, combine);
  if (algo == models::AllToAllAlgo::kDeepEpLowLatency) LowLatencyAllToAlls();
  if (config.hardware) ProfileAllToAlls(*config.hardware);
  if (config.dispatch_dtype || config.combine_dtype) {
    auto name = [&](std::optional<models::WireDtype> d) {
      return d ? std::string(models::ToString(*d)) : pb::DType_Name(model.dtype());
    };
    alltoall_source_ += "; a token is " + std::to_string(dispatch_token_bytes_) + " B in " +
                        name(config.dispatch_dtype) + " dispatch, " +
                        std::to_string(combine_token_bytes_) + " B in " +
                        name(config.combine_dtype) + " combine";
  }
  // Expert tensor parallelism (Megatron-Core's all-to-all dispatcher with etp > 1): each ETP rank
  // received its own tokens for the EP rank's experts; the ETP group all-gathers them so every
  // member runs every token through its 1/etp slice of each expert, and reduce-scatters the partial
  // outputs back before combine. Sized by the EP rank that received the most (nccl-tests sizes:
  // the whole gathered buffer), the same on every ETP group.
  if (s.etp > 1) {
    const std::vector<uint64_t> received = work_.dispatch_tokens.ReceivedOffRanks();
    uint64_t most = 0;
    for (uint32_t r = 0; r < s.ep; ++r)
      most = std::max(most, received[r] + work_.dispatch_tokens.at(r, r));
    const uint64_t gathered = uint64_t{s.etp} * most * h * elem_;
    etp_gather_ = net.GroupCollective(plan.EtpGroup(0), CollectiveOp::kAllGather,
                                      CollectiveAlgo::kRing, gathered)
                      .time;
    etp_scatter_ = net.GroupCollective(plan.EtpGroup(0), CollectiveOp::kReduceScatter,
                                       CollectiveAlgo::kRing, gathered)
                       .time;
  }
  const std::vector<uint32_t> pipe = plan.PpGroup(0);
  if (pipe.size() > 1) {
    p2p_ = net.GroupCollective({pipe[0], pipe[1]}, CollectiveOp::kSendRecv, CollectiveAlgo::kDirect,
                               moe_tokens_ * h * elem_)
               .time;
  }
}

void LayerCoster::HierarchicalAllToAlls(const models::TrafficMatrix& dispatch_bytes,
                                        const models::TrafficMatrix& combine_bytes) {
  const std::vector<uint32_t> group = plan_.EpGroup(0);
  const uint32_t g = GroupGpusPerNode(cluster_, group);
  if (g == 0) {
    alltoall_source_ = "network model, direct (" +
                       std::string(models::ToString(config_.alltoall_algo)) +
                       " needs an EP group over several nodes with as many of its GPUs on each)";
    return;
  }
  // DeepEP's deduplication needs each token's nodes (node_tokens: ExpandLayer counts them, plan
  // search estimates them), by whole nodes of the cluster, which are the group's when it fills
  // them.
  const bool fills = GroupFillsNodes(cluster_, group);
  const bool dedupe = work_.node_tokens.ranks() == group.size() && fills;
  const models::TrafficMatrix dispatch_node_bytes =
      dedupe ? work_.node_tokens.Scaled(dispatch_token_bytes_) : models::TrafficMatrix{};
  const models::TrafficMatrix combine_node_bytes =
      dedupe ? work_.node_tokens.Scaled(combine_token_bytes_) : models::TrafficMatrix{};
  const char* copies = dedupe  ? "deduplicated per node"
                       : fills ? "every copy crosses: no per-token routing"
                               : "every copy crosses: the EP group does not fill whole nodes";
  if (config_.alltoall_algo == models::AllToAllAlgo::kDeepEpNormal) {
    // DeepEP's kernels: chunks of chunk_tokens, no NCCL latency model.
    const uint64_t chunk = config_.chunk_tokens;
    dispatch_ = GroupDeepEpAllToAllV(net_, group, dispatch_bytes, dispatch_node_bytes,
                                     chunk * dispatch_token_bytes_, /*reversed=*/false)
                    ->time;
    combine_ = GroupDeepEpAllToAllV(net_, group, combine_bytes, combine_node_bytes,
                                    chunk * combine_token_bytes_, /*reversed=*/true)
                   ->time;
    alltoall_source_ = std::string("network model, deepep_normal (DeepEP internode kernels, ") +
                       copies + ", the relay forwarding chunks of " + std::to_string(chunk) +
                       " tokens)";
    return;
  }
  dispatch_ = GroupHierarchicalAllToAllV(net_, group, dispatch_bytes, dispatch_node_bytes,
                                         /*reversed=*/false)
                  ->time;
  combine_ = GroupHierarchicalAllToAllV(net_, group, combine_bytes, combine_node_bytes,
                                        /*reversed=*/true)
                 ->time;
  alltoall_source_ = std::string("network model, hierarchical (DeepEP, ") + copies + ")";
}

void LayerCoster::LowLatencyAllToAlls() {
  const std::vector<uint32_t> group = plan_.EpGroup(0);
  // One message per copy: the token and DeepEP's 16-byte header in dispatch, the expert's output
  // alone in combine (models/wire_dtype.h).
  const LowLatencyTraffic out = LowLatencyMessages(
      work_, dispatch_token_bytes_ + models::kLowLatencyHeaderBytes, /*combine=*/false);
  const LowLatencyTraffic back =
      LowLatencyMessages(work_, combine_token_bytes_, /*combine=*/true);
  dispatch_ = Slowest(LowLatencyAllToAll(net_, group, out)).time;
  combine_ = Slowest(LowLatencyAllToAll(net_, group, back)).time;
  alltoall_source_ =
      "network model, deepep_low_latency (DeepEP low-latency kernels: a message per token and "
      "expert, RDMA across nodes, NVLink within one; " +
      std::to_string(kConnectX7MessagesPerSecond / 1'000'000) + "M messages/s per NIC)";
}

void LayerCoster::ProfileAllToAlls(const pb::HardwareProfile& profile) {
  const std::vector<uint32_t> group = plan_.EpGroup(0);
  const models::TrafficMatrix& tokens = models::SentTokens(work_, config_.alltoall_algo);
  auto link_class = GroupLinkClass(cluster_, tokens, group);
  if (!link_class.ok()) {
    alltoall_source_ = "network model (profile " + profile.name() +
                       " not used: " + link_class.error().message() + ")";
    return;
  }
  Duration times[2];
  const char* names[2] = {"dispatch", "combine"};
  for (int c = 0; c < 2; ++c) {
    const pb::LinkProfile* link = FindLinkProfile(profile, *link_class, names[c]);
    if (link == nullptr) {
      alltoall_source_ = "network model (profile " + profile.name() + " has no " + *link_class +
                         " " + names[c] + " entry)";
      return;
    }
    const models::TrafficMatrix m = c == 0 ? tokens : tokens.Transposed();
    const uint64_t token_bytes = c == 0 ? dispatch_token_bytes_ : combine_token_bytes_;
    double slowest = 0;
    for (uint32_t r = 0; r < m.ranks(); ++r)
      slowest = std::max(slowest, AllToAllRankNs(*link, AllToAllWorkOf(m, token_bytes, r)));
    times[c] = Duration::Picoseconds(static_cast<int64_t>(std::ceil(slowest * 1e3)));
  }
  dispatch_ = times[0];
  combine_ = times[1];
  alltoall_source_ = "profile " + profile.name() + ": " + *link_class + " dispatch/combine";
}

StepOp LayerCoster::Compute(const char* name, uint32_t layer, uint64_t flops,
                            uint64_t bytes) const {
  return StepOp{name, "forward", layer, false, false, ComputeTime(rates_, flops, bytes)};
}

StepOp LayerCoster::Comm(const char* name, uint32_t layer, Duration time, bool alltoall) const {
  return StepOp{name, "forward", layer, true, alltoall, time};
}

void LayerCoster::TensorParallel(std::vector<StepOp>& ops, uint32_t layer, const char* block,
                                 bool before) const {
  if (plan_.sizes().tp < 2) return;
  const std::string name = std::string("tp-") + (before ? "allgather-" : "reducescatter-") + block;
  StepOp op = Comm("", layer, before ? tp_gather_ : tp_scatter_);
  op.name = name;
  ops.push_back(op);
}

std::vector<StepOp> LayerCoster::Forward(uint32_t layer) const {
  const uint64_t h = model_.hidden_size(), tp = plan_.sizes().tp, t = tokens_;
  std::vector<StepOp> ops;
  // Attention: projections (2 FLOPs per weight per token) and the core over the context
  // (the per-layer share of params.h's attention FLOPs), split over the TP group.
  TensorParallel(ops, layer, "attention", true);
  const uint64_t attn_params = models::AttentionBlockParams(model_);
  const uint64_t core_per_token =
      models::ForwardFlopsPerToken(model_, context_).attention / model_.num_layers();
  uint64_t attn_bytes = (attn_params / tp + 4 * t * h) * elem_;
  // Decode reads the whole KV cache of its context.
  if (config_.mode == StepMode::kDecode) attn_bytes += t * context_ * KvWidth(model_) * elem_ / tp;
  ops.push_back(
      Compute("attention", layer, (2 * t * attn_params + t * core_per_token) / tp, attn_bytes));
  if (plan_.sizes().cp > 1) ops.push_back(Comm("cp-allgather-kv", layer, cp_kv_));
  TensorParallel(ops, layer, "attention", false);

  if (!models::IsMoeLayer(model_, layer)) {
    TensorParallel(ops, layer, "ffn", true);
    const uint64_t f = model_.dense_ffn_size(), p = models::FfnParams(model_, f);
    ops.push_back(
        Compute("dense-ffn", layer, 2 * t * p / tp, (p / tp + 2 * t * h + 3 * t * f / tp) * elem_));
    TensorParallel(ops, layer, "ffn", false);
    return ops;
  }
  // MoE: each rank routes its own tokens_ / tp (sequence parallel).
  const uint64_t n = moe_tokens_, k = model_.top_k();
  const models::OpCost router = models::RouterCost(model_, n);
  ops.push_back(Compute("router", layer, router.flops, router.bytes.value));
  ops.push_back(Compute("permute", layer, 0, 2 * n * k * h * elem_));
  ops.push_back(Comm("dispatch", layer, dispatch_, true));
  if (model_.num_shared_experts() > 0) {
    const uint64_t f = model_.shared_expert_ffn_size() != 0 ? model_.shared_expert_ffn_size()
                                                            : model_.expert_ffn_size();
    const uint64_t p = uint64_t{model_.num_shared_experts()} * models::FfnParams(model_, f);
    const size_t first = ops.size();
    TensorParallel(ops, layer, "shared-expert", true);
    ops.push_back(Compute("shared-expert", layer, 2 * t * p / tp,
                          (p / tp + 2 * t * h + 3 * t * f / tp) * elem_));
    TensorParallel(ops, layer, "shared-expert", false);
    for (size_t i = first; i < ops.size(); ++i) ops[i].shared_expert = true;
  }
  // The slowest rank's experts, with the real per-expert token counts of the routing. With etp > 1
  // every ETP rank runs the tokens all its group received (etp x one rank's, the routing being the
  // same on each) through a 1/etp slice of each expert's FFN: the same FLOPs, 1/etp of the weights.
  const uint32_t etp = plan_.sizes().etp;
  if (etp > 1) ops.push_back(Comm("etp-allgather", layer, etp_gather_));
  pb::ModelSpec slice = model_;
  slice.set_expert_ffn_size(model_.expert_ffn_size() / etp);
  Duration slowest;
  for (std::vector<uint64_t> experts : work_.expert_tokens) {
    for (uint64_t& n : experts) n *= etp;
    slowest = std::max(slowest, ExpertTime(rates_, slice, experts));
  }
  ops.push_back(StepOp{"expert", "forward", layer, false, false, slowest});
  if (etp > 1) ops.push_back(Comm("etp-reducescatter", layer, etp_scatter_));
  ops.push_back(Comm("combine", layer, combine_, true));
  // Weighted sum of each token's k expert outputs back in token order.
  ops.push_back(Compute("unpermute", layer, 2 * n * k * h, (n * k + n) * h * elem_));
  return ops;
}

std::vector<StepOp> LayerCoster::Backward(const std::vector<StepOp>& forward) {
  std::vector<StepOp> ops(forward.rbegin(), forward.rend());
  for (StepOp& op : ops) {
    op.pass = "backward";
    // Gradients of activations and of weights: two GEMMs per forward GEMM. Communication moves
    // the same bytes (an all-gather's gradient is a reduce-scatter of the same size).
    if (!op.communication) op.time = op.time + op.time;
  }
  return ops;
}

std::vector<StepOp> LayerCoster::Embedding() const {
  return {Compute("embedding", 0, 0, 2 * tokens_ * model_.hidden_size() * elem_)};
}

std::vector<StepOp> LayerCoster::LmHead() const {
  const uint64_t h = model_.hidden_size(), v = model_.vocab_size(), tp = plan_.sizes().tp;
  const uint32_t last = model_.num_layers() - 1;
  std::vector<StepOp> ops;
  TensorParallel(ops, last, "lm-head", true);
  // Logits over the vocabulary (split over TP), read back in fp32 by the loss.
  ops.push_back(Compute("lm-head", last, 2 * tokens_ * h * v / tp,
                        (h * v / tp + tokens_ * h) * elem_ + tokens_ * v / tp * 4));
  return ops;
}

uint64_t MoeTokensPerRank(const models::Plan& plan, const StepConfig& config) {
  const models::ParallelSizes& s = plan.sizes();
  const uint64_t chunk = config.mode == StepMode::kDecode
                             ? config.micro_batch
                             : uint64_t{config.micro_batch} * config.seq_len;
  return std::max<uint64_t>(1, chunk / (uint64_t{s.tp} * s.cp));
}

}  // namespace moesim::sim
