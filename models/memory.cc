#include "models/memory.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "models/model_spec.h"
#include "models/params.h"

namespace moesim::models {
namespace {

uint64_t CeilDiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

// Everything a layer's activations depend on, for one micro-batch on one GPU.
struct Shape {
  uint64_t e = 2;   // bytes per activation element
  uint64_t x8 = 2;  // bytes per element of a GEMM's cached input (1 with fp8_activations)
  uint64_t n = 0;   // tokens on the GPU's TP group: s·b/cp
  uint64_t s = 0;   // sequence length (keys each query sees)
  uint64_t h = 0;   // hidden size
  uint64_t t = 1;   // tp
  uint64_t sp = 1;  // tp with sequence parallelism, else 1
  uint64_t heads = 0;
  uint64_t qkv = 0;             // q + k + v widths (the attention core's inputs)
  uint64_t o = 0;               // the output projection's input width
  uint64_t latents = 0;         // MLA: r_q + r_kv + r, the down-projections' outputs
  uint64_t normed_latents = 0;  // MLA: r_q + r_kv, the up-projections' inputs
  uint64_t m = 0;               // tokens entering the MoE layer on this GPU: n / t
  uint64_t copies = 0;          // token copies reaching this GPU's experts
  uint64_t ffn_matrices = 3;    // activations kept per FFN element: 3 gated, 2 plain
};

Shape ShapeFor(const pb::ModelSpec& model, const Plan& plan, const MemoryOptions& o) {
  const ParallelSizes& z = plan.sizes();
  const pb::AttentionSpec& a = model.attention();
  Shape sh;
  sh.e = o.activation_bytes;
  sh.x8 = o.fp8_activations ? 1 : sh.e;
  sh.n = CeilDiv(o.seq_len * o.micro_batch_size, z.cp);
  sh.s = o.seq_len;
  sh.h = model.hidden_size();
  sh.t = z.tp;
  sh.sp = o.sequence_parallel ? z.tp : 1;
  // Heads for the score term; a spec without heads is taken as heads of width 128.
  sh.heads = a.num_heads() != 0 ? a.num_heads() : std::max<uint64_t>(1, sh.h / 128);
  if (a.num_heads() == 0) {
    sh.qkv = 3 * sh.h;
    sh.o = sh.h;
  } else if (a.kind() == pb::AttentionSpec::MLA) {
    // Keys and values projected up per head, as Megatron-Core's MLA keeps them.
    const uint64_t qk = uint64_t{a.qk_nope_head_dim()} + a.qk_rope_head_dim();
    sh.qkv = a.num_heads() * (2 * qk + uint64_t{a.v_head_dim()});
    sh.o = uint64_t{a.num_heads()} * a.v_head_dim();
    sh.normed_latents = uint64_t{a.q_lora_rank()} + a.kv_lora_rank();
    sh.latents = sh.normed_latents + a.qk_rope_head_dim();
  } else {
    const uint64_t d = a.head_dim() != 0 ? a.head_dim() : sh.h / a.num_heads();
    const uint64_t kv = a.num_kv_heads() != 0 ? a.num_kv_heads() : a.num_heads();
    sh.qkv = (uint64_t{a.num_heads()} + 2 * kv) * d;
    sh.o = uint64_t{a.num_heads()} * d;
  }
  sh.m = CeilDiv(sh.n, z.tp);
  sh.copies = static_cast<uint64_t>(
      std::ceil(static_cast<double>(sh.m * model.top_k() * z.etp) * o.routed_token_factor));
  sh.ffn_matrices = model.ffn_kind() == pb::ModelSpec::UNGATED ? 2 : 3;
  return sh;
}

uint64_t SharedFfn(const pb::ModelSpec& model) {
  return model.shared_expert_ffn_size() != 0 ? model.shared_expert_ffn_size()
                                             : model.expert_ffn_size();
}

// A dense FFN of width `f` over n tokens split over t: the activation's inputs (g - 1 of them)
// and its output, the down projection's input (x8).
uint64_t FfnActivations(const Shape& sh, uint64_t f) {
  return ((sh.ffn_matrices - 1) * sh.e + sh.x8) * sh.n * f / sh.t;
}

// Activations of layer `layer` for one micro-batch (the formulas in memory.h), without what
// `rc` recomputes.
uint64_t LayerActivations(const pb::ModelSpec& model, const Plan& plan, const Shape& sh,
                          uint32_t layer, const RecomputeModules& rc) {
  // Before each block: the norm's input and the dropout mask, and (unless recomputed) the
  // norm's output, the block's GEMM input.
  const uint64_t seq_region =
      ((sh.e + 1) * sh.n * sh.h + (rc.norm ? 0 : sh.x8 * sh.n * sh.h)) / sh.sp;
  uint64_t bytes = seq_region + sh.e * sh.n * sh.latents;
  if (!rc.norm) bytes += sh.x8 * sh.n * sh.normed_latents;
  if (!rc.mla_up_proj) bytes += sh.e * sh.n * sh.qkv / sh.t;
  bytes += sh.x8 * sh.n * sh.o / sh.t;
  if (!rc.attention_core) bytes += 5 * sh.heads * sh.n * sh.s / sh.t;
  bytes += seq_region;
  if (!IsMoeLayer(model, layer)) {
    return bytes + (rc.mlp ? 0 : FfnActivations(sh, model.dense_ffn_size()));
  }
  if (rc.moe) return bytes;
  const uint64_t etp = plan.sizes().etp, f = model.expert_ffn_size();
  bytes += 4 * uint64_t{model.num_experts()} * sh.m;
  // Per copy: the expert's input; the activation's inputs (FP8 when moe_act caches them so);
  // without moe_act, its output and the expert's output.
  const uint64_t per_copy =
      sh.x8 * sh.h + (rc.moe_act ? (sh.ffn_matrices - 1) * sh.x8 * f / etp
                                 : ((sh.ffn_matrices - 1) * sh.e + sh.x8) * f / etp + sh.e * sh.h);
  bytes += sh.copies * per_copy;
  bytes += uint64_t{model.num_shared_experts()} * FfnActivations(sh, SharedFfn(model));
  return bytes;
}

// Parameters of layer `layer` that are not routed experts (before any sharding).
uint64_t DenseLayerParams(const pb::ModelSpec& model, uint32_t layer) {
  const uint32_t cross = model.attention().cross_attention_layers();
  uint64_t p = AttentionBlockParams(model) * (layer + cross >= model.num_layers() ? 2 : 1);
  if (!IsMoeLayer(model, layer)) return p + FfnParams(model, model.dense_ffn_size());
  if (model.num_experts() > 1) p += uint64_t{model.hidden_size()} * model.num_experts();
  return p + uint64_t{model.num_shared_experts()} * FfnParams(model, SharedFfn(model));
}

// One pipeline stage: its parameters (before TP) and activations.
struct StageParts {
  uint32_t layers = 0;
  uint64_t kv_tokens = 0;  // inference: cached tokens of one sequence, summed over the layers
  bool moe = false;
  uint64_t dense = 0, expert = 0;  // expert: already per GPU (experts per rank, / etp)
  uint64_t per_microbatch = 0;     // activations of one micro-batch (what the schedule multiplies)
  uint64_t largest_layer = 0;      // full recomputation: one layer rebuilt at a time
  uint64_t once = 0;               // the output layers, once
};

StageParts Parts(const pb::ModelSpec& model, const Plan& plan, const MemoryOptions& options,
                 const Shape& sh, uint32_t stage) {
  const ParallelSizes& z = plan.sizes();
  const bool full = options.recompute == MemoryOptions::Recompute::kFull;
  const RecomputeModules rc = Recomputed(options.recompute, options.modules);
  const uint32_t experts_per_rank =
      options.experts_per_rank != 0 ? options.experts_per_rank : model.num_experts() / z.ep;
  const uint64_t expert_ffn = FfnParams(model, model.expert_ffn_size()) / z.etp;
  StageParts p;
  p.layers = plan.StageLayerCount(stage);
  auto add_layer = [&](uint32_t l) {
    p.dense += DenseLayerParams(model, l);
    if (IsMoeLayer(model, l)) {
      p.moe = true;
      p.expert += uint64_t{experts_per_rank} * expert_ffn;
    }
    const uint64_t all = LayerActivations(model, plan, sh, l, {});
    p.largest_layer = std::max(p.largest_layer, all);
    p.per_microbatch += full ? sh.e * sh.n * sh.h / sh.sp  // the layer's input only
                             : LayerActivations(model, plan, sh, l, rc);
  };
  const uint32_t first = plan.StageFirstLayer(stage);
  for (uint32_t l = first; l < first + p.layers; ++l) {
    add_layer(l);
    const uint64_t window = model.attention().sliding_window();
    p.kv_tokens += IsFullAttentionLayer(model, l) || window == 0
                       ? options.kv_context
                       : std::min<uint64_t>(options.kv_context, window);
  }
  const uint64_t table = uint64_t{model.vocab_size()} * model.hidden_size();
  const uint64_t output_layer = 4 * sh.n * (sh.h + model.vocab_size()) / sh.t;
  if (stage == 0) {
    p.dense += table;
    p.per_microbatch += (8 * sh.n + sh.n * sh.h) / sh.sp;  // ids, dropout mask
  }
  if (stage + 1 == z.pp) {
    // The LM head: its own table, or (tied, pp > 1) the last stage's copy of the embedding.
    if (!model.tie_word_embeddings() || z.pp > 1) p.dense += table;
    p.once += output_layer;
    // Multi-token prediction: D blocks like the last layer, each with its 2h x h projection
    // and its input (two normed h-vectors), and its own pass through the shared output head.
    for (uint32_t d = 0; d < options.mtp_depth; ++d) {
      add_layer(model.num_layers() - 1);
      p.dense += 2 * uint64_t{model.hidden_size()} * model.hidden_size();
      p.per_microbatch += sh.e * sh.n * 2 * sh.h / sh.sp;
      p.once += output_layer;
    }
  }
  return p;
}

}  // namespace

std::string ToString(const RecomputeModules& m) {
  std::string out;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!out.empty()) out += ", ";
    out += name;
  };
  add(m.norm, "norm");
  add(m.mla_up_proj, "mla_up_proj");
  add(m.attention_core, "attention_core");
  add(m.mlp, "mlp");
  add(m.moe, "moe");
  add(m.moe_act, "moe_act");
  return out.empty() ? "none" : out;
}

