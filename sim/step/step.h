// sim/step/ owns whole training steps and inference passes, their ops and reports, and plan
// search. It may include sim/moe/, sim/network/, sim/compute/ (and topology/, models/, proto/);
// never calibration, report or cli.
//
// A whole training step (or one inference pass) of a model under a parallel plan, on a cluster:
// what users come for ("which plan, and what will a step cost?").
//
// One micro-batch on one pipeline stage is a list of ops per layer, each on the compute or the
// communication stream:
//
//   attention   [TP all-gather]  attention GEMMs + core  [TP reduce-scatter]  [CP all-gather of KV]
//   dense FFN   [TP all-gather]  FFN GEMMs  [TP reduce-scatter]
//   MoE         router, permute, dispatch (EP all-to-all), [shared expert, with its TP
//   collectives],
//               [ETP all-gather], [sort by expert], expert GEMMs (the slowest rank's real
//               per-expert token counts), [unsort], [ETP reduce-scatter], combine (EP
//               all-to-all), unpermute; the sorts where a direct all-to-all feeds several experts
//
// with sequence parallelism when tp > 1 (Megatron-Core's default for MoE), so an MoE layer's tokens
// stay split over the TP group and its routed experts need no TP collective. With expert tensor
// parallelism (etp > 1, Megatron-Core's all-to-all dispatcher) each expert's FFN is split over an
// ETP group: after dispatch the group all-gathers what its members received, every member runs all
// of it through its 1/etp slice (the same FLOPs as etp = 1, 1/etp of the weights), and the partial
// outputs are reduce-scattered back before combine. Backward
// runs the same list in reverse with twice the compute and the same communication: four all-to-alls
// per MoE layer per micro-batch in training (dispatch, combine, and their gradients), two in
// inference. Full recomputation runs each layer's forward again before its backward.
// sim/step/step_ops.h lists every op's kernels (norms, quantisation casts, RoPE, router top-k,
// permutation, SwiGLU, ...) and their backward ones.
//
// Costs: a compute op is the sum of its kernels, each priced by its kind and shape
// (sim/compute/kernel_model.h: GEMMs, FlashAttention, memory-bound kernels, one launch each), with
// a HardwareProfile's measured rates in place where it has them; a collective is timed on the GPUs
// of its group (sim/network/group_comm.h) at the chosen fidelity; the EP all-to-alls use the
// routing of the scenario, drawn for one EP group, on the network model or the profile's per-rank
// all-to-all model.
//
// Recomputation by module (models/memory.h RecomputeModules; the presets: none, selective =
// attention_core, full): before each layer's backward run again only the forward work of what is
// recomputed: norm its norms (memory-bound: read and write each normed vector), mla_up_proj MLA's
// up-projection GEMMs, mlp the dense FFN block's ops, moe the MoE block's ops (dispatch and combine
// included), moe_act the experts' activation (memory-bound); attention_core costs nothing (flash
// attention's backward recomputes the scores anyway, in the backward's time). Full recomputation
// runs the whole layer's forward again. With mtp_depth D the last stage runs D multi-token-
// prediction modules after its LM head (DeepSeek-V3 2.2): a 2h x h projection, a block like the
// model's last layer and the shared LM head again.
//
// The step (training, m micro-batches over p stages, F and B the slowest stage's forward and
// backward of one micro-batch), by schedule (sim/step/schedule.h):
//   1F1B:        pipeline = (p - 1)(F + B)  [the bubble]  +  (F + B)  +  (m - 1) P
//   interleaved: the bubble / V, and V pipeline sends per pass in F and B
//   DualPipe:    (p/2 - 1)(P + B - 3W) + (3p/2 - 1)(F + B) + (m - 3p/2 + 1) P, W the weight-
//                gradient part of B (half of every GEMM's backward: for attention, of its
//                projections'), F, B, W, P the means of the device's two stages
// where P = F + B, or with all-to-all overlap (one micro-batch's all-to-alls under another's
// compute, as DualPipe and Megatron-Core's 1F1B A2A overlap do; DualPipe always overlaps)
// P = OverlappedAtMost(compute_F + compute_B, a2a_F + a2a_B, h) + the rest of the communication.
// Overlapped is max(C, A) slowed by SM sharing: the all-to-all kernels hold comm_sms of the GPU's
// SMs while they run, so the compute beside them loses A x comm_sms / SMs (schedule.h); the
// shared-expert overlap alike. At most h of the all-to-alls' time is hidden: 0.3655 for
// Megatron-Core's overlap (measured), 1 for DualPipe (schedule.h). Then the gradients: the dense
// ones reduced over the dp x cp group, the expert ones over the expert-data-parallel group
// (reduce-scatter and, after the optimizer, all-gather with the distributed optimizer; all-reduce
// without), exposed in full or, with gradient overlap, only what outlasts the last backward; then
// the optimizer step. Inference: prefill is (m + p - 1) F; decode is one token per sequence through
// every stage.
//
// With TP overlap (Megatron-Core's tp_comm_overlap: Transformer Engine's userbuffers) each TP
// all-gather or reduce-scatter c of a pass runs in tp chunks under the GEMM op g it feeds or drains
// (StepOp::tp_gemm: the all-gather before the QKV projection and the reduce-scatter after the
// output projection, the dense FFN's and the shared expert's pair, the LM head's all-gather; in the
// backward the same pairs): the pair costs max(C, G) + min(C, G) / tp, C the collectives of g and
// G its time. The first (or last) chunk stays exposed, as a ring exchange over tp ranks leaves it;
// the SMs userbuffers' reduce-scatter kernels hold are not taken from the GEMM.
//
// With a host cost per kernel h (StepConfig::host_per_kernel, an eager framework's per-op time), a
// pass is two clocks: the host issues the pass's kernels in order, h each (StepOp::kernels; an
// op's GPU time split evenly over its kernels), and the GPU starts each kernel when it is free
// and the kernel is issued; before an op marked host_sync (each forward or recomputed dispatch,
// whose dispatcher copies the received token counts to the host, except DeepEP's low-latency
// kernels, which take fixed-size buffers) the host waits for the GPU. The pass then lasts
// max(host, GPU); what that adds to the ops' sum is the host wait, counted as compute. h = 0 leaves
// every figure as it was.
//
// Every overlap is a max() where the serial step has a sum, so turning one on never makes a step
// slower. Deterministic: the same inputs give the same report, bit for bit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/dispatch.h"
#include "models/memory.h"
#include "models/plan.h"
#include "models/workload.h"
#include "proto/hardware.pb.h"
#include "proto/model.pb.h"
#include "proto/scenario.pb.h"
#include "proto/status.h"
#include "proto/text_file.h"
#include "proto/units.h"
#include "sim/compute/compute_model.h"
#include "sim/compute/kernel_model.h"
#include "sim/moe/moe_layer.h"
#include "sim/step/schedule.h"
#include "topology/cluster.h"

