// The ops of one layer for one micro-batch on one rank, forward, each with its kernels and the
// kernels of its backward (sim/step/step.h explains the model). Internal to the step simulator;
// split out so that step.cc only composes.
//
// t = tokens of the rank's sequence chunk (micro-batch x seq_len / cp), n = t / tp the tokens of
// the sequence-parallel regions (norms, router, MoE), h hidden, a = 2 bytes per activation
// element (BF16; FP32 models 4; FP8 models keep activations in BF16 between GEMMs), heads and
// FFN widths divided over tp. Per layer, forward (backward: the gradient kernels named):
//   attn-norm        residual add + RMSNorm over n x h: read 2, write 2 elements (bwd the same)
//   attn-quant       FP8 models: a cast + transpose of each projection GEMM's input (bwd: of its
//                    output's gradient), 65/16 bytes per element (below)
//   attn-qkv         the Q, K, V projections (MLA: down, latent RMSNorms, up), GEMMs over t
//                    (bwd: dgrad + wgrad GEMMs)
//   rope             rotary embedding of q and k (MLA: their rotary parts): read + write
//   attn-core        FlashAttention, causal, in BF16 (bwd: FlashAttention's backward)
//   attn-out         the output projection
//   ffn-norm         as attn-norm
//   dense FFN        dense-ffn-quant, dense-ffn (fc1 = gate+up, fc2), dense-ffn-act (SwiGLU)
//   MoE              router (BF16 GEMM), router-topk (scores, top-k), dispatch-layout (counts and
//                    their exchange: DeepEP's layout and notify kernels), permute, dispatch,
//                    shared expert (-quant, GEMMs, -act), [sort-by-expert], expert-quant, expert
//                    (grouped GEMMs of the slowest rank), expert-act, [unsort-by-expert],
//                    combine, unpermute (the sorts: a direct all-to-all into several experts)
// and embedding (first stage) and final-norm, lm-head, loss (last stage). Each kernel's bytes are
// worked out beside it in step_ops.cc.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "models/dispatch.h"
#include "models/plan.h"
#include "sim/compute/compute_model.h"
#include "sim/network/network_model.h"
#include "sim/step/step.h"
#include "topology/cluster.h"

namespace moesim::sim {

// Costs shared by every layer of a micro-batch, computed once: the collectives on the plan's
// groups of rank 0 and the EP all-to-alls of `layer_work`.
class LayerCoster {
 public:
  // Every collective and all-to-all is asked of `net` (which holds the cluster).
  LayerCoster(const NetworkModel& net, const pb::ModelSpec& model, const models::Plan& plan,
              const models::LayerWork& layer_work, const StepConfig& config,
              const KernelModel& kernels);

  // Forward ops of model layer `layer` (dense or MoE by the model's interleaving).
  std::vector<StepOp> Forward(uint32_t layer) const;
  // The backward of those ops: reversed, each compute op its gradient kernels (StepOp::backward;
  // ops with none are left out), the same communication.
  static std::vector<StepOp> Backward(const std::vector<StepOp>& forward);
  // What recomputing `modules` runs again before the backward of the layer whose forward ops are
  // `forward`, pass "recompute" (sim/step/step.h): norms, MLA up-projections, the activation of
  // the routed experts as their own ops, the dense FFN and MoE blocks as copies of their ops.
  std::vector<StepOp> Recompute(const std::vector<StepOp>& forward,
                                const RecomputeModules& modules) const;
  // Multi-token-prediction module `depth` (from 0), forward: its projection, a block like the
  // model's last layer and the shared LM head, as layer num_layers + depth.
  std::vector<StepOp> MtpModule(uint32_t depth) const;
  // Embedding lookup (first stage) and LM head with the loss (last stage), forward.
  std::vector<StepOp> Embedding() const;
  std::vector<StepOp> LmHead() const;
  // Sending one micro-batch's activations to the next stage.
  Duration PipelineSend() const { return p2p_; }
  uint64_t PipelineSendBytes() const { return p2p_bytes_; }
  // Per EP rank, one MoE layer: what it sends to the other ranks in dispatch and in combine (the
  // send matrix the all-to-all model timed, without the diagonal), and its experts' work.
  const std::vector<uint64_t>& DispatchBytes() const { return dispatch_bytes_; }
  const std::vector<uint64_t>& CombineBytes() const { return combine_bytes_; }
  const std::vector<ExpertRankWork>& ExpertWork() const { return expert_work_; }
  // Where the EP all-to-alls' times come from: "network model", or the profile's entry
  // ("profile NAME: nvlink dispatch/combine"), or why the profile could not time them.
  const std::string& AllToAllSource() const { return alltoall_source_; }

