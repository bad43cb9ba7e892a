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
  uint64_t n = 0;   // tokens on the GPU's TP group: s·b/cp
  uint64_t s = 0;   // sequence length (keys each query sees)
  uint64_t h = 0;   // hidden size
  uint64_t t = 1;   // tp
  uint64_t sp = 1;  // tp with sequence parallelism, else 1
  uint64_t heads = 0;
  uint64_t qkvo = 0;          // q + k + v + o widths
  uint64_t m = 0;             // tokens entering the MoE layer on this GPU: n / t
  uint64_t copies = 0;        // token copies reaching this GPU's experts
  uint64_t ffn_matrices = 3;  // activations kept per FFN element: 3 gated, 2 plain
  bool scores = true;         // keep the 5·a·s² term (no selective recomputation)
};

Shape ShapeFor(const pb::ModelSpec& model, const Plan& plan, const MemoryOptions& o) {
  const ParallelSizes& z = plan.sizes();
  const pb::AttentionSpec& a = model.attention();
  Shape sh;
  sh.e = o.activation_bytes;
  sh.n = CeilDiv(o.seq_len * o.micro_batch_size, z.cp);
  sh.s = o.seq_len;
  sh.h = model.hidden_size();
  sh.t = z.tp;
  sh.sp = o.sequence_parallel ? z.tp : 1;
  // Heads for the score term; a spec without heads is taken as heads of width 128.
  sh.heads = a.num_heads() != 0 ? a.num_heads() : std::max<uint64_t>(1, sh.h / 128);
  if (a.num_heads() == 0) {
    sh.qkvo = 4 * sh.h;
  } else if (a.kind() == pb::AttentionSpec::MLA) {
    // Keys and values projected up per head, as Megatron-Core's MLA keeps them.
    const uint64_t qk = uint64_t{a.qk_nope_head_dim()} + a.qk_rope_head_dim();
    sh.qkvo = a.num_heads() * (2 * qk + 2 * uint64_t{a.v_head_dim()});
  } else {
    const uint64_t d = a.head_dim() != 0 ? a.head_dim() : sh.h / a.num_heads();
    const uint64_t kv = a.num_kv_heads() != 0 ? a.num_kv_heads() : a.num_heads();
    sh.qkvo = (2 * uint64_t{a.num_heads()} + 2 * kv) * d;
  }
  sh.m = CeilDiv(sh.n, z.tp);
  sh.copies = static_cast<uint64_t>(
      std::ceil(static_cast<double>(sh.m * model.top_k() * z.etp) * o.routed_token_factor));
  sh.ffn_matrices = model.ffn_kind() == pb::ModelSpec::UNGATED ? 2 : 3;
  // Full recomputation rebuilds the scores too (in one layer at a time); selective does not.
  sh.scores = o.recompute != MemoryOptions::Recompute::kSelective;
  return sh;
}

uint64_t SharedFfn(const pb::ModelSpec& model) {
  return model.shared_expert_ffn_size() != 0 ? model.shared_expert_ffn_size()
                                             : model.expert_ffn_size();
}

// Activations of layer `layer` for one micro-batch (the formulas in memory.h).
uint64_t LayerActivations(const pb::ModelSpec& model, const Plan& plan, const Shape& sh,
                          uint32_t layer) {
  const uint64_t seq_region = (2 * sh.e + 1) * sh.n * sh.h / sh.sp;  // LN in, GEMM in, mask
  uint64_t bytes = seq_region + sh.e * sh.n * sh.qkvo / sh.t;
  if (sh.scores) bytes += 5 * sh.heads * sh.n * sh.s / sh.t;
  bytes += seq_region;
  if (!IsMoeLayer(model, layer)) {
    return bytes + sh.e * sh.n * model.dense_ffn_size() * sh.ffn_matrices / sh.t;
  }
  const uint64_t etp = plan.sizes().etp;
  bytes += 4 * uint64_t{model.num_experts()} * sh.m;
  bytes += sh.copies * (2 * sh.e * sh.h + sh.e * sh.ffn_matrices * model.expert_ffn_size() / etp);
  bytes += uint64_t{model.num_shared_experts()} * sh.e * sh.n * SharedFfn(model) * sh.ffn_matrices /
           sh.t;
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

}  // namespace