namespace moesim::sim {

enum class StepMode { kTraining, kPrefill, kDecode };

using Recompute = models::MemoryOptions::Recompute;
using RecomputeModules = models::RecomputeModules;

struct Overlap {
  bool alltoall = false;       // EP all-to-alls of one micro-batch under another's compute
  bool shared_expert = false;  // the shared expert runs while dispatch is on the wire
  bool gradients = false;      // DP gradient reduction under the last micro-batch's backward
  bool tp = false;  // TP all-gathers and reduce-scatters in chunks under their GEMMs (userbuffers)
  // The most of the all-to-alls' time overlap hides (schedule.h OverlappedAtMost); absent: the
  // schedule's default (DefaultAllToAllHidden).
  std::optional<double> alltoall_hidden;
  // Megatron-Core's overlap_p2p_comm: the pipeline sends beside the next chunk's compute in the
  // steady state, waited on in the fill and drain only (schedule.h ChunkTimes::hop). nullopt:
  // the schedule's default (PipelineSendsOverlapped); true only with the interleaved schedule.
  std::optional<bool> pipeline;
};

struct StepConfig {
  StepMode mode = StepMode::kTraining;
  uint64_t global_batch = 0;  // sequences per step (training, prefill); decode: sequences served
  uint64_t seq_len = 0;       // tokens per sequence; decode: the context each new token attends to
  uint32_t micro_batch = 1;   // sequences per micro-batch
  bool distributed_optimizer = true;  // ZeRO-1: optimizer states and the update sharded over DP
  // Activations kept for the backward: kNone keeps all; kSelective recomputes the attention core
  // (what flash attention does anyway: no extra time, less memory); kFull keeps each layer's input
  // and runs the layer's forward again before its backward; kModules recomputes
  // `recompute_modules` (above).
  Recompute recompute = Recompute::kSelective;
  RecomputeModules recompute_modules;
  // GEMM inputs cached at 1 byte per element (models/memory.h; memory only).
  bool fp8_activations = false;
  // Multi-token-prediction modules on the last stage (training). 0: none.
  uint32_t mtp_depth = 0;
  PipelineSchedule schedule = PipelineSchedule::k1F1B;
  uint32_t virtual_stages = 1;  // chunks per device, interleaved only (>= 2)
  // SMs the EP all-to-alls hold while they overlap compute; nullopt: DefaultCommSms(alltoall_algo)
  // (schedule.h); 0: no SM sharing.
  std::optional<uint32_t> comm_sms;
  // Megatron-Core's moe_expert_capacity_factor: each rank sends at most ceil(tokens x top_k /
  // experts x factor) token copies to an expert and drops the rest. 0: no capacity, no dropping.
  double capacity_factor = 0;
  Overlap overlap;
  Fidelity fidelity = Fidelity::kAnalytical;
  FlowOptions flow;  // the flow model's tolerance (sim/network/flow_model.h), at flow fidelity
  // What the hardware achieves (`--hardware`, `moesim calibrate`): its GPU figures replace the
  // per-kernel defaults of sim/compute/kernel_model.h, and its dispatch/combine entry for the EP
  // group's link class replaces the network model for the EP all-to-alls
  // (sim/compute/profile_model.h). Absent: the per-kernel defaults, and the network model.
  std::optional<pb::HardwareProfile> hardware;
  // How the EP all-to-alls run (models/dispatch.h): direct (one copy per expert: NCCL's grouped
  // send/recv, Megatron-Core's all-to-all dispatcher), per-rank (one copy per destination GPU, the
  // layer's rank_tokens: DeepEP's intranode kernels), hierarchical (DeepEP's internode traffic:
  // once across the network per destination node, deduplicated where the layer knows each token's
  // nodes, whole messages timed with NCCL's model; sim/network/group_comm.h), deepep_normal (the
  // same relay in chunks of chunk_tokens, timed as DeepEP's kernels) or deepep_low_latency (a
  // message per copy, sim/network/alltoall_low_latency.h).
  models::AllToAllAlgo alltoall_algo = models::AllToAllAlgo::kDirect;
  // deepep_normal's chunk, tokens of one sender's message to one node.
  uint32_t chunk_tokens = models::kDeepEpChunkTokens;
  // The all-to-all kernels' own rate per GPU (StepSpec.dispatch_kernel_gbps, combine_kernel_gbps):
  // a GPU's received bytes, itself included, at this rate bound each dispatch (combine).
  std::optional<double> dispatch_kernel_gbps, combine_kernel_gbps;
  // The internode kernels' "RDMA" rate per GPU (StepSpec.dispatch_rdma_kernel_gbps, ...): a GPU's
  // tokens x the nodes each reaches, its own included (LayerWork::node_tokens), at this rate bound
  // each relayed dispatch (combine).
  std::optional<double> dispatch_rdma_kernel_gbps, combine_rdma_kernel_gbps;
  // Bytes of a gradient element, kept and reduced (StepSpec.grad_reduce_in_fp32): 4, or 2.
  uint32_t grad_bytes = 4;  // kGradBytes below
  // The host's issue time per kernel (StepSpec.host_us_per_kernel); zero: the host is never late.
  Duration host_per_kernel;
  // How a token travels in dispatch and in combine (models/wire_dtype.h), forward and backward
  // alike; nullopt: the model's dtype.
  std::optional<models::WireDtype> dispatch_dtype, combine_dtype;
  // How the routed experts issue their GEMMs (sim/compute/kernel_model.h): auto is DeepGEMM for
  // FP8 models and one cuBLAS GEMM per expert otherwise.
  ExpertGemm expert_gemm = ExpertGemm::kAuto;
  // Group collectives' answers shared by many steps on one cluster (plan search: candidates with
  // the same group ask the same questions; sim/network/collective_memo.h). nullptr (default):
  // every one is timed. Not owned: it must outlive the step and serve only its cluster.
  CollectiveMemo* memo = nullptr;
};

// The kernel model a step with `config` uses on `cluster`'s GPUs for a model of `dtype`
// (sim/compute/kernel_model.h), with the profile's GPU figures in place. Error: an expert GEMM
// API the dtype cannot run.
StatusOr<KernelModel> StepKernels(const topology::Cluster& cluster, pb::DType dtype,
                                  const StepConfig& config);

// Which block of a layer an op belongs to: what recomputing mlp or moe runs again.
enum class OpBlock : uint8_t { kOther, kAttention, kFfn, kMoe };

// One op of one micro-batch on the slowest stage.
struct StepOp {
  std::string name;    // "attention", "tp-allgather", "dispatch", "expert", ...
  std::string pass;    // "forward", "backward", "recompute"
  uint32_t layer = 0;  // >= the model's layers: a multi-token-prediction module's
  bool communication = false;
  bool alltoall = false;  // an EP dispatch or combine (or their gradients)
  Duration time;
  // Part of the shared expert's block, which may run while dispatch is on the wire.
  bool shared_expert = false;
  // A TP all-gather or reduce-scatter: the GEMM op beside it ("attn-qkv", "attn-out", "dense-ffn",
  // "shared-expert", "lm-head") that Overlap::tp runs it under.
  std::string tp_gemm;
  OpBlock block = OpBlock::kOther;
  // Kernels the op launches in this pass (a collective: one), and, for a forward compute op, in its
  // backward; and whether the host waits for the GPU before issuing it (a forward dispatch: the
  // dispatcher reads the received token counts).
  uint32_t kernels = 0;
  uint32_t backward_kernels = 0;
  bool host_sync = false;
  // Of this op's backward, the share that is weight gradients (DualPipe's W): 1/2 for a GEMM
  // (one GEMM for the inputs' gradient, one for the weights'), less for attention (its core has
  // no weights), 0 for the rest.
  double weight_share = 0;
  // A forward compute op: what its gradient kernels take in the backward (LayerCoster::Backward).
  Duration backward;
  // What the op does on its rank in this pass (what `moesim export chakra` writes): a compute
  // op's FLOPs and the bytes its kernels read and write (sim/compute/kernel_model.h KernelWork);
  // a collective's buffer as nccl-tests sizes it (all-gather, reduce-scatter: the whole gathered
  // buffer), an EP all-to-all the most one EP rank sends to the others (StepReport::
  // dispatch_bytes has every rank's). The expert op: of the EP rank that computes the most rows
  // (StepReport::expert_work has every rank's).
  KernelWork work;
  KernelWork backward_work;  // a forward compute op: its gradient kernels'
};

// Gradients are kept and reduced in fp32 by default (Megatron-LM turns
// accumulate_allreduce_grads_in_fp32 on for BF16 training; models/memory.h counts them alike):
// bytes per parameter; 2 with StepConfig::grad_bytes from grad_reduce_in_fp32 false.
inline constexpr uint64_t kGradBytes = 4;

// One micro-batch's ops on one pipeline stage, and what its gradient sync reduces.
struct StageOps {
  std::vector<StepOp> forward, backward;
  // Parameters of the stage's layers one GPU holds: dense (reduced over dp x cp) and expert
  // (reduced over edp). DualPipe: those of the stage only, not of the device's mirror stage.
  uint64_t dense_params = 0, expert_params = 0;
  // Training: the optimizer step on the stage's device (Adam over its share of the parameters).
  Duration optimizer;
  KernelWork optimizer_work;
};

// The routed experts' work on one EP rank in one MoE layer of one micro-batch (the same on every
// MoE layer and every EP group of the step).
struct ExpertRankWork {
  KernelWork forward, backward;
};

struct StepReport {
  StepMode mode = StepMode::kTraining;
  uint32_t micro_batches = 0;
  uint32_t slowest_stage = 0;
  Duration forward;   // F: one micro-batch's forward on the slowest stage
  Duration backward;  // B
  Duration pair;      // P: a steady-state forward plus backward, with overlap
  Duration weight;    // W: the weight-gradient part of B
  Duration bubble;    // by the schedule: 1F1B (p - 1)(F + B), ...
  // Where B > P: stages waiting on the next one's backward beyond bubble + pairs (schedule.h).
  Duration dependency_wait;
  PipelineSchedule schedule = PipelineSchedule::k1F1B;
  uint32_t virtual_stages = 1;
  // SM sharing: the SMs the EP all-to-alls hold of the GPU's (0 when no compute overlaps them),
  // and what it added to the pipeline (the pipeline less the same with comm_sms 0).
  uint32_t comm_sms = 0, gpu_sms = 0;
  uint32_t grad_bytes = 4;     // of a gradient element, kept and reduced (StepConfig::grad_bytes)
  double alltoall_hidden = 0;  // the share overlap may hide (Overlap::alltoall_hidden); 0: none
  Duration sm_sharing;
  // The host model (StepConfig::host_per_kernel): the kernels of one micro-batch's forward and
  // backward on the slowest stage, and what the GPU waits for the host in them.
  Duration host_per_kernel;
  uint64_t kernels_per_micro_batch = 0;
  Duration host_wait;
  // The multi-token-prediction modules' forward on the last stage, per micro-batch.
  uint32_t mtp_depth = 0;
  Duration mtp_forward;
  // What the backward recomputes: "none", "selective (attention_core)", "full", "norm, moe_act".
  std::string recompute;
  // The memory counts the attention scores (5 a s^2 / tp bytes a layer), as unfused attention
  // keeps them: neither full recomputation nor attention_core drops them.
  bool attention_scores_kept = false;
  bool fp8_activations = false;
  Duration pipeline;           // the whole pipeline schedule
  Duration grad_sync;          // the gradient collectives of the slowest stage
  Duration grad_sync_exposed;  // what of it the step waits for
  Duration optimizer;
  Duration step;          // everything: what a user pays per step
  Duration compute_only;  // the same step with every collective free
  Duration alltoall;      // time in EP all-to-alls per step on the slowest stage (m x per MB)
  uint32_t alltoalls_per_micro_batch = 0;
  // Token copies dropped by the capacity factor in one MoE layer of one micro-batch (all EP ranks
  // of one group), and all the copies routed there.
  uint64_t dropped_copies = 0;
  uint64_t routed_copies = 0;
  // Model FLOPs per step (params.h: 3 x forward, attention without causal halving, as PaLM's
  // MFU) / (step x GPUs x peak): against the model dtype's dense peak (FP8 for FP8 models), and
  // against the BF16 peak (the same for BF16 models). Only the FLOPs computed count: token copies
  // dropped by the capacity factor are not; mfu_nominal counts them as if they were (the two
  // agree without a capacity).
  double mfu = 0;
  double mfu_nominal = 0;
  double mfu_bf16 = 0;
  std::string mfu_dtype;  // the dtype `mfu` is against: the model's ("FP8", "BF16", ...)
  double tokens_per_second = 0;
  uint64_t dense_grad_bytes = 0;   // per GPU, reduced over dp x cp
  uint64_t expert_grad_bytes = 0;  // per GPU, reduced over edp
  // Where the figures come from: the assumed efficiencies or a profile, and the EP all-to-alls'
  // model (LayerCoster::AllToAllSource).
  std::string hardware;
  // Where the MoE layers' routing came from when not the scenario's synthetic block: a trace's
  // description (StepTraceWork); empty otherwise.
  std::string routing;
  std::vector<StepOp> ops;  // one micro-batch on the slowest stage, in order
  std::vector<Duration> stage_forward, stage_backward;
  // Every stage's ops (index = stage), for exports that write each rank's work.
  std::vector<StageOps> stages;
  // Per EP rank (index = position in the EP group), one MoE layer of one micro-batch: the bytes
  // it sends to the other ranks in dispatch and in combine (what the all-to-all model timed),
  // and its experts' work.
  std::vector<uint64_t> dispatch_bytes, combine_bytes;
  std::vector<ExpertRankWork> expert_work;
  // One micro-batch's activations sent from one stage to the next (and their gradient back).
  uint64_t pipeline_send_bytes = 0;
  Duration pipeline_send;
  // The sends run beside the steady state's compute (Overlap::pipeline): only the fill and the
  // drain wait on them, a forward and a backward send a hop (the bubble's + (p - 1) x 2S).
  bool pipeline_sends_overlapped = false;