StatusOr<RecomputeModules> ParseRecomputeModules(const std::vector<std::string>& names,
                                                 const Location& where, std::string_view field) {
  RecomputeModules m;
  for (const std::string& name : names) {
    bool* flag = name == "norm"             ? &m.norm
                 : name == "mla_up_proj"    ? &m.mla_up_proj
                 : name == "attention_core" ? &m.attention_core
                 : name == "mlp"            ? &m.mlp
                 : name == "moe"            ? &m.moe
                 : name == "moe_act"        ? &m.moe_act
                                            : nullptr;
    if (flag == nullptr) {
      return InputError(where, std::string(field), "\"" + name + "\"", "unknown module",
                        "norm, mla_up_proj, attention_core, mlp, moe, moe_act");
    }
    *flag = true;
  }
  return m;
}

RecomputeModules Recomputed(MemoryOptions::Recompute recompute, const RecomputeModules& modules) {
  switch (recompute) {
    case MemoryOptions::Recompute::kSelective: {
      RecomputeModules m;
      m.attention_core = true;
      return m;
    }
    case MemoryOptions::Recompute::kModules:
      return modules;
    default:
      return {};
  }
}

InFlight MicroBatchesInFlight(PipelineSchedule schedule, uint32_t pp, uint32_t stage,
                              uint32_t microbatches, uint32_t virtual_stages) {
  InFlight f;
  switch (schedule) {
    case PipelineSchedule::kInterleaved: {
      const uint64_t v = std::max(virtual_stages, 1u);
      const uint64_t warmup = 2 * uint64_t{pp - stage - 1} + (v - 1) * pp + 1;
      f.chunks = std::min(uint64_t{microbatches} * v, warmup);
      f.chunk_size = static_cast<uint32_t>(v);
      f.rule = fmt::format(
          "interleaved 1F1B: 2(pp - stage - 1) + (V - 1) pp + 1 = {} chunks of 1/{}", f.chunks, v);
      return f;
    }
    case PipelineSchedule::kDualPipe:
      f.chunks = uint64_t{pp} + 1;
      f.rule =
          fmt::format("DualPipe: pp + 1 = {} of stages {} and {}", f.chunks, stage, pp - 1 - stage);
      return f;
    default:
      f.chunks = std::min(pp - stage, microbatches);
      f.rule = fmt::format("1F1B: min(pp - stage, m) = {}", f.chunks);
      return f;
  }
}

