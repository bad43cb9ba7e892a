// Memory per GPU for training a model under a plan: weights, gradients, optimizer states,
// activations and all-to-all buffers, for one pipeline stage or the fullest one.
//
//   MemoryOptions o;  o.seq_len = 4096;  o.micro_batch_size = 1;  o.num_microbatches = 32;
//   MemoryBreakdown m = PeakMemory(model, plan, o);
//   Status fits = m.Fits(Bytes{80'000'000'000});
//   // "memory: pipeline stage 0 needs 141.06 GB per GPU (weights 3.75 GB, ...): 61.06 GB more
//   //  than the 80.00 GB a GPU has"  (Mixtral-8x7B, tp 1 ep 8 pp 4, s 4096, no recomputation)
//
// Parameters on a GPU of stage p (layers of the stage from the plan):
//   dense  = [attention (+ cross-attention) + dense FFN or (router + shared experts) per layer
//             + embedding table on the first stage + LM head on the last] / tp
//            (tied embeddings: the last stage holds its own copy when pp > 1, as Megatron-Core)
//   expert = per MoE layer: physical experts per EP rank x expert FFN / etp
// Bytes per parameter (mixed precision, Megatron-Core defaults):
//   weights   = the model's dtype (BF16: 2)
//   gradients = grad_bytes (fp32 main gradients: 4)
//   optimizer = Adam: fp32 master copy + two moments = 12 (8 when the weights are FP32 already);
//               with the distributed optimizer (ZeRO-1) dense ones are sharded over dp x cp,
//               expert ones over edp.
// Activations of one micro-batch, per layer, in bytes, following Korthikanti et al. 2022
// ("Reducing Activation Recomputation in Large Transformer Models", arXiv:2205.05198, Table 2),
// with e = 2 bytes per element, n = s·b/cp tokens on the GPU's TP group, t = tp, sp = t with
// sequence parallelism (else 1), a heads, and q, k, v, o the widths of Q, K, V and the output
// projection's input (all = h for MHA; GQA's K and V are narrower). Each term names the module
// whose recomputation drops it ([module], Megatron-Core's recompute_modules, see Recompute below);
// x8 marks the inputs of GEMMs, kept at 1 byte per element instead of e with fp8_activations
// (DeepSeek-V3, arXiv:2412.19437, 3.3.2: FP8 GEMM inputs cached in FP8):
//   attention: (e·n·h [LN input] + e·n·h [QKV input: norm, x8] + n·h [dropout mask]) / sp
//              + MLA only: e·n·(r_q + r_kv + r) [latents before their norms]
//                          + e·n·(r_q + r_kv) [normed latents: norm, x8]
//                (Megatron-Core's MLA does not split the down-projections over TP: no / t)
//              + e·n·(q + k + v) / t [mla_up_proj; for MHA/GQA the QKV projection's output]
//              + e·n·o / t [x8]                                           -> 8nh / t for MHA
//              + 5·a·n·s / t  [attention_core: softmax out 2, dropout mask 1, dropout out 2;
//                              what flash attention never keeps]
//   dense MLP: (e·n·h [LN input] + e·n·h [FFN input: norm, x8] + n·h [mask]) / sp
//              + [mlp] e·n·f·(g - 1) / t [the activation's inputs: gate and up | fc1]
//                      + e·n·f / t [its output, the down projection's input, x8]
//              (g = 3 gated, 2 plain; f = 4h plain gives the paper's 19sbh: together
//              34·s·b·h + 5·a·s²·b for t = 1)
//   MoE MLP:   5·n·h / sp as the dense MLP
//              + [moe] 4·E·m [router probabilities, fp32]
//              + [moe] c·(e·h [expert input, x8] + e·(g - 1)·f/etp [activation inputs]
//                        + e·f/etp [activation output: moe_act, x8]
//                        + e·h [expert output, kept for the weighted combine: moe_act])
//              + [moe] shared experts as dense MLPs of their size
//              where m = n/t tokens enter the MoE layer on each GPU (Megatron-Core requires
//              sequence parallelism for MoE with TP > 1: the layer sees the sequence-parallel
//              slice) and c = m·top_k·etp·routed_token_factor
//              token copies reach its experts (the mean over EP ranks when the factor is 1).
//              moe_act recomputes the experts' activation from its inputs, which DeepSeek-V3
//              caches in FP8 (3.3.2 (2); 1 byte with fp8_activations), and applies the router's
//              probabilities inside it (Megatron-Core's weighted SwiGLU): the gate's gradient
//              then needs the recomputed activation, not the expert output, which goes too.
//   full recomputation keeps only each layer's input, e·n·h/sp, plus one layer's activations
//   (nothing recomputed) while it is recomputed.
// Micro-batches in flight, by pipeline schedule (in units of one micro-batch through one stage):
//   1F1B: stage p holds min(pp - p, m).
//   interleaved 1F1B with V virtual stages (Narayanan et al. 2021, arXiv:2104.04473): device p
//     holds min(m·V, 2(pp - p - 1) + (V - 1)·pp + 1) chunks of 1/V of its layers (Megatron-Core's
//     warm-up count in schedules.py plus the one in flight); on device 0 that is
//     pp·(1 + (pp - 1)/(pp·V)) micro-batches, Megatron's interleaved_schedule_memory_penalty
//     (megatron/training/theoretical_memory_usage.py).
//   DualPipe (DeepSeek-V3 report 3.2.1, Table 2; github.com/deepseek-ai/DualPipe README): device p
//     holds stages p and pp - 1 - p (parameters, gradients and optimizer states of both: the
//     table's 2x) and pp + 1 micro-batches of the mean of the two stages' activations.
// The first stage adds token ids (8 bytes each) and the embedding dropout mask per micro-batch in
// flight; the last the output layer (Megatron-Core's estimator: 4·n·h + 4·n·vocab bytes, / t)
// once, and with mtp_depth D the multi-token-prediction modules (DeepSeek-V3 2.2: each one
// transformer block, MoE like the model's last layer, and a 2h x h projection; the embedding and
// output head shared with the main model): D x (that layer's parameters + 2h², its activations +
// e·n·2h / sp of projection input) and D more output layers.
// All-to-all buffers (ep > 1): dispatch and combine each hold m·top_k·routed_token_factor tokens
// of e·h bytes: 2·e·m·top_k·h.
// Inference (prefill, decode; MemoryOptions::inference): no gradients and no optimizer states;
// activations are those of one layer of one micro-batch (nothing is kept for a backward pass,
// so the largest layer's, Korthikanti's counts without recomputation: an upper bound on a
// forward's transients) plus the output layer; and the KV cache: per sequence, per layer of the
// stage, kv_context tokens (min(kv_context, sliding_window) in a sliding-window layer, / cp) of
// KvCacheWidth elements at e bytes, split over TP by KV head for MHA/GQA (max(kv_heads / tp, 1)
// heads on a GPU) and whole on every TP rank for MLA's latent (as vLLM and SGLang keep it).
// Not counted: norm weights, biases, CUDA context and allocator fragmentation, cross-attention
// activations and cross-attention KV.
//
// Plain functions; no state, safe from any thread. Requires a plan resolved for the model.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "models/plan.h"
#include "proto/model.pb.h"
#include "proto/status.h"
#include "proto/units.h"

