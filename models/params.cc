#include "models/params.h"

#include <algorithm>

#include "models/model_spec.h"

namespace moesim::models {
namespace {

using Attention = pb::AttentionSpec;

}  // namespace

AttentionShape ShapeOf(const pb::ModelSpec& spec) {
  const Attention& a = spec.attention();
  const uint64_t h = spec.hidden_size();
  // Default: one head spanning the hidden size.
  if (a.num_heads() == 0) return {1, 1, h, h};
  if (a.kind() == Attention::MLA) {
    return {a.num_heads(), a.num_heads(), uint64_t{a.qk_nope_head_dim()} + a.qk_rope_head_dim(),
            a.v_head_dim()};
  }
  const uint64_t d = a.head_dim() != 0 ? a.head_dim() : h / a.num_heads();
  const uint64_t kv = a.num_kv_heads() != 0 ? a.num_kv_heads() : a.num_heads();
  return {a.num_heads(), kv, d, d};
}

bool IsFullAttentionLayer(const pb::ModelSpec& spec, uint32_t layer) {
  const Attention& a = spec.attention();
  if (a.sliding_window() == 0) return true;
  const uint32_t every = a.full_attention_every_n_layers();
  return every != 0 && (layer + 1) % every == 0;
}

bool IsMoeLayer(const pb::ModelSpec& spec, uint32_t layer) {
  if (layer < spec.first_k_dense_layers()) return false;
  const uint32_t every = std::max(1u, spec.moe_layer_frequency());
  return (layer + 1) % every == 0;
}

uint32_t MoeLayerCount(const pb::ModelSpec& spec) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < spec.num_layers(); ++i) n += IsMoeLayer(spec, i) ? 1 : 0;
  return n;
}

uint64_t AttentionBlockParams(const pb::ModelSpec& spec) {
  const Attention& a = spec.attention();
  const uint64_t h = spec.hidden_size();
  if (a.num_heads() == 0) return 4 * h * h;
  const uint64_t heads = a.num_heads();
  if (a.kind() == Attention::MLA) {
    const uint64_t nope = a.qk_nope_head_dim(), rope = a.qk_rope_head_dim(), v = a.v_head_dim();
    const uint64_t rq = a.q_lora_rank(), rkv = a.kv_lora_rank();
    const uint64_t q = rq > 0 ? h * rq + rq * heads * (nope + rope) : h * heads * (nope + rope);
    const uint64_t kv = h * (rkv + rope) + rkv * heads * (nope + v);
    const uint64_t o = heads * v * h;
    return q + kv + o;
  }
  const AttentionShape s = ShapeOf(spec);
  const uint64_t kv_heads = a.num_kv_heads() != 0 ? a.num_kv_heads() : heads;
  return h * heads * s.qk_dim + 2 * h * kv_heads * s.qk_dim + heads * s.v_dim * h;
}

uint64_t FfnParams(const pb::ModelSpec& spec, uint64_t ffn) {
  const uint64_t matrices = spec.ffn_kind() == pb::ModelSpec::UNGATED ? 2 : 3;
  return matrices * spec.hidden_size() * ffn;
}

ModelParams CountParams(const pb::ModelSpec& spec) {
  ModelParams p;
  p.moe_layers = MoeLayerCount(spec);
  p.dense_layers = spec.num_layers() - p.moe_layers;
  p.tied_embeddings = spec.tie_word_embeddings();

  const uint64_t h = spec.hidden_size();
  const uint64_t table = uint64_t{spec.vocab_size()} * h;
  const uint64_t blocks = uint64_t{spec.num_layers()} + spec.attention().cross_attention_layers();
  const uint64_t expert = FfnParams(spec, spec.expert_ffn_size());
  const uint64_t shared_ffn =
      spec.shared_expert_ffn_size() != 0 ? spec.shared_expert_ffn_size() : spec.expert_ffn_size();

  ParamCount& t = p.total;
  t.embedding = table;
  t.unembedding = spec.tie_word_embeddings() ? 0 : table;
  t.attention = blocks * AttentionBlockParams(spec);
  t.dense_ffn = p.dense_layers * FfnParams(spec, spec.dense_ffn_size());
  // A single "expert" is a dense FFN by another name: nothing to route, no router.
  t.router = spec.num_experts() > 1 ? p.moe_layers * h * spec.num_experts() : 0;
  t.shared_experts =
      p.moe_layers * uint64_t{spec.num_shared_experts()} * FfnParams(spec, shared_ffn);
  t.routed_experts = p.moe_layers * uint64_t{spec.num_experts()} * expert;

  p.active = t;
  p.active.routed_experts = p.moe_layers * uint64_t{spec.top_k()} * expert;
  return p;
}

uint64_t ActiveParamsAsPublished(const pb::ModelSpec& spec, const ModelParams& params) {
  return spec.published_active_excludes_embedding() ? params.active_matmul_params()
                                                    : params.active_params();
}