uint64_t KvCacheWidth(const pb::ModelSpec& m) {
  const pb::AttentionSpec& a = m.attention();
  if (a.kind() == pb::AttentionSpec::MLA) return uint64_t{a.kv_lora_rank()} + a.qk_rope_head_dim();
  const AttentionShape s = ShapeOf(m);
  return s.kv_heads * (s.qk_dim + s.v_dim);
}

namespace {

// KV cache elements one GPU keeps per cached token and layer: MHA/GQA split by KV head over TP
// (a GPU keeps at least one head), MLA's latent whole on every TP rank.
uint64_t KvCacheWidthPerGpu(const pb::ModelSpec& m, uint32_t tp) {
  if (m.attention().kind() == pb::AttentionSpec::MLA || tp <= 1) return KvCacheWidth(m);
  const AttentionShape s = ShapeOf(m);
  return std::max<uint64_t>(s.kv_heads / tp, 1) * (s.qk_dim + s.v_dim);
}

}  // namespace

MemoryBreakdown StageMemory(const pb::ModelSpec& model, const Plan& plan,
                            const MemoryOptions& options, uint32_t stage) {
  const ParallelSizes& z = plan.sizes();
  const Shape sh = ShapeFor(model, plan, options);
  const bool dualpipe = options.schedule == PipelineSchedule::kDualPipe && z.pp > 1;
  StageParts p = Parts(model, plan, options, sh, stage);
  if (dualpipe) {
    // The device holds a second stage: its parameters, and half the in-flight activations are
    // its micro-batches' (the mean of the two stages below).
    const StageParts q = Parts(model, plan, options, sh, z.pp - 1 - stage);
    p.layers += q.layers;
    p.moe = p.moe || q.moe;
    p.dense += q.dense;
    p.expert += q.expert;
    p.per_microbatch += q.per_microbatch;  // halved below
    p.largest_layer = std::max(p.largest_layer, q.largest_layer);
    p.once += q.once;
    p.kv_tokens += q.kv_tokens;
  }

  MemoryBreakdown m;
  m.stage = stage;
  m.micro_batch_size = options.micro_batch_size;
  m.layers = p.layers;
  m.dense_params = CeilDiv(p.dense, z.tp);
  m.expert_params = p.expert;
  const uint64_t params = m.dense_params + m.expert_params;
  m.weights = Bytes{params * BytesPerElement(model.dtype())};
  m.gradients = Bytes{params * options.grad_bytes};
  const uint64_t optimizer_bytes = model.dtype() == pb::FP32 ? 8 : 12;  // [master +] 2 moments
  m.optimizer = options.distributed_optimizer
                    ? Bytes{CeilDiv(m.dense_params * optimizer_bytes, uint64_t{z.dp} * z.cp) +
                            CeilDiv(m.expert_params * optimizer_bytes, z.edp)}
                    : Bytes{params * optimizer_bytes};

  if (options.inference) {
    // Nothing kept for a backward pass: one layer's activations at a time, the output layer, and
    // the KV cache of the micro-batch's sequences.
    m.gradients = Bytes{};
    m.optimizer = Bytes{};
    m.microbatches_in_flight = 1;
    m.in_flight_rule = "inference: one layer of one micro-batch at a time";
    m.activations_per_microbatch = Bytes{p.largest_layer + p.once};
    m.activations = m.activations_per_microbatch;
    m.kv_cache_per_sequence =
        Bytes{CeilDiv(p.kv_tokens * KvCacheWidthPerGpu(model, z.tp) * sh.e, z.cp)};
    m.kv_cache = Bytes{m.kv_cache_per_sequence.value * options.micro_batch_size};
    if (p.moe && z.ep > 1) {
      const uint64_t tokens = static_cast<uint64_t>(
          std::ceil(static_cast<double>(sh.m * model.top_k()) * options.routed_token_factor));
      m.all_to_all = Bytes{2 * sh.e * tokens * sh.h};
    }
    return m;
  }
  const uint32_t microbatches = options.num_microbatches != 0 ? options.num_microbatches : z.pp;
  const InFlight f = MicroBatchesInFlight(dualpipe   ? PipelineSchedule::kDualPipe
                                          : z.pp > 1 ? options.schedule
                                                     : PipelineSchedule::k1F1B,
                                          z.pp, stage, microbatches, options.virtual_stages);
  // DualPipe's activations are of the two stages' mean: (a + b) / 2 per micro-batch.
  const uint64_t per = dualpipe ? 2 * uint64_t{f.chunk_size} : f.chunk_size;
  m.microbatches_in_flight = static_cast<uint32_t>(CeilDiv(f.chunks, f.chunk_size));
  m.in_flight_rule = f.rule;
  m.activations_per_microbatch = Bytes{CeilDiv(p.per_microbatch, dualpipe ? 2 : 1)};
  uint64_t activations = CeilDiv(f.chunks * p.per_microbatch, per);
  if (options.recompute == MemoryOptions::Recompute::kFull) activations += p.largest_layer;
  activations += p.once;
  m.activations = Bytes{activations};
  if (p.moe && z.ep > 1) {
    const uint64_t tokens = static_cast<uint64_t>(
        std::ceil(static_cast<double>(sh.m * model.top_k()) * options.routed_token_factor));
    m.all_to_all = Bytes{2 * sh.e * tokens * sh.h};
  }
  return m;
}

