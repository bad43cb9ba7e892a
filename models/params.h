// How big a model is and what one token costs, from its ModelSpec: parameters (total, active per
// token, routed experts against the rest), forward and training FLOPs per token, and the bytes its
// weights take in memory.
//
//   ModelParams p = CountParams(spec);               // mixtral-8x7b:
//   p.total_params()          == 46'702'526'464;      //   46.7e9, published 46.7B
//   p.active_params()         == 12'879'659'008;      //   12.9e9, published 12.9B
//   TokenFlops f = ForwardFlopsPerToken(spec, 4096);
//   f.total() == 2 * p.active_matmul_params() + f.attention;
//
// What is counted: every weight matrix (attention projections, FFNs, routers, embedding tables).
// Not counted: norm weights, biases, attention sinks, positional tables and multi-token-prediction
// heads, each well under 0.1% of the models in models/catalog (see each file for its
// approximations).
//
// Conventions, so numbers compare with published ones:
// - Active parameters are everything but the routed experts a token is not sent to, the embedding
//   table included (Mixtral, Qwen, DBRX count it). Some sources leave the input embedding out (it
//   is a lookup, not a matmul): that is active_matmul_params(), and ModelSpec says which one its
//   published figure is (published_active_excludes_embedding).
// - Forward FLOPs per token = 2 x active matmul parameters (one multiply and one add per weight;
//   Kaplan et al., arXiv:2001.08361, section 2.1) plus attention scores and values: per layer
//   2·c·heads·qk_dim + 2·c·heads·v_dim for c context tokens, with c the full sequence length, no
//   halving for the causal mask (as PaLM's MFU formula, Chowdhery et al., arXiv:2204.02311,
//   appendix B). Training = 3 x forward (backward costs two forwards: gradients of activations and
//   of weights).
//
// Plain functions of the spec: no state, safe from any thread. The spec must have passed
// ValidateModelSpec (positive sizes, head counts that divide).
#pragma once

#include <cstdint>

#include "proto/model.pb.h"
#include "proto/units.h"

namespace moesim::models {

// Layer i (counting from 0) has an MoE FFN: i >= first_k_dense_layers and (i + 1) is a multiple of
// moe_layer_frequency (0 or 1: every layer).
bool IsMoeLayer(const pb::ModelSpec& spec, uint32_t layer);
uint32_t MoeLayerCount(const pb::ModelSpec& spec);

// Weights of one attention block (one layer's self-attention, or a decoder layer's
// cross-attention).
//   default (no attention given): Q, K, V, O each hidden x hidden = 4·h²
//   MHA/GQA (H heads, KV key/value heads, d per head): h·H·d (Q) + 2·h·KV·d (K, V) + H·d·h (O)
//   MLA (r_q, r_kv latents; n, r, v per-head nope, rope, value widths):
//       Q  = r_q > 0 ? h·r_q + r_q·H·(n+r) : h·H·(n+r)
//       KV = h·(r_kv + r) + r_kv·H·(n+v)      (latent plus the shared rope key, then up-projection)
//       O  = H·v·h
uint64_t AttentionBlockParams(const pb::ModelSpec& spec);

// Heads and widths of one attention block, with the defaults of AttentionSpec filled in: no heads
// given is one head spanning the hidden size; kv_heads = num_heads for MHA and MLA (whose keys and
// values are projected up per head).
struct AttentionShape {
  uint64_t heads = 0;
  uint64_t kv_heads = 0;
  uint64_t qk_dim = 0;  // per-head query/key width
  uint64_t v_dim = 0;   // per-head value width
};
AttentionShape ShapeOf(const pb::ModelSpec& spec);

// Layer i attends to the whole sequence (not a sliding window).
bool IsFullAttentionLayer(const pb::ModelSpec& spec, uint32_t layer);

// Weights of one FFN of intermediate size `ffn`: 3·h·ffn (GATED) or 2·h·ffn (UNGATED).
uint64_t FfnParams(const pb::ModelSpec& spec, uint64_t ffn);

// Parameters by kind of weight, all layers together.
struct ParamCount {
  uint64_t embedding = 0;       // input embedding table: vocab x hidden
  uint64_t unembedding = 0;     // LM head: vocab x hidden; 0 when tied to the embedding
  uint64_t attention = 0;       // attention blocks of every layer, cross-attention included
  uint64_t dense_ffn = 0;       // FFNs of the dense layers
  uint64_t router = 0;          // hidden x num_experts per MoE layer (none with a single expert)
  uint64_t shared_experts = 0;  // shared experts of every MoE layer
  uint64_t routed_experts = 0;  // routed experts of every MoE layer (active: top_k of them)

  uint64_t Sum() const {
    return embedding + unembedding + attention + dense_ffn + router + shared_experts +
           routed_experts;
  }
};

struct ModelParams {
  uint32_t moe_layers = 0;
  uint32_t dense_layers = 0;
  ParamCount total;   // every weight: what must sit in memory
  ParamCount active;  // what one token uses: top_k routed experts per MoE layer, all else whole
  bool tied_embeddings = false;

  uint64_t total_params() const { return total.Sum(); }
  uint64_t active_params() const { return active.Sum(); }
  // active_params() without the input embedding lookup; with tied embeddings the one table is the
  // LM head's matmul and stays in.
  uint64_t active_matmul_params() const {
    return active.Sum() - (tied_embeddings ? 0 : active.embedding);
  }
  // Routed experts: the part expert parallelism spreads over GPUs.
  uint64_t expert_params() const { return total.routed_experts; }
  uint64_t non_expert_params() const { return total.Sum() - total.routed_experts; }
};

ModelParams CountParams(const pb::ModelSpec& spec);

// The computed active count under the convention of the spec's published figure
// (published_active_excludes_embedding), so that the two can be compared.
uint64_t ActiveParamsAsPublished(const pb::ModelSpec& spec, const ModelParams& params);

// Forward FLOPs of one token at a sequence length of `seq_len` tokens.
struct TokenFlops {
  uint64_t matmul = 0;     // 2 x active matmul parameters
  uint64_t attention = 0;  // scores (Q·K) and values (P·V) over the context of every layer
  uint64_t total() const { return matmul + attention; }
};
// Self-attention of a sliding-window layer sees min(seq_len, sliding_window) tokens;
// cross-attention sees seq_len encoder tokens.
TokenFlops ForwardFlopsPerToken(const pb::ModelSpec& spec, uint64_t seq_len);
// 3 x ForwardFlopsPerToken(...).total().
uint64_t TrainingFlopsPerToken(const pb::ModelSpec& spec, uint64_t seq_len);
// Forward FLOPs of one token through `depth` multi-token-prediction modules (DeepSeek-V3,
// arXiv:2412.19437, 2.2), each: a 2h x h projection, a block like the model's last layer (its
// attention, and its active FFN: router, top_k routed and the shared experts, or the dense FFN),
// and the shared output head (h x vocab), 2 FLOPs per weight, plus the last layer's attention
// over the context:
//   depth x (2 (attention + active FFN + 2h² + h·vocab) + 2·c·heads·(qk_dim + v_dim))
uint64_t MtpForwardFlopsPerToken(const pb::ModelSpec& spec, uint64_t seq_len, uint32_t depth);

// Bytes to hold `params` weights of `dtype` (BytesPerElement each).
Bytes WeightBytes(uint64_t params, pb::DType dtype);

// Everything above in one message: what `moesim model show --json` prints.
pb::ModelSummary Summarize(const pb::ModelSpec& spec, uint64_t seq_len);

}  // namespace moesim::models
