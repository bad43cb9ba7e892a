#include "sim/step/step_ops.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "models/memory.h"
#include "models/model_spec.h"
#include "models/params.h"
#include "sim/compute/compute_model.h"
#include "sim/compute/profile_model.h"
#include "sim/network/alltoall_low_latency.h"
#include "sim/network/group_comm.h"

namespace moesim::sim {
namespace {

models::TrafficMatrix TokensToBytes(const models::TrafficMatrix& tokens, uint64_t token_bytes) {
  models::TrafficMatrix b(tokens.ranks());
  for (uint32_t i = 0; i < tokens.ranks(); ++i) {
    for (uint32_t j = 0; j < tokens.ranks(); ++j) b.at(i, j) = tokens.at(i, j) * token_bytes;
  }
  return b;
}

// A cast of BF16 activations to FP8 for the GEMMs that read them, in both orientations: row-wise
// 1 x 128 groups for the forward and dgrad GEMMs, column-wise for wgrad (DeepSeek-V3's
// per-token-group and per-channel-group quantisation, arXiv:2412.19437 section 3.3; Transformer
// Engine's cast_transpose). It reads 2 bytes and writes 1 + 1, and an FP32 scale per 128 elements
// for each copy: 2 + 2 + 8/128 = 65/16 bytes per element.
uint64_t CastBytes(uint64_t elements) { return (elements * 65 + 15) / 16; }

// (query, key) pairs of one causal sequence of `s` tokens whose queries see at most `window` keys
// (themselves included; 0: no window): the sum over i < s of min(i + 1, window).
uint64_t CausalPairs(uint64_t s, uint64_t window) {
  if (window == 0 || window >= s) return s * (s + 1) / 2;
  return window * (window + 1) / 2 + (s - window) * window;
}

StepOp ForwardOp(const std::string& name, uint32_t layer, bool communication, bool alltoall,
                 Duration time) {
  StepOp op;
  op.name = name;
  op.pass = "forward";
  op.layer = layer;
  op.communication = communication;
  op.alltoall = alltoall;
  op.time = time;
  return op;
}

}  // namespace

LayerCoster::LayerCoster(const NetworkModel& net, const pb::ModelSpec& model,
                         const models::Plan& plan, const models::LayerWork& layer_work,
                         const StepConfig& config, const KernelModel& kernels)
    : net_(net),
      cluster_(net.cluster()),
      model_(model),
      plan_(plan),
      work_(layer_work),
      config_(config),
      kernels_(kernels) {
  const models::ParallelSizes& s = plan.sizes();
  elem_ = models::BytesPerElement(model.dtype());
  act_ = model.dtype() == pb::FP32 ? 4 : 2;
  const bool decode = config.mode == StepMode::kDecode;
  tokens_ = std::max<uint64_t>(
      1, decode ? config.micro_batch / s.cp : uint64_t{config.micro_batch} * config.seq_len / s.cp);
  moe_tokens_ = MoeTokensPerRank(plan, config);
  context_ = config.seq_len;
  const uint64_t h = model.hidden_size();
  // Sequence parallelism: the TP group gathers the sequence before a block and scatters the
  // partial sums after it; nccl-tests sizes are the full buffer.
  tp_bytes_ = tokens_ * h * elem_;
  // Each by NCCL's tuner's pick (ring, or NVLS in one NVSwitch node: TunerAlgorithms).
  tp_gather_ = net.TunedGroupCollective(plan.TpGroup(0), CollectiveOp::kAllGather, tp_bytes_).time;
  tp_scatter_ =
      net.TunedGroupCollective(plan.TpGroup(0), CollectiveOp::kReduceScatter, tp_bytes_).time;
  // Context parallelism: every rank needs the keys and values of the whole sequence.
  cp_kv_bytes_ = tokens_ * s.cp * models::KvCacheWidth(model) * elem_;
  cp_kv_ = net.TunedGroupCollective(plan.CpGroup(0), CollectiveOp::kAllGather, cp_kv_bytes_).time;
  // One token in dispatch and in combine (models/wire_dtype.h): the model's dtype, h x elem_,
  // unless the step names another.
  dispatch_token_bytes_ = models::WireTokenBytes(model, config.dispatch_dtype).value;
  combine_token_bytes_ = models::WireTokenBytes(model, config.combine_dtype).value;
  // DeepEP's normal kernels on an EP group inside one node are its intranode ones (per_rank).
  const std::vector<uint32_t> ep_group = plan.EpGroup(0);
  bool one_node = true;
  for (uint32_t gpu : ep_group)
    one_node = one_node && cluster_.router().NodeOf(gpu) == cluster_.router().NodeOf(ep_group[0]);
  const models::AllToAllAlgo algo =
      config.alltoall_algo == models::AllToAllAlgo::kDeepEpNormal && one_node
          ? models::AllToAllAlgo::kPerRank
          : config.alltoall_algo;
  // Copies per expert, or with per_rank distinct tokens per GPU (models::SentTokens).
  const models::TrafficMatrix& sent = models::SentTokens(work_, algo);
  const models::TrafficMatrix dispatch = TokensToBytes(sent, dispatch_token_bytes_);
  const models::TrafficMatrix combine = combine_token_bytes_ == dispatch_token_bytes_
                                            ? dispatch
                                            : TokensToBytes(sent, combine_token_bytes_);
  dispatch_ = GroupAllToAllV(net, ep_group, dispatch).time;
  combine_ = GroupAllToAllV(net, ep_group, combine.Transposed()).time;
  combine_bytes_ = combine.ReceivedOffRanks();  // combine returns what dispatch brought
  for (uint32_t r = 0; r < dispatch.ranks(); ++r)
    dispatch_bytes_.push_back(dispatch.SentOffRank(r));
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
  // With EP 1 no all-to-all runs (the tokens stay where they are), so no kernel's rate binds.
  if ((config.dispatch_kernel_gbps || config.combine_kernel_gbps) && ep_group.size() > 1) {
    KernelRateAllToAlls(dispatch, combine);
  }
  if (config.dispatch_rdma_kernel_gbps || config.combine_rdma_kernel_gbps) {
    RdmaKernelRateAllToAlls();
  }
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
    etp_bytes_ = uint64_t{s.etp} * most * h * elem_;
    etp_gather_ =
        net.TunedGroupCollective(plan.EtpGroup(0), CollectiveOp::kAllGather, etp_bytes_).time;
    etp_scatter_ =
        net.TunedGroupCollective(plan.EtpGroup(0), CollectiveOp::kReduceScatter, etp_bytes_).time;
  }
  const std::vector<uint32_t> pipe = plan.PpGroup(0);
  if (pipe.size() > 1) {
    p2p_bytes_ = moe_tokens_ * h * elem_;
    p2p_ = net.GroupCollective({pipe[0], pipe[1]}, CollectiveOp::kSendRecv, CollectiveAlgo::kDirect,
                               p2p_bytes_)
               .time;
  }
  TimeExperts();
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
  relayed_by_node_ = dedupe;
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

void LayerCoster::AtKernelRates(uint64_t dispatch_bytes, uint64_t combine_bytes,
                                std::optional<double> dispatch_gbps,
                                std::optional<double> combine_gbps, std::string_view kernels,
                                std::string_view unit) {
  std::string said;
  if (dispatch_gbps) {
    dispatch_ = std::max(dispatch_, TimeFor(dispatch_bytes, Rate::GigaPerSecond(*dispatch_gbps)));
    said += fmt::format("dispatch {:g}", *dispatch_gbps);
  }
  if (combine_gbps) {
    combine_ = std::max(combine_, TimeFor(combine_bytes, Rate::GigaPerSecond(*combine_gbps)));
    said += fmt::format("{}combine {:g}", said.empty() ? "" : ", ", *combine_gbps);
  }
  alltoall_source_ += fmt::format("; {} at most {} {} per GPU", kernels, said, unit);
}

void LayerCoster::KernelRateAllToAlls(const models::TrafficMatrix& dispatch,
                                      const models::TrafficMatrix& combine) {
  // A GPU's column, its own tokens included: what the benchmarks count.
  auto busiest = [](const models::TrafficMatrix& m) {
    const std::vector<uint64_t> into = m.ReceivedByRank();
    return into.empty() ? uint64_t{0} : *std::max_element(into.begin(), into.end());
  };
  AtKernelRates(busiest(dispatch), busiest(combine), config_.dispatch_kernel_gbps,
                config_.combine_kernel_gbps, "the kernels", "GB/s");
}

void LayerCoster::RdmaKernelRateAllToAlls() {
  if (!relayed_by_node_) {
    alltoall_source_ += "; the RDMA kernel rate applies to a relay deduplicated per node only";
    return;
  }
  // A GPU's tokens x the nodes each reaches, its own included: what the benchmarks count.
  const std::vector<uint64_t> sent = work_.node_tokens.SentByRank();
  const uint64_t pairs = sent.empty() ? 0 : *std::max_element(sent.begin(), sent.end());
  AtKernelRates(pairs * dispatch_token_bytes_, pairs * combine_token_bytes_,
                config_.dispatch_rdma_kernel_gbps, config_.combine_rdma_kernel_gbps,
                "the internode kernels", "GB/s (RDMA)");
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

StepOp LayerCoster::Compute(const std::string& name, uint32_t layer, const Kernels& k) const {
  StepOp op = ForwardOp(name, layer, false, false, Duration());
  for (const Kernel& x : k.forward) {
    op.time += kernels_.Time(x);
    op.work += kernels_.Work(x);
    op.kernels += kernels_.Launches(x);
  }
  for (const Kernel& x : k.backward) {
    op.backward += kernels_.Time(x);
    op.backward_work += kernels_.Work(x);
    op.backward_kernels += kernels_.Launches(x);
  }
  return op;
}

StepOp LayerCoster::Comm(const char* name, uint32_t layer, Duration time, uint64_t bytes,
                         bool alltoall) const {
  StepOp op = ForwardOp(name, layer, true, alltoall, time);
  op.work.bytes = bytes;
  op.kernels = 1;  // one NCCL (or DeepEP) kernel
  return op;
}

void LayerCoster::TensorParallel(std::vector<StepOp>& ops, uint32_t layer, const char* block,
                                 bool before) const {
  if (plan_.sizes().tp < 2) return;
  const std::string name = std::string("tp-") + (before ? "allgather-" : "reducescatter-") + block;
  StepOp op = Comm("", layer, before ? tp_gather_ : tp_scatter_, tp_bytes_);
  op.name = name;
  // The GEMM op it feeds (an all-gather) or drains (a reduce-scatter): Overlap::tp's partner.
  const std::string_view b = block;
  op.tp_gemm = b == "attention" ? (before ? "attn-qkv" : "attn-out")
               : b == "ffn"     ? "dense-ffn"
                                : std::string(b);  // "shared-expert", "lm-head"
  ops.push_back(op);
}

LayerCoster::Kernels LayerCoster::Norm(uint64_t tokens, uint64_t elements_per_feature) const {
  // With the residual add (4): the forward reads the block's output and the residual stream and
  // writes their sum (the new residual) and its normalised copy; the backward reads the output's
  // gradient, the saved sum and the residual's gradient and writes the input's gradient. Without
  // (3): read two, write one, both ways. The weight (h elements) is negligible.
  const uint64_t bytes = elements_per_feature * tokens * model_.hidden_size() * act_;
  return {{Kernel::Memory(bytes)}, {Kernel::Memory(bytes)}};
}

void LayerCoster::Linear(Kernels& gemm, Kernels& quant, GemmClass c, uint64_t m, uint64_t n,
                         uint64_t k, bool cast_input) const {
  if (m == 0 || n == 0 || k == 0) return;
  gemm.forward.push_back(Kernel::Gemm(c, {{m, n, k}}));
  // dgrad: dx[m, k] = dy[m, n] W^T[n, k]; wgrad: dW[k, n] = x^T[k, m] dy[m, n] into FP32.
  gemm.backward.push_back(Kernel::Gemm(c, {{m, k, n}}));
  gemm.backward.push_back(Kernel::Gemm(c, {{k, n, m}}, /*weight_gradient=*/true));
  if (!Fp8() || c == GemmClass::kBf16) return;
  // FP8: the input cast for the forward (and kept, column-wise, for wgrad); the output gradient's
  // for dgrad and wgrad.
  if (cast_input) quant.forward.push_back(Kernel::Memory(CastBytes(m * k)));
  quant.backward.push_back(Kernel::Memory(CastBytes(m * n)));
}

void LayerCoster::Attention(std::vector<StepOp>& ops, uint32_t layer) const {
  const uint64_t h = model_.hidden_size(), tp = plan_.sizes().tp, t = tokens_, a = act_;
  const pb::AttentionSpec& spec = model_.attention();
  const models::AttentionShape s = models::ShapeOf(model_);
  const bool mla = spec.kind() == pb::AttentionSpec::MLA;
  // Per-rank widths of q, k, v and the attention output (heads split over TP; fewer KV heads than
  // tp are replicated, one per rank; no heads given: one head of h split over tp).
  const bool no_heads = spec.num_heads() == 0;
  const uint64_t heads = no_heads ? 1 : s.heads / tp;
  const uint64_t kv_heads = no_heads ? 1 : std::max<uint64_t>(1, s.kv_heads / tp);
  const uint64_t qk = no_heads ? h / tp : s.qk_dim, v = no_heads ? h / tp : s.v_dim;
  const uint64_t q_w = heads * qk, k_w = kv_heads * qk, v_w = kv_heads * v, o_w = heads * v;

  ops.push_back(Compute("attn-norm", layer, Norm(moe_tokens_, 4)));
  TensorParallel(ops, layer, "attention", true);

  // Projections: 2 t x (the block's weights / tp) FLOPs in all (params.h's
  // AttentionBlockParams), one GEMM per weight matrix.
  Kernels quant, qkv, out;
  if (mla) {
    const uint64_t rq = spec.q_lora_rank(), rkv = spec.kv_lora_rank();
    const uint64_t nope = spec.qk_nope_head_dim(), rope = spec.qk_rope_head_dim();
    if (rq > 0) {
      Linear(qkv, quant, GemmClass::kModel, t, rq / tp, h);
      Linear(qkv, quant, GemmClass::kModel, t, heads * (nope + rope), rq);
    } else {
      Linear(qkv, quant, GemmClass::kModel, t, heads * (nope + rope), h);
    }
    // The KV down-projection reads the same input as the first Q GEMM: cast once.
    Linear(qkv, quant, GemmClass::kModel, t, (rkv + rope) / tp, h, /*cast_input=*/false);
    Linear(qkv, quant, GemmClass::kModel, t, heads * (nope + v), rkv);
    // RMSNorm of the q and kv latents: read and write t x (rq + rkv) elements; backward reads the
    // gradient and the input, writes the input's gradient.
    qkv.forward.push_back(Kernel::Memory(2 * t * (rq + rkv) * a));
    qkv.backward.push_back(Kernel::Memory(3 * t * (rq + rkv) * a));
  } else {
    Linear(qkv, quant, GemmClass::kModel, t, q_w + k_w + v_w, h);
  }
  Linear(out, quant, GemmClass::kModel, t, h, o_w);
  if (Fp8()) ops.push_back(Compute("attn-quant", layer, quant));
  ops.push_back(Compute("attn-qkv", layer, qkv));

  // RoPE rotates q and k (MLA: each head's rotary part of q and the one shared rotary key), read
  // and written; the backward rotates their gradients back.
  const uint64_t rotary =
      mla ? heads * spec.qk_rope_head_dim() + spec.qk_rope_head_dim() : q_w + k_w;
  const uint64_t rope_bytes = 2 * t * rotary * a;
  ops.push_back(
      Compute("rope", layer, {{Kernel::Memory(rope_bytes)}, {Kernel::Memory(rope_bytes)}}));
  if (plan_.sizes().cp > 1) ops.push_back(Comm("cp-allgather-kv", layer, cp_kv_, cp_kv_bytes_));

  // The core: FlashAttention over (query, key) pairs, 2 (q_w + o_w) FLOPs each (scores and the
  // weighted values), in BF16. Causal: the i-th token of a sequence attends to i + 1 tokens (a
  // sliding-window layer to at most the window), split evenly over the CP ranks. Decode: each new
  // token attends to its whole context, read from the KV cache. MLA's keys and values are
  // projected up per head before the kernel (as Megatron-Core's MLA trains).
  const uint64_t core_k = mla ? q_w : k_w, core_v = mla ? o_w : v_w;
  const uint64_t window = models::IsFullAttentionLayer(model_, layer) ? 0 : spec.sliding_window();
  uint64_t pairs = 0, seq = config_.seq_len;
  uint64_t bytes = t * a * (q_w + core_k + core_v + o_w) + 4 * t * heads;  // + the FP32 log-sum-exp
  if (config_.mode == StepMode::kDecode) {
    pairs = t * context_;
    bytes = t * a * (q_w + o_w) + t * context_ * models::KvCacheWidth(model_) * a / tp;
  } else {
    pairs = uint64_t{config_.micro_batch} * CausalPairs(config_.seq_len, window) / plan_.sizes().cp;
    if (window != 0) seq = std::min<uint64_t>(seq, window);
  }
  Kernels core;
  // The kernel's head dimension, the larger of q.k's and v's (MLA: 192), whose efficiency it runs
  // at.
  const uint64_t head_dim = std::max(qk, v);
  auto add_core = [&](uint64_t p, uint64_t length) {
    const uint64_t flops = 2 * p * (q_w + o_w);
    core.forward.push_back(Kernel::Attention(false, flops, bytes, length, head_dim));
    // FlashAttention's backward: 2.5 x the forward's FLOPs (as its benchmarks count them); it
    // reads q, k, v, o, the log-sum-exp and dO and writes dQ, dK, dV: twice the forward's bytes.
    core.backward.push_back(Kernel::Attention(true, flops * 5 / 2, 2 * bytes, length, head_dim));
  };
  add_core(pairs, seq);
  // The decoder layers of an encoder-decoder model also attend to every encoder token (seq_len
  // of them, no mask).
  if (layer + spec.cross_attention_layers() >= model_.num_layers())
    add_core(t * config_.seq_len, config_.seq_len);
  ops.push_back(Compute("attn-core", layer, core));
  ops.push_back(Compute("attn-out", layer, out));
  TensorParallel(ops, layer, "attention", false);
}

void LayerCoster::Ffn(std::vector<StepOp>& ops, uint32_t layer, const std::string& name,
                      uint64_t tokens, uint64_t ffn) const {
  const uint64_t h = model_.hidden_size();
  const bool gated = model_.ffn_kind() != pb::ModelSpec::UNGATED;
  Kernels quant, gemm;
  Linear(gemm, quant, GemmClass::kModel, tokens, (gated ? 2 : 1) * ffn, h);  // fc1: gate and up
  Linear(gemm, quant, GemmClass::kModel, tokens, h, ffn);                    // fc2: down
  // SwiGLU reads gate and up and writes their product: 3 elements per FFN feature; its backward
  // reads gate, up and the product's gradient and writes both gradients: 5. Ungated (GELU, ReLU):
  // 2 and 3.
  const uint64_t e = tokens * ffn * act_;
  const Kernels act{{Kernel::Memory((gated ? 3 : 2) * e)}, {Kernel::Memory((gated ? 5 : 3) * e)}};
  if (Fp8()) ops.push_back(Compute(name + "-quant", layer, quant));
  ops.push_back(Compute(name, layer, gemm));
  ops.push_back(Compute(name + "-act", layer, act));
}

void LayerCoster::TimeExperts() {
  // The slowest rank's experts, with the real per-expert token counts of the routing. With etp > 1
  // every ETP rank runs the tokens all its group received (etp x one rank's, the routing being the
  // same on each) through a 1/etp slice of each expert's FFN: the same FLOPs, 1/etp of the weights.
  // The same in every MoE layer of the step: timed once, here.
  const uint32_t etp = plan_.sizes().etp;
  const uint64_t h = model_.hidden_size(), f = model_.expert_ffn_size() / etp;
  const uint64_t fc1 = (model_.ffn_kind() != pb::ModelSpec::UNGATED ? 2 : 1) * f;
  for (const std::vector<uint64_t>& experts : work_.expert_tokens) {
    std::vector<GemmShape> up, down, up_d, up_w, down_d, down_w;
    uint64_t r = 0;
    local_experts_ = std::max(local_experts_, static_cast<uint32_t>(experts.size()));
    for (uint64_t tokens : experts) {
      const uint64_t n = tokens * etp;
      r += n;
      up.push_back({n, fc1, h});
      down.push_back({n, h, f});
      down_d.push_back({n, f, h});
      down_w.push_back({f, h, n});
      up_d.push_back({n, h, fc1});
      up_w.push_back({h, fc1, n});
    }
    auto time = [&](std::vector<GemmShape> shapes, bool wgrad = false) {
      return kernels_.Time(Kernel::Gemm(GemmClass::kExpert, std::move(shapes), wgrad));
    };
    auto launches = [&](const std::vector<GemmShape>& shapes) {
      return kernels_.Launches(Kernel::Gemm(GemmClass::kExpert, shapes));
    };
    // The slowest rank's time, and its launches (the most of any rank: a rank without an
    // expert's tokens skips that expert's GEMMs in the loop).
    expert_forward_ = std::max(expert_forward_, time(up) + time(down));
    expert_backward_ = std::max(expert_backward_,
                                time(down_d) + time(down_w, true) + time(up_d) + time(up_w, true));
    expert_forward_kernels_ = std::max(expert_forward_kernels_, launches(up) + launches(down));
    expert_backward_kernels_ =
        std::max(expert_backward_kernels_,
                 launches(down_d) + launches(down_w) + launches(up_d) + launches(up_w));
    auto work = [&](std::vector<GemmShape> shapes, bool wgrad = false) {
      return kernels_.Work(Kernel::Gemm(GemmClass::kExpert, std::move(shapes), wgrad));
    };
    ExpertRankWork w;
    w.forward += work(up);
    w.forward += work(down);
    for (auto* shapes : {&down_d, &up_d}) w.backward += work(*shapes);
    for (auto* shapes : {&down_w, &up_w}) w.backward += work(*shapes, true);
    if (expert_work_.empty() || r > expert_rows_) {
      expert_rows_ = r;
      expert_rows_rank_ = static_cast<uint32_t>(expert_work_.size());
    }
    expert_work_.push_back(w);
  }
}

void LayerCoster::Experts(std::vector<StepOp>& ops, uint32_t layer) const {
  const uint32_t etp = plan_.sizes().etp;
  const uint64_t h = model_.hidden_size(), f = model_.expert_ffn_size() / etp;
  const uint64_t fc1 = (model_.ffn_kind() != pb::ModelSpec::UNGATED ? 2 : 1) * f;
  const uint64_t rows = expert_rows_;  // the most token copies a rank computes
  if (etp > 1) ops.push_back(Comm("etp-allgather", layer, etp_gather_, etp_bytes_));
  // An all-to-all of each token's expert copies (direct; hierarchical, which relays the same
  // copies) delivers them source rank by source rank; a rank with several experts regroups them
  // expert by expert before its grouped GEMMs and back before combine (Megatron-Core's all-to-all
  // dispatcher, token_dispatcher.py: "Permutation 2: Sort tokens by local expert",
  // sort_chunks_by_idxs, and "Unpermutation 2"); with ep 1 the rows are in expert order already.
  // Sort: the rows and their FP32 weights read and written, 2 rows (h a + 4) bytes; unsort: the
  // rows only, 2 rows h a; each backward is the inverse copy of the same bytes. Where a token
  // arrives once per rank (per_rank, DeepEP's kernels) the receiver's expansion into expert rows is
  // the permute op: no copy more.
  const bool regroup = (config_.alltoall_algo == models::AllToAllAlgo::kDirect ||
                        config_.alltoall_algo == models::AllToAllAlgo::kHierarchical) &&
                       plan_.sizes().ep > 1 && local_experts_ > 1;
  const uint64_t sort_bytes = 2 * rows * (h * act_ + 4), unsort_bytes = 2 * rows * h * act_;
  if (regroup) {
    ops.push_back(Compute("sort-by-expert", layer,
                          {{Kernel::Memory(sort_bytes)}, {Kernel::Memory(sort_bytes)}}));
  }
  if (Fp8()) {
    // The inputs of fc1 (rows x h) and fc2 (rows x f) cast to FP8; backward the gradients of
    // fc2's output (rows x h) and fc1's (rows x fc1). (DeepEP's FP8 dispatch casts before
    // dispatch, on each token once instead of on its copies: counted here on the copies.)
    ops.push_back(
        Compute("expert-quant", layer,
                {{Kernel::Memory(CastBytes(rows * h)), Kernel::Memory(CastBytes(rows * f))},
                 {Kernel::Memory(CastBytes(rows * h)), Kernel::Memory(CastBytes(rows * fc1))}}));
  }
  StepOp expert = ForwardOp("expert", layer, false, false, expert_forward_);
  expert.backward = expert_backward_;
  expert.kernels = expert_forward_kernels_;
  expert.backward_kernels = expert_backward_kernels_;
  if (!expert_work_.empty()) {
    expert.work = expert_work_[expert_rows_rank_].forward;
    expert.backward_work = expert_work_[expert_rows_rank_].backward;
  }
  ops.push_back(expert);
  const bool gated = model_.ffn_kind() != pb::ModelSpec::UNGATED;
  const uint64_t e = rows * f * act_;  // SwiGLU as in Ffn
  ops.push_back(
      Compute("expert-act", layer,
              {{Kernel::Memory((gated ? 3 : 2) * e)}, {Kernel::Memory((gated ? 5 : 3) * e)}}));
  if (regroup) {
    ops.push_back(Compute("unsort-by-expert", layer,
                          {{Kernel::Memory(unsort_bytes)}, {Kernel::Memory(unsort_bytes)}}));
  }
  if (etp > 1) ops.push_back(Comm("etp-reducescatter", layer, etp_scatter_, etp_bytes_));
}

std::vector<StepOp> LayerCoster::Forward(uint32_t layer) const {
  const uint64_t h = model_.hidden_size(), tp = plan_.sizes().tp, t = tokens_, a = act_;
  std::vector<StepOp> ops;
  Attention(ops, layer);
  // Blocks (what recomputing a module runs again) and weight gradients (DualPipe's W): half the
  // backward of a GEMM op is its wgrad GEMMs (the same FLOPs as dgrad), none of the attention
  // core's or of a memory-bound kernel's.
  auto is_gemm = [](const std::string& n) {
    return n == "attn-qkv" || n == "attn-out" || n == "dense-ffn" || n == "router" ||
           n == "shared-expert" || n == "expert";
  };
  for (StepOp& op : ops) {
    op.block = OpBlock::kAttention;
    if (is_gemm(op.name)) op.weight_share = 0.5;
  }
  ops.push_back(Compute("ffn-norm", layer, Norm(moe_tokens_, 4)));
  const size_t block = ops.size();
  auto tag = [&](OpBlock b) {
    for (size_t i = block; i < ops.size(); ++i) {
      ops[i].block = b;
      if (is_gemm(ops[i].name)) ops[i].weight_share = 0.5;
    }
  };
  if (!models::IsMoeLayer(model_, layer)) {
    TensorParallel(ops, layer, "ffn", true);
    Ffn(ops, layer, "dense-ffn", t, model_.dense_ffn_size() / tp);
    TensorParallel(ops, layer, "ffn", false);
    tag(OpBlock::kFfn);
    return ops;
  }
  // MoE: each rank routes its own n = tokens_ / tp (sequence parallel).
  const uint64_t n = moe_tokens_, k = model_.top_k(), experts = model_.num_experts();
  const uint64_t ep = plan_.sizes().ep;
  // Router logits: a BF16 GEMM [n, h] x [h, E].
  Kernels router, unused;
  Linear(router, unused, GemmClass::kBf16, n, experts, h);
  ops.push_back(Compute("router", layer, router));
  // Scores (softmax or sigmoid, FP32) and the top-k: reads the n x E logits, writes the n x E
  // scores (kept for the backward and the load-balancing loss) and n x k int64 indices and FP32
  // weights: 8 nE + 12 nk bytes. Backward: reads the scores and the weights' gradient, writes the
  // logits' gradient: 8 nE + 4 nk.
  ops.push_back(Compute("router-topk", layer,
                        {{Kernel::Memory(8 * n * experts + 12 * n * k)},
                         {Kernel::Memory(8 * n * experts + 4 * n * k)}}));
  // Where each token goes, before any byte moves: DeepEP's get_dispatch_layout reads the n x k
  // int64 indices and writes which of the ep ranks each token reaches (n x ep bools) and the
  // counts per rank and per expert (4 (ep + E) bytes); notify_dispatch exchanges those counts (a
  // second small kernel of 4 (ep + E) bytes). Megatron-Core's all-to-all dispatcher does the same
  // with an all-to-all of counts. The backward reuses them: no kernel.
  ops.push_back(Compute("dispatch-layout", layer,
                        {{Kernel::Memory(8 * n * k + n * ep + 4 * (ep + experts)),
                          Kernel::Memory(4 * (ep + experts))},
                         {}}));
  // Permute: each token's k copies gathered into expert-major rows, n k rows read and written;
  // backward the scatter-add back: reads the n k rows' gradients, writes n rows.
  ops.push_back(
      Compute("permute", layer,
              {{Kernel::Memory(2 * n * k * h * a)}, {Kernel::Memory((n * k + n) * h * a)}}));
  ops.push_back(Comm("dispatch", layer, dispatch_,
                     *std::max_element(dispatch_bytes_.begin(), dispatch_bytes_.end()), true));
  // The dispatcher learns on the host how many tokens arrive (Megatron-Core's all-to-all
  // dispatcher's output splits, DeepEP's normal dispatch's received counts); DeepEP's low-latency
  // kernels take fixed-size buffers instead.
  ops.back().host_sync = config_.alltoall_algo != models::AllToAllAlgo::kDeepEpLowLatency;
  if (model_.num_shared_experts() > 0) {
    const uint64_t f = model_.shared_expert_ffn_size() != 0 ? model_.shared_expert_ffn_size()
                                                            : model_.expert_ffn_size();
    const size_t first = ops.size();
    TensorParallel(ops, layer, "shared-expert", true);
    Ffn(ops, layer, "shared-expert", t, uint64_t{model_.num_shared_experts()} * f / tp);
    TensorParallel(ops, layer, "shared-expert", false);
    for (size_t i = first; i < ops.size(); ++i) ops[i].shared_expert = true;
  }
  Experts(ops, layer);
  ops.push_back(Comm("combine", layer, combine_,
                     *std::max_element(combine_bytes_.begin(), combine_bytes_.end()), true));
  // Unpermute: the weighted sum of each token's k expert outputs, back in token order: reads n k
  // rows, writes n; backward reads the n output gradients and the n k saved expert outputs (for
  // the weights' gradient) and writes the n k rows' gradients.
  ops.push_back(
      Compute("unpermute", layer,
              {{Kernel::Memory((n * k + n) * h * a)}, {Kernel::Memory((2 * n * k + n) * h * a)}}));
  tag(OpBlock::kMoe);
  return ops;
}

std::vector<StepOp> LayerCoster::Backward(const std::vector<StepOp>& forward) {
  std::vector<StepOp> ops;
  for (auto it = forward.rbegin(); it != forward.rend(); ++it) {
    StepOp op = *it;
    op.pass = "backward";
    // Communication moves the same bytes (an all-gather's gradient is a reduce-scatter of the same
    // size); a compute op runs its gradient kernels.
    if (!op.communication) {
      if (op.backward == Duration()) continue;
      op.time = op.backward;
      op.work = op.backward_work;
      op.backward_work = {};
      op.kernels = op.backward_kernels;
    }
    op.host_sync = false;  // the backward's all-to-alls reuse the forward's counts
    ops.push_back(op);
  }
  return ops;
}

std::vector<StepOp> LayerCoster::Embedding() const {
  // A lookup: t rows read from the table and written; backward reads their gradients and adds
  // them into the FP32 gradient rows (read and written).
  const uint64_t rows = tokens_ * model_.hidden_size();
  return {Compute("embedding", 0,
                  {{Kernel::Memory(2 * rows * act_)}, {Kernel::Memory(rows * (act_ + 8))}})};
}

std::vector<StepOp> LayerCoster::LmHead() const {
  const uint64_t h = model_.hidden_size(), v = model_.vocab_size(), tp = plan_.sizes().tp;
  const uint32_t last = model_.num_layers() - 1;
  std::vector<StepOp> ops;
  ops.push_back(Compute("final-norm", last, Norm(moe_tokens_, 3)));
  TensorParallel(ops, last, "lm-head", true);
  // Logits over the vocabulary (split over TP) in BF16, as DeepSeek-V3 keeps its output head.
  Kernels head, unused;
  Linear(head, unused, GemmClass::kBf16, tokens_, v / tp, h);
  ops.push_back(Compute("lm-head", last, head));
  ops.back().weight_share = 0.5;
  // Cross-entropy: reads the BF16 logits and keeps their FP32 softmax for the backward
  // (Megatron-Core's vocab-parallel cross-entropy saves exp(logits)): 6 bytes a logit; backward
  // reads it and writes the logits' gradient in BF16: 6 bytes.
  const uint64_t logits = tokens_ * (v / tp);
  ops.push_back(
      Compute("loss", last, {{Kernel::Memory(6 * logits)}, {Kernel::Memory(6 * logits)}}));
  return ops;
}

// Recomputation and multi-token prediction (sim/step/step.h); the rest of the ops above.
std::vector<StepOp> LayerCoster::Recompute(const std::vector<StepOp>& forward,
                                           const RecomputeModules& modules) const {
  std::vector<StepOp> ops;
  // Only transformer layers have modules (not the embedding or the LM head alone).
  const auto attention = std::find_if(forward.begin(), forward.end(), [](const StepOp& op) {
    return op.block == OpBlock::kAttention;
  });
  if (attention == forward.end()) return ops;
  const uint32_t layer = attention->layer;
  const uint64_t h = model_.hidden_size(), tp = plan_.sizes().tp, t = tokens_;
  const pb::AttentionSpec& a = model_.attention();
  const bool mla = a.kind() == pb::AttentionSpec::MLA;
  if (modules.norm) {
    // The attention's and the FFN's norms over this rank's sequence-parallel tokens (as
    // attn-norm and ffn-norm: read 2, write 2 elements), and MLA's two latent norms over the
    // whole sequence: each reads and writes its vector.
    const uint64_t latents = mla ? uint64_t{a.q_lora_rank()} + a.kv_lora_rank() : 0;
    ops.push_back(Compute(
        "norm", layer, {{Kernel::Memory((2 * 4 * moe_tokens_ * h + 2 * t * latents) * act_)}, {}}));
  }
  if (modules.mla_up_proj && mla) {
    // q from its latent (or the input, without one), k and v from the KV latent, per head: the
    // up-projection GEMMs of attn-qkv, run again (their casts were kept).
    const uint64_t heads = a.num_heads() / tp,
                   qk = uint64_t{a.qk_nope_head_dim()} + a.qk_rope_head_dim();
    const uint64_t q_in = a.q_lora_rank() != 0 ? a.q_lora_rank() : h;
    Kernels up, unused;
    Linear(up, unused, GemmClass::kModel, t, heads * qk, q_in, /*cast_input=*/false);
    Linear(up, unused, GemmClass::kModel, t, heads * (a.qk_nope_head_dim() + a.v_head_dim()),
           a.kv_lora_rank(), /*cast_input=*/false);
    ops.push_back(Compute("mla-up-proj", layer, {up.forward, {}}));
  }
  for (const StepOp& op : forward) {
    if ((modules.mlp && op.block == OpBlock::kFfn) || (modules.moe && op.block == OpBlock::kMoe))
      ops.push_back(op);
  }
  if (modules.moe_act && !modules.moe && models::IsMoeLayer(model_, layer)) {
    // The slowest rank's copies through its experts' activation: read the g - 1 inputs (1 byte
    // each when cached in FP8), write the output.
    uint64_t copies = 0;
    for (const std::vector<uint64_t>& experts : work_.expert_tokens) {
      uint64_t c = 0;
      for (uint64_t n : experts) c += n;
      copies = std::max(copies, c);
    }
    const uint64_t f = model_.expert_ffn_size() / plan_.sizes().etp;
    const uint64_t inputs = model_.ffn_kind() == pb::ModelSpec::UNGATED ? 1 : 2;
    const uint64_t in_bytes = config_.fp8_activations ? 1 : act_;
    ops.push_back(Compute(
        "moe-act", layer,
        {{Kernel::Memory(copies * plan_.sizes().etp * f * (inputs * in_bytes + act_))}, {}}));
  }
  for (StepOp& op : ops) op.pass = "recompute";
  return ops;
}

std::vector<StepOp> LayerCoster::MtpModule(uint32_t depth) const {
  const uint64_t h = model_.hidden_size(), tp = plan_.sizes().tp;
  const uint32_t layer = model_.num_layers() + depth;
  // Combines the previous depth's hidden state with the next token's embedding: [t, 2h] x [2h, h].
  Kernels projection, quant;
  Linear(projection, quant, GemmClass::kModel, tokens_, h / tp, 2 * h);
  std::vector<StepOp> ops;
  if (Fp8()) ops.push_back(Compute("mtp-projection-quant", layer, quant));
  ops.push_back(Compute("mtp-projection", layer, projection));
  ops.back().weight_share = 0.5;
  for (const std::vector<StepOp>& part : {Forward(model_.num_layers() - 1), LmHead()}) {
    for (StepOp op : part) {
      op.layer = layer;
      ops.push_back(op);
    }
  }
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