MemoryBreakdown PeakMemory(const pb::ModelSpec& model, const Plan& plan,
                           const MemoryOptions& options) {
  MemoryBreakdown peak = StageMemory(model, plan, options, 0);
  for (uint32_t s = 1; s < plan.sizes().pp; ++s) {
    MemoryBreakdown m = StageMemory(model, plan, options, s);
    if (m.total() > peak.total()) peak = m;
  }
  return peak;
}

std::string FormatGigabytes(Bytes bytes) {
  return fmt::format("{:.2f} GB", static_cast<double>(bytes.value) / 1e9);
}

uint64_t MemoryBreakdown::SequencesThatFit(Bytes capacity) const {
  if (micro_batch_size == 0 || capacity.value <= weights.value) return 0;
  const double per_sequence =
      static_cast<double>(activations.value + all_to_all.value + kv_cache.value) /
      static_cast<double>(micro_batch_size);
  if (per_sequence <= 0) return 0;
  return static_cast<uint64_t>(static_cast<double>(capacity.value - weights.value) /
                               per_sequence);
}

Status MemoryBreakdown::Fits(Bytes capacity) const {
  if (total() <= capacity) return Status::Ok();
  return Error("memory: pipeline stage " + std::to_string(stage) + " needs " +
               FormatGigabytes(total()) + " per GPU (weights " + FormatGigabytes(weights) +
               ", gradients " + FormatGigabytes(gradients) + ", optimizer " +
               FormatGigabytes(optimizer) + ", activations " + FormatGigabytes(activations) +
               " for " + std::to_string(microbatches_in_flight) +
               " micro-batch(es) in flight, all-to-all buffers " + FormatGigabytes(all_to_all) +
               (kv_cache.value > 0 ? ", KV cache " + FormatGigabytes(kv_cache) : "") + "): " + FormatGigabytes(Bytes{total().value - capacity.value}) + " more than the " +
               FormatGigabytes(capacity) + " a GPU has");
}

}  // namespace moesim::models