 private:
  // The EP all-to-alls on `profile`'s per-rank model, where it has an entry for the group's link
  // class; else they stay on the network model, and alltoall_source_ says why.
  void ProfileAllToAlls(const pb::HardwareProfile& profile);
  // The kernels' own rates (StepConfig::dispatch_kernel_gbps, combine_kernel_gbps): each GPU's
  // bytes of `dispatch` received, itself included (what it sends back in combine), at the rate
  // bound dispatch_ (combine_).
  void KernelRateAllToAlls(const models::TrafficMatrix& dispatch,
                           const models::TrafficMatrix& combine);
  // The internode kernels' "RDMA" rates (StepConfig::dispatch_rdma_kernel_gbps, ...): each GPU's
  // node_tokens, its own node included, in the wire dtype, at the rate bound dispatch_ (combine_).
  // Only where the relay ran deduplicated by node (HierarchicalAllToAlls).
  void RdmaKernelRateAllToAlls();
  // Raises dispatch_ (combine_) to `dispatch_bytes` (`combine_bytes`) at the rate where one is
  // given, and adds to the report "; `kernels` at most dispatch X, combine Y `unit` per GPU".
  void AtKernelRates(uint64_t dispatch_bytes, uint64_t combine_bytes,
                     std::optional<double> dispatch_gbps, std::optional<double> combine_gbps,
                     std::string_view kernels, std::string_view unit);
  // The EP all-to-alls as DeepEP runs them, where the EP group allows (sim/network/group_comm.h).
  // `combine_bytes` is in dispatch's orientation (rows = the senders of dispatch).
  void HierarchicalAllToAlls(const models::TrafficMatrix& dispatch_bytes,
                             const models::TrafficMatrix& combine_bytes);
  // One op's kernels, forward and backward.
  struct Kernels {
    std::vector<Kernel> forward, backward;
  };
  StepOp Compute(const std::string& name, uint32_t layer, const Kernels& k) const;
  // DeepEP's low-latency kernels over the EP group (sim/network/alltoall_low_latency.h).
  void LowLatencyAllToAlls();
  // A collective moving `bytes` (StepOp::work).
  StepOp Comm(const char* name, uint32_t layer, Duration time, uint64_t bytes,
              bool alltoall = false) const;
  void TensorParallel(std::vector<StepOp>& ops, uint32_t layer, const char* block,
                      bool before) const;
  // A linear layer y[m, n] = x[m, k] W[k, n] of class `c`: its GEMM into `gemm` (bwd: dgrad and
  // wgrad), and for FP8 GEMMs its casts into `quant` (the input's unless `cast_input` is false,
  // e.g. a second GEMM on the same input; bwd: the output gradient's).
  void Linear(Kernels& gemm, Kernels& quant, GemmClass c, uint64_t m, uint64_t n, uint64_t k,
              bool cast_input = true) const;
  void Attention(std::vector<StepOp>& ops, uint32_t layer) const;
  // An FFN of `ffn` (per TP rank) over `tokens`: NAME-quant, NAME (GEMMs), NAME-act.
  void Ffn(std::vector<StepOp>& ops, uint32_t layer, const std::string& name, uint64_t tokens,
           uint64_t ffn) const;
  void Experts(std::vector<StepOp>& ops, uint32_t layer) const;
  // The slowest rank's expert GEMMs, forward and backward, and the most rows a rank computes.
  void TimeExperts();
  // RMSNorm over `tokens` x h, with (4) or without (3) the residual add, both passes.
  Kernels Norm(uint64_t tokens, uint64_t elements_per_feature) const;
  bool Fp8() const { return model_.dtype() == pb::FP8; }

  const NetworkModel& net_;
  const topology::Cluster& cluster_;
  const pb::ModelSpec& model_;
  const models::Plan& plan_;
  const models::LayerWork& work_;
  StepConfig config_;
  uint64_t tokens_ = 0;      // tokens of this rank's sequence chunk (micro-batch / cp)
  uint64_t moe_tokens_ = 0;  // tokens this rank routes (tokens_ / tp)
  uint64_t context_ = 0;     // tokens each query attends to
  uint32_t elem_ = 2;        // bytes per element of the model's dtype (communication, weights)
  uint32_t act_ = 2;         // bytes per activation element in memory-bound kernels
  // Bytes of one token in dispatch and in combine (config.dispatch_dtype, combine_dtype).
  uint64_t dispatch_token_bytes_ = 0, combine_token_bytes_ = 0;
  KernelModel kernels_;
  Duration tp_gather_, tp_scatter_, cp_kv_, dispatch_, combine_, p2p_;
  Duration etp_gather_, etp_scatter_;  // expert tensor parallelism (etp > 1)
  // Their buffers (StepOp::work.bytes): TP, CP, ETP, pipeline sends.
  uint64_t tp_bytes_ = 0, cp_kv_bytes_ = 0, etp_bytes_ = 0, p2p_bytes_ = 0;
  uint32_t expert_forward_kernels_ = 0, expert_backward_kernels_ = 0;  // the most of any rank
  std::vector<uint64_t> dispatch_bytes_, combine_bytes_;  // per EP rank
  std::vector<ExpertRankWork> expert_work_;               // per EP rank
  uint32_t expert_rows_rank_ = 0;                         // the EP rank that computes expert_rows_
  Duration expert_forward_, expert_backward_;  // TimeExperts
  uint64_t expert_rows_ = 0;
  uint32_t local_experts_ = 0;  // the most experts an EP rank holds (TimeExperts)
  std::string alltoall_source_ = "network model";
  bool relayed_by_node_ = false;  // the EP all-to-alls ran deduplicated per node
};

}  // namespace moesim::sim
