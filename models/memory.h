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
// projection's input (all = h for MHA; GQA's K and V are narrower):
//   attention: (e·n·h [LN input] + e·n·h [QKV input] + n·h [dropout mask]) / sp -> 5nh / sp
//              + e·n·(q + k + v + o) / t                                      -> 8nh / t for MHA
//              + 5·a·n·s / t  [softmax out 2, dropout mask 1, dropout out 2; dropped by selective
//                              recomputation, as with flash attention]
//   dense MLP: 5·n·h / sp  + e·n·f·(3 gated: gate, up, their product | 2 plain) / t
//              (f = 4h plain gives the paper's 19sbh: together 34·s·b·h + 5·a·s²·b for t = 1)
//   MoE MLP:   5·n·h / sp  + 4·E·m [router probabilities, fp32]
//              + c·(e·h [expert input] + e·g·f/etp [expert FFN, g = 3 gated | 2 plain]
//                   + e·h [expert output, kept for the weighted combine])
//              + shared experts as dense MLPs of their size
//              where m = n/t tokens enter the MoE layer on each GPU (Megatron-Core requires
//              sequence parallelism for MoE with TP > 1: the layer sees the sequence-parallel
//              slice) and c = m·top_k·etp·routed_token_factor
//              token copies reach its experts (the mean over EP ranks when the factor is 1).
//   full recomputation keeps only each layer's input, e·n·h/sp, plus one layer's activations
//   while it is recomputed.
// Under 1F1B, stage p holds min(pp - p, micro-batches) micro-batches in flight. The first stage
// adds token ids (8 bytes each) and the embedding dropout mask per micro-batch in flight; the last
// the output layer (Megatron-Core's estimator: 4·n·h + 4·n·vocab bytes, / t) once.
// All-to-all buffers (ep > 1): dispatch and combine each hold m·top_k·routed_token_factor tokens
// of e·h bytes: 2·e·m·top_k·h.
// Not counted: norm weights, biases, CUDA context and allocator fragmentation, cross-attention
// activations, the multi-token-prediction head.
//
// Plain functions; no state, safe from any thread. Requires a plan resolved for the model.
#pragma once

#include <cstdint>
#include <string>

#include "models/plan.h"
#include "proto/model.pb.h"
#include "proto/status.h"
#include "proto/units.h"

namespace moesim::models {

struct MemoryOptions {
  enum class Recompute {
    kNone,       // keep every activation
    kSelective,  // recompute the attention core: no 5·a·s² term (what flash attention also gives)
    kFull,       // keep each layer's input only, recompute the layer in the backward pass
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
};

struct MemoryBreakdown {
  uint32_t stage = 0;
  uint32_t layers = 0;                  // layers on this stage
  uint32_t microbatches_in_flight = 0;  // under 1F1B
  uint64_t dense_params = 0;            // parameters on one GPU, by kind
  uint64_t expert_params = 0;
  Bytes weights, gradients, optimizer, activations, all_to_all;
  // Activations of one micro-batch on this stage (before the in-flight multiple).
  Bytes activations_per_microbatch;

  Bytes total() const { return weights + gradients + optimizer + activations + all_to_all; }
  // Ok when total() <= capacity; else an error saying which stage needs how much, by part, and
  // how many bytes are missing.
  Status Fits(Bytes capacity) const;
};

// Memory of one GPU of pipeline stage `stage` (0 .. pp-1).
MemoryBreakdown StageMemory(const pb::ModelSpec& model, const Plan& plan,
                            const MemoryOptions& options, uint32_t stage);
// The stage that needs the most (the first, lowest-numbered, among equals).
MemoryBreakdown PeakMemory(const pb::ModelSpec& model, const Plan& plan,
                           const MemoryOptions& options);

// "93.10 GB" (1e9 bytes), for messages.
std::string FormatGigabytes(Bytes bytes);

}  // namespace moesim::models