TokenFlops ForwardFlopsPerToken(const pb::ModelSpec& spec, uint64_t seq_len) {
  TokenFlops f;
  f.matmul = 2 * CountParams(spec).active_matmul_params();
  const AttentionShape s = ShapeOf(spec);
  // Scores Q·Kᵀ: 2·c·heads·qk_dim; weighted values P·V: 2·c·heads·v_dim.
  const uint64_t per_context_token = 2 * s.heads * (s.qk_dim + s.v_dim);
  const uint64_t window = spec.attention().sliding_window();
  for (uint32_t i = 0; i < spec.num_layers(); ++i) {
    const uint64_t context = IsFullAttentionLayer(spec, i) ? seq_len : std::min(seq_len, window);
    f.attention += per_context_token * context;
  }
  f.attention += uint64_t{spec.attention().cross_attention_layers()} * per_context_token * seq_len;
  return f;
}

uint64_t TrainingFlopsPerToken(const pb::ModelSpec& spec, uint64_t seq_len) {
  return 3 * ForwardFlopsPerToken(spec, seq_len).total();
}

uint64_t MtpForwardFlopsPerToken(const pb::ModelSpec& spec, uint64_t seq_len, uint32_t depth) {
  const uint64_t h = spec.hidden_size();
  const uint32_t last = spec.num_layers() - 1;
  uint64_t ffn = FfnParams(spec, spec.dense_ffn_size());
  if (IsMoeLayer(spec, last)) {
    const uint64_t shared =
        spec.shared_expert_ffn_size() != 0 ? spec.shared_expert_ffn_size() : spec.expert_ffn_size();
    ffn = (spec.num_experts() > 1 ? h * spec.num_experts() : 0) +
          uint64_t{spec.top_k()} * FfnParams(spec, spec.expert_ffn_size()) +
          uint64_t{spec.num_shared_experts()} * FfnParams(spec, shared);
  }
  const uint64_t matmul = AttentionBlockParams(spec) + ffn + 2 * h * h + h * spec.vocab_size();
  const AttentionShape s = ShapeOf(spec);
  const uint64_t context = IsFullAttentionLayer(spec, last)
                               ? seq_len
                               : std::min<uint64_t>(seq_len, spec.attention().sliding_window());
  return depth * (2 * matmul + 2 * s.heads * (s.qk_dim + s.v_dim) * context);
}

Bytes WeightBytes(uint64_t params, pb::DType dtype) {
  return Bytes{params * BytesPerElement(dtype)};
}

namespace {

void Fill(const ParamCount& c, pb::ParamBreakdown* out) {
  out->set_embedding(c.embedding);
  out->set_unembedding(c.unembedding);
  out->set_attention(c.attention);
  out->set_dense_ffn(c.dense_ffn);
  out->set_router(c.router);
  out->set_shared_experts(c.shared_experts);
  out->set_routed_experts(c.routed_experts);
}

}  // namespace

pb::ModelSummary Summarize(const pb::ModelSpec& spec, uint64_t seq_len) {
  const ModelParams p = CountParams(spec);
  const TokenFlops f = ForwardFlopsPerToken(spec, seq_len);
  pb::ModelSummary s;
  s.set_name(spec.name());
  s.set_source(spec.source());
  s.set_num_layers(spec.num_layers());
  s.set_moe_layers(p.moe_layers);
  s.set_dense_layers(p.dense_layers);
  s.set_num_experts(spec.num_experts());
  s.set_top_k(spec.top_k());
  s.set_num_shared_experts(spec.num_shared_experts());
  s.set_dtype(spec.dtype());
  s.set_total_params(p.total_params());
  s.set_active_params(p.active_params());
  s.set_active_matmul_params(p.active_matmul_params());
  s.set_routed_expert_params(p.expert_params());
  s.set_active_routed_expert_params(p.active.routed_experts);
  s.set_non_expert_params(p.non_expert_params());
  Fill(p.total, s.mutable_total());
  Fill(p.active, s.mutable_active());
  s.set_seq_len(seq_len);
  s.set_forward_flops_per_token(f.total());
  s.set_forward_matmul_flops_per_token(f.matmul);
  s.set_forward_attention_flops_per_token(f.attention);
  s.set_training_flops_per_token(3 * f.total());
  s.set_weight_bytes(WeightBytes(p.total_params(), spec.dtype()).value);
  for (pb::DType dtype : {pb::FP32, pb::BF16, pb::FP16, pb::FP8}) {
    pb::WeightMemory* m = s.add_weight_memory();
    m->set_dtype(dtype);
    m->set_bytes(WeightBytes(p.total_params(), dtype).value);
  }
  s.set_published_total_params(spec.published_total_params());
  s.set_published_active_params(spec.published_active_params());
  return s;
}

}  // namespace moesim::models