namespace moesim::models {

// What the backward pass recomputes instead of keeping, by module: Megatron-Core's
// recompute_modules (megatron/core/transformer/transformer_config.py: "layernorm",
// "mla_up_proj", "core_attn", "mlp", "moe", "moe_act"), under the names moesim's scenarios use.
// The memory each drops is in the formulas above; the time each costs is sim/step/step.h's.
struct RecomputeModules {
  bool norm = false;            // "norm": the RMSNorm/LayerNorm outputs (the GEMMs' inputs)
  bool mla_up_proj = false;     // "mla_up_proj": MLA's up-projected q, k, v (MLA models only)
  bool attention_core = false;  // "attention_core": the attention scores (flash attention)
  bool mlp = false;             // "mlp": the dense FFN's intermediates
  bool moe = false;             // "moe": the whole MoE block, dispatch and combine included
  bool moe_act = false;         // "moe_act": the routed experts' activation output

  bool any() const { return norm || mla_up_proj || attention_core || mlp || moe || moe_act; }
  bool operator==(const RecomputeModules&) const = default;
};

// The names above, in that order, joined by ", "; "none" when empty.
std::string ToString(const RecomputeModules& modules);
// `names` (each one of the names above; repeats allowed) as modules; an unknown one is an error
// at `where` naming `field`, the value and the valid names.
StatusOr<RecomputeModules> ParseRecomputeModules(const std::vector<std::string>& names,
                                                 const Location& where, std::string_view field);

// Which pipeline schedule keeps activations in flight (the counts above; the times are
// sim/step/schedule.h's).
enum class PipelineSchedule {
  k1F1B,         // PipeDream-Flush / Megatron's 1F1B
  kInterleaved,  // Megatron's interleaved 1F1B, virtual_stages chunks per device
  kDualPipe,     // DeepSeek-V3's bidirectional schedule
};

struct MemoryOptions {
  enum class Recompute {
    kNone,       // keep every activation
    kSelective,  // recompute the attention core: no 5·a·s² term (what flash attention also gives)
    kFull,       // keep each layer's input only, recompute the layer in the backward pass
    kModules,    // recompute `modules` (below)
  };
  // Tokens per sequence (s). Required (>= 1).
  uint64_t seq_len = 4096;
  // Sequences per micro-batch (b). Required (>= 1).
  uint64_t micro_batch_size = 1;
  // Micro-batches per step per pipeline; 0 = enough to fill the pipeline (>= pp).
  uint32_t num_microbatches = 0;
  Recompute recompute = Recompute::kNone;
  // Sequence parallelism with tp > 1 (Megatron-Core's --sequence-parallel). Default on.
  bool sequence_parallel = true;
  // ZeRO-1 / Megatron-Core's distributed optimizer: optimizer states sharded over data parallel.
  bool distributed_optimizer = true;
  // Bytes of one gradient element: 4 (fp32 main gradients, Megatron-Core's default with BF16).
  uint32_t grad_bytes = 4;
  // Bytes of one activation element: 2 (BF16/FP16, as the paper assumes).
  uint32_t activation_bytes = 2;
  // Token copies the busiest EP rank's experts receive over the mean (1 = balanced routing).
  double routed_token_factor = 1.0;
  // Physical experts on one EP rank; 0 = num_experts / ep. EPLB: (experts + redundant) / ep,
  // i.e. ExpertPlacement::experts_per_rank().
  uint32_t experts_per_rank = 0;
  // With recompute = kModules: what is recomputed. Ignored otherwise (see Recomputed()).
  RecomputeModules modules;
  // The inputs of GEMMs (x8 above) cached at 1 byte per element (DeepSeek-V3's FP8 caching).
  bool fp8_activations = false;
  // Multi-token-prediction modules on the last stage (DeepSeek-V3: 1). Default 0.
  uint32_t mtp_depth = 0;
  PipelineSchedule schedule = PipelineSchedule::k1F1B;
  // kInterleaved: chunks per device (>= 2). Ignored by the other schedules.
  uint32_t virtual_stages = 1;
  // Prefill or decode: no gradients, optimizer states or stashed activations; a KV cache.
  bool inference = false;
  // Inference: tokens per sequence in the KV cache (decode: the context; prefill: seq_len).
  uint64_t kv_context = 0;
};

// What one token keeps in the KV cache per layer, in elements: keys and values of every KV head
// (kv_heads x (qk_dim + v_dim) of models::ShapeOf for MHA and GQA), or MLA's latent and its shared
// rotary key
// (kv_lora_rank + qk_rope_head_dim, DeepSeek-V2 arXiv:2405.04434 2.1.2: 512 + 64 for V3).
uint64_t KvCacheWidth(const pb::ModelSpec& model);

// The modules `recompute` drops by the presets: kNone none, kSelective attention_core, kModules
// `modules`; kFull none (it keeps only each layer's input, which no module list says).
RecomputeModules Recomputed(MemoryOptions::Recompute recompute, const RecomputeModules& modules);

// Micro-batches' worth of one stage's activations that device `stage` keeps in flight under
// `schedule` (above), as chunks over chunk_size: 1F1B and DualPipe count whole micro-batches
// (chunk_size 1), interleaved chunks of 1/V.
struct InFlight {
  uint64_t chunks = 0;
  uint32_t chunk_size = 1;  // chunks per micro-batch
  // "min(pp - stage, m) = 4", "2(pp - p - 1) + (V - 1)pp + 1 = 7 chunks of 1/2", "pp + 1 = 17"
  std::string rule;
};
InFlight MicroBatchesInFlight(PipelineSchedule schedule, uint32_t pp, uint32_t stage,
                              uint32_t microbatches, uint32_t virtual_stages);

struct MemoryBreakdown {
  uint32_t stage = 0;                   // the device: DualPipe's holds stage and pp - 1 - stage
  uint32_t layers = 0;                  // layers on this device
  uint32_t microbatches_in_flight = 0;  // under the schedule, rounded up
  std::string in_flight_rule;           // how the schedule counts them (InFlight::rule)
  uint64_t dense_params = 0;            // parameters on one GPU, by kind
  uint64_t expert_params = 0;
  Bytes weights, gradients, optimizer, activations, all_to_all;
  // Inference: the KV cache of the micro-batch's sequences, and of one of them.
  Bytes kv_cache, kv_cache_per_sequence;
  uint64_t micro_batch_size = 1;  // sequences per micro-batch (MemoryOptions::micro_batch_size)
  // Activations of one micro-batch on this stage (before the in-flight multiple).
  Bytes activations_per_microbatch;

  Bytes total() const {
    return weights + gradients + optimizer + activations + all_to_all + kv_cache;
  }
  // Inference: sequences of this length a micro-batch could hold in `capacity`: what is left
  // after the weights, over what one sequence adds (its KV cache, activations and all-to-all
  // buffers: those parts over micro_batch_size). 0 when not even one fits.
  uint64_t SequencesThatFit(Bytes capacity) const;
  // Ok when total() <= capacity; else an error saying which stage needs how much, by part, and
  // how many bytes are missing.
  Status Fits(Bytes capacity) const;
};

// Memory of one GPU of pipeline stage `stage` (0 .. pp-1); under DualPipe, of the device that
// holds stages `stage` and pp - 1 - `stage`.
MemoryBreakdown StageMemory(const pb::ModelSpec& model, const Plan& plan,
                            const MemoryOptions& options, uint32_t stage);
// The stage that needs the most (the first, lowest-numbered, among equals).
MemoryBreakdown PeakMemory(const pb::ModelSpec& model, const Plan& plan,
                           const MemoryOptions& options);

// "93.10 GB" (1e9 bytes), for messages.
std::string FormatGigabytes(Bytes bytes);

}  // namespace moesim::models