MemoryBreakdown StageMemory(const pb::ModelSpec& model, const Plan& plan,
                            const MemoryOptions& options, uint32_t stage) {
  const ParallelSizes& z = plan.sizes();
  const Shape sh = ShapeFor(model, plan, options);
  const uint32_t first = plan.StageFirstLayer(stage);
  const uint32_t count = plan.StageLayerCount(stage);
  const bool first_stage = stage == 0, last_stage = stage + 1 == z.pp;
  const uint64_t table = uint64_t{model.vocab_size()} * model.hidden_size();
  const uint32_t experts_per_rank =
      options.experts_per_rank != 0 ? options.experts_per_rank : model.num_experts() / z.ep;

  MemoryBreakdown m;
  m.stage = stage;
  m.layers = count;
  uint64_t dense = 0, expert = 0, per_microbatch = 0, largest_layer = 0;
  bool moe = false;
  for (uint32_t l = first; l < first + count; ++l) {
    dense += DenseLayerParams(model, l);
    if (IsMoeLayer(model, l)) {
      moe = true;
      expert += uint64_t{experts_per_rank} * FfnParams(model, model.expert_ffn_size()) / z.etp;
    }
    const uint64_t a = LayerActivations(model, plan, sh, l);
    largest_layer = std::max(largest_layer, a);
    per_microbatch += options.recompute == MemoryOptions::Recompute::kFull
                          ? sh.e * sh.n * sh.h / sh.sp  // the layer's input only
                          : a;
  }
  if (first_stage) dense += table;
  // The LM head: its own table, or (tied, pp > 1) the last stage's copy of the embedding.
  if (last_stage && (!model.tie_word_embeddings() || z.pp > 1)) dense += table;
  m.dense_params = CeilDiv(dense, z.tp);
  m.expert_params = expert;

  const uint64_t params = m.dense_params + m.expert_params;
  m.weights = Bytes{params * BytesPerElement(model.dtype())};
  m.gradients = Bytes{params * options.grad_bytes};
  const uint64_t optimizer_bytes = model.dtype() == pb::FP32 ? 8 : 12;  // [master +] 2 moments
  m.optimizer = options.distributed_optimizer
                    ? Bytes{CeilDiv(m.dense_params * optimizer_bytes, uint64_t{z.dp} * z.cp) +
                            CeilDiv(m.expert_params * optimizer_bytes, z.edp)}
                    : Bytes{params * optimizer_bytes};

  const uint32_t microbatches = options.num_microbatches != 0 ? options.num_microbatches : z.pp;
  m.microbatches_in_flight = std::min(z.pp - stage, microbatches);
  if (first_stage) per_microbatch += (8 * sh.n + sh.n * sh.h) / sh.sp;  // ids, dropout mask
  m.activations_per_microbatch = Bytes{per_microbatch};
  uint64_t activations = m.microbatches_in_flight * per_microbatch;
  if (options.recompute == MemoryOptions::Recompute::kFull) activations += largest_layer;
  if (last_stage) activations += 4 * sh.n * (sh.h + model.vocab_size()) / sh.t;  // output layer
  m.activations = Bytes{activations};
  if (moe && z.ep > 1) {
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

Status MemoryBreakdown::Fits(Bytes capacity) const {
  if (total() <= capacity) return Status::Ok();
  return Error("memory: pipeline stage " + std::to_string(stage) + " needs " +
               FormatGigabytes(total()) + " per GPU (weights " + FormatGigabytes(weights) +
               ", gradients " + FormatGigabytes(gradients) + ", optimizer " +
               FormatGigabytes(optimizer) + ", activations " + FormatGigabytes(activations) +
               " for " + std::to_string(microbatches_in_flight) +
               " micro-batch(es) in flight, all-to-all buffers " + FormatGigabytes(all_to_all) +
               "): " + FormatGigabytes(Bytes{total().value - capacity.value}) + " more than the " +
               FormatGigabytes(capacity) + " a GPU has");
}

}  // namespace moesim::models