  // What of the step is communication nobody hid: step - compute_only.
  Duration exposed_communication() const { return step - compute_only; }
};

// An upper bound on the FLOPs of the largest kernel of one micro-batch, in doubles (which do not
// wrap): attention's backward, 2.5 x 2 FLOPs per (query, key) pair and channel of q and o
// (models::ShapeOf: heads x (qk_dim + v_dim)), over every pair of every sequence (seq_len^2 per
// sequence, twice the causal count); a GEMM's backward, 2 x 2 x tokens x hidden x its widest side
// (expert FFN x top_k, dense FFN, shared experts, vocabulary, or 4 x hidden). SimulateStep refuses
// a micro-batch whose bound passes 2^64, the counts kernels are timed in.
double KernelFlopsUpperBound(const pb::ModelSpec& model, const StepConfig& config);

// A step's MoE layers replayed from a trace (sim/step/step_trace.h): by_step[s][i] is the i-th
// MoE layer of the model in the trace's s-th step replayed, one EP group's work; micro-batch j
// uses by_step[j mod by_step.size()].
struct StepTraceWork {
  std::vector<std::vector<models::LayerWork>> by_step;
  // For the report: "replayed from run.trace: 2 step(s) x 4 MoE layer(s) ..."
  std::string description;
};

// `layer_work`: one EP group's MoE layer (ranks = plan ep), from the scenario's routing with
// tokens_per_rank = micro_batch x seq_len / (tp x cp) (decode: micro_batch / (tp x cp), at least
// 1); every MoE layer costs what it costs. Errors: sizes that do not divide (global batch by dp x
// micro-batch), a plan whose world is not the cluster's GPUs (ResolvePlan has checked the rest).
//
// With `trace` (not null), each MoE layer costs its own work instead: the stages' ops are built
// for each of the min(m, steps) distinct micro-batches, and the schedule takes each stage's mean
// micro-batch: every part of F and B (serial, all-to-all, other communication, weight gradients)
// summed over the m micro-batches and divided by m (rounded to the nearest picosecond, halves up),
// which is exact when all micro-batches replay one step. The ops reported are micro-batch 0's;
// `layer_work` stands for the dropped-copy count (pass trace->by_step[0][0]).
StatusOr<StepReport> SimulateStep(const topology::Cluster& cluster, const pb::ModelSpec& model,
                                  const models::Plan& plan, const models::LayerWork& layer_work,
                                  const StepConfig& config, const StepTraceWork* trace = nullptr);

// Tokens each rank routes in one micro-batch's MoE layer, as above.
uint64_t MoeTokensPerRank(const models::Plan& plan, const StepConfig& config);

// The MoE layer of one EP group (ranks 0..ep-1) for SimulateStep: `routing` (synthetic; explicit
// routing describes a fixed set of ranks and tokens, not a micro-batch of any plan; a trace is
// replayed layer by layer through StepTraceLayers, sim/step/step_trace.h) drawn
// for MoeTokensPerRank tokens per rank, expanded over the placement `placement` asks for (EPLB
// from this routing's loads unless it names a loads file). `file` locates errors.
StatusOr<models::LayerWork> StepMoeLayer(const pb::ModelSpec& model, const models::Plan& plan,
                                         const pb::Routing& routing,
                                         const pb::ExpertPlacementSpec& placement,
                                         uint32_t gpus_per_node, const StepConfig& config,
                                         const TextFile* file);

// Memory of the fullest GPU for this step (models/memory.h): the micro-batches the schedule keeps
// in flight of `micro_batches`, and the busiest EP rank's share of `layer_work`'s token copies.
models::MemoryBreakdown StepMemory(const pb::ModelSpec& model, const models::Plan& plan,
                                   const StepConfig& config, uint32_t micro_batches,
                                   const models::LayerWork& layer_work);

// StepSpec.host_us_per_kernel's microseconds (and moesim plan --host-us-per-kernel's) as
// StepConfig::host_per_kernel, rounded to the picosecond.
Duration HostPerKernel(double microseconds);

// Whether the pipeline sends overlap the steady state: Overlap::pipeline, absent true with the
// interleaved schedule (Megatron-LM's default overlap_p2p_comm) and false otherwise.
bool PipelineSendsOverlapped(const StepConfig& config);

// The step a scenario's `step` block asks for, checked (global_batch and seq_len given, at least
// 1).
StatusOr<StepConfig> StepConfigFromSpec(const pb::StepSpec& spec, const TextFile& file,
                                        Fidelity fidelity);

}  // namespace moesim::sim
