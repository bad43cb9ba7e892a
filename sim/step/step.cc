#include "sim/step/step.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>

#include "models/model_spec.h"
#include "models/params.h"
#include "models/placement_spec.h"
#include "models/routing.h"
#include "models/synthetic_spec.h"
#include "sim/compute/compute_model.h"
#include "sim/network/group_comm.h"
#include "sim/step/step_ops.h"

namespace moesim::sim {
namespace {

// Parts of one pass (a micro-batch's forward or backward on one stage).
struct PassTime {
  Duration serial;    // every op one after another (with the shared-expert overlap if on)
  Duration alltoall;  // EP all-to-alls
  Duration other_comm;
  Duration sends;         // the pipeline sends in `serial` and `other_comm`
  Duration shared_saved;  // what the shared-expert overlap took off `serial`
  Duration tp_saved;      // what the TP overlap took off `serial`
  Duration host_wait;     // what the GPU waited for the host (StepConfig::host_per_kernel)
  uint64_t kernels = 0;
  Duration weight;        // the weight-gradient part of the compute (StepOp::weight_share)
  Duration mtp;           // ops of the multi-token-prediction modules
  uint32_t alltoalls = 0;
};

// `free_comm`: every collective costs nothing (the compute-only step). `sms`: the SMs dispatch
// holds while the shared expert runs beside it. `tp`: the TP size, the chunks of the TP overlap.
// `host`: the host's issue time per kernel (0: none).
PassTime Time(const std::vector<StepOp>& ops, const Overlap& overlap, bool free_comm, SmShare sms,
              uint32_t model_layers, uint32_t tp, Duration host) {
  PassTime p;
  // The host model's two clocks (sim/step/step.h): when the host has issued the kernels so far,
  // and when the GPU has run them.
  Duration host_clock, gpu_clock, busy;
  // Per (layer, pass): the dispatch op and the shared expert's block beside it; the TP collectives
  // by the GEMM op they run under, and the GEMM ops' times.
  Duration dispatch, shared;
  std::vector<std::pair<std::string, Duration>> tp_comm, gemms;
  auto add = [](std::vector<std::pair<std::string, Duration>>& to, const std::string& name,
                Duration t) {
    for (auto& [n, sum] : to) {
      if (n == name) {
        sum += t;
        return;
      }
    }
    to.emplace_back(name, t);
  };
  auto settle = [&] {
    if (overlap.shared_expert)
      p.shared_saved += dispatch + shared - Overlapped(shared, dispatch, sms);
    // C + G - (max(C, G) + min(C, G) / tp) = min(C, G) - min(C, G) / tp.
    for (const auto& [gemm, c] : tp_comm) {
      for (const auto& [name, g] : gemms) {
        if (name != gemm) continue;
        const Duration m = std::min(c, g);
        p.tp_saved += m - Duration::Picoseconds(m.picoseconds() / std::max<uint32_t>(tp, 1));
      }
    }
    dispatch = shared = Duration();
    tp_comm.clear();
    gemms.clear();
  };
  uint32_t layer = UINT32_MAX;
  std::string pass;
  for (const StepOp& op : ops) {
    if (op.layer != layer || op.pass != pass) {
      settle();
      layer = op.layer;
      pass = op.pass;
    }
    const Duration t = op.communication && free_comm ? Duration() : op.time;
    p.serial += t;
    p.kernels += op.kernels;
    if (host > Duration() && (op.kernels > 0 || t > Duration())) {
      if (op.host_sync) host_clock = std::max(host_clock, gpu_clock);
      // The op's time split over its kernels, the remainder on the last.
      const int64_t n = std::max<int64_t>(op.kernels, 1);
      const Duration each = Duration::Picoseconds(t.picoseconds() / n);
      for (int64_t k = 0; k < n; ++k) {
        host_clock += host;
        const Duration run = k + 1 < n ? each : t - (n - 1) * each;
        gpu_clock = std::max(gpu_clock, host_clock) + run;
      }
      busy += t;
    }
    if (op.alltoall) {
      p.alltoall += t;
      ++p.alltoalls;
      if (op.name == "dispatch") dispatch = t;
    } else if (op.communication) {
      p.other_comm += t;
    }
    if (op.shared_expert) shared += t;
    if (overlap.tp) {
      if (!op.tp_gemm.empty()) {
        add(tp_comm, op.tp_gemm, t);
      } else if (!op.communication) {
        add(gemms, op.name, t);
      }
    }
    if (op.weight_share > 0 && op.pass == "backward") {
      p.weight += Duration::Picoseconds(
          std::llround(static_cast<double>(t.picoseconds()) * op.weight_share));
    }
    if (op.layer >= model_layers) p.mtp += t;
  }
  settle();
  // The host's lateness: what the two clocks took beyond the kernels themselves.
  if (host > Duration()) p.host_wait = std::max(gpu_clock, host_clock) - busy;
  p.serial = p.serial - p.shared_saved - p.tp_saved + p.host_wait;
  return p;
}

// `coster_of(l)`: the coster of model layer l (multi-token-prediction modules, l >= the model's
// layers, take the last layer's); `coster` the embedding's and the LM head's.
StageOps BuildStage(const LayerCoster& coster,
                    const std::function<const LayerCoster&(uint32_t)>& coster_of,
                    const models::Plan& plan, uint32_t stage, const StepConfig& config) {
  StageOps s;
  const uint32_t pp = plan.sizes().pp;
  const uint32_t first = plan.StageFirstLayer(stage), count = plan.StageLayerCount(stage);
  // Each block's forward ops and the coster that recomputes it.
  std::vector<std::pair<const LayerCoster*, std::vector<StepOp>>> layers;
  if (stage == 0) layers.emplace_back(&coster, coster.Embedding());
  for (uint32_t l = first; l < first + count; ++l)
    layers.emplace_back(&coster_of(l), coster_of(l).Forward(l));
  if (stage == pp - 1) layers.emplace_back(&coster, coster.LmHead());
  for (const auto& [unused, ops] : layers)
    s.forward.insert(s.forward.end(), ops.begin(), ops.end());
  if (config.mode != StepMode::kTraining) return s;
  // The multi-token-prediction modules after the LM head (training only: they are a loss).
  if (stage == pp - 1) {
    const LayerCoster& last = coster_of(UINT32_MAX);
    for (uint32_t d = 0; d < config.mtp_depth; ++d) layers.emplace_back(&last, last.MtpModule(d));
    for (size_t i = layers.size() - config.mtp_depth; i < layers.size(); ++i)
      s.forward.insert(s.forward.end(), layers[i].second.begin(), layers[i].second.end());
  }
  const RecomputeModules modules = models::Recomputed(config.recompute, config.recompute_modules);
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    if (config.recompute == Recompute::kFull) {
      for (StepOp op : it->second) {
        op.pass = "recompute";
        s.backward.push_back(op);
      }
    } else if (modules.any()) {
      const std::vector<StepOp> again = it->first->Recompute(it->second, modules);
      s.backward.insert(s.backward.end(), again.begin(), again.end());
    }
    const std::vector<StepOp> back = LayerCoster::Backward(it->second);
    s.backward.insert(s.backward.end(), back.begin(), back.end());
  }
  return s;
}

// The mean of `passes` (pass i of weight[i] micro-batches): each Duration summed with its weight,
// over the weights' sum, to the nearest picosecond (halves up); counts from the first. One pass
// comes back as it is.
PassTime MeanPass(const std::vector<PassTime>& passes, const std::vector<int64_t>& weight) {
  if (passes.size() == 1) return passes.front();
  int64_t total = 0;
  for (int64_t w : weight) total += w;
  auto mean = [&](Duration PassTime::*field) {
    // In 128 bits: micro-batches x picoseconds may pass 2^63; the mean of int64s does not.
    __int128 sum = 0;
    for (size_t i = 0; i < passes.size(); ++i) sum += __int128{weight[i]} * (passes[i].*field).picoseconds();
    return Duration::Picoseconds(static_cast<int64_t>((2 * sum + total) / (2 * total)));
  };
  PassTime p = passes.front();
  for (Duration PassTime::*field :
       {&PassTime::serial, &PassTime::alltoall, &PassTime::other_comm, &PassTime::shared_saved,
        &PassTime::tp_saved, &PassTime::host_wait, &PassTime::weight, &PassTime::mtp}) {
    p.*field = mean(field);
  }
  return p;
}

// Parameters of a stage's layers held by one GPU: dense ones split over TP, experts over EP.
struct StageParams {
  uint64_t dense = 0, expert = 0;
};

StageParams ParamsOnGpu(const pb::ModelSpec& m, const models::Plan& plan, uint32_t stage,
                        uint32_t mtp_depth) {
  const models::ParallelSizes& s = plan.sizes();
  const uint64_t h = m.hidden_size();
  uint64_t dense = 0, expert = 0;
  if (stage == 0) dense += uint64_t{m.vocab_size()} * h;
  if (stage == s.pp - 1 && !(m.tie_word_embeddings() && s.pp == 1))
    dense += uint64_t{m.vocab_size()} * h;
  auto add_layer = [&](uint32_t l) {
    dense += models::AttentionBlockParams(m);
    if (!models::IsMoeLayer(m, l)) {
      dense += models::FfnParams(m, m.dense_ffn_size());
      return;
    }
    if (m.num_experts() > 1) dense += h * m.num_experts();
    const uint64_t shared_ffn =
        m.shared_expert_ffn_size() != 0 ? m.shared_expert_ffn_size() : m.expert_ffn_size();
    dense += uint64_t{m.num_shared_experts()} * models::FfnParams(m, shared_ffn);
    expert += uint64_t{m.num_experts()} * models::FfnParams(m, m.expert_ffn_size());
  };
  const uint32_t first = plan.StageFirstLayer(stage);
  for (uint32_t l = first; l < first + plan.StageLayerCount(stage); ++l) add_layer(l);
  // Multi-token prediction: a block like the last layer and a 2h x h projection per depth.
  if (stage == s.pp - 1) {
    for (uint32_t d = 0; d < mtp_depth; ++d) {
      add_layer(m.num_layers() - 1);
      dense += 2 * h * h;
    }
  }
  return {dense / s.tp, expert / (uint64_t{s.ep} * s.etp)};
}

// Gradient reduction of one group of `params` parameters: reduce-scatter of the gradients and,
// after the optimizer, all-gather of the updated weights with the distributed optimizer (ring, or
// NVLS inside one NVSwitch node: NCCL runs NVLS for them across nodes only with CollNet,
// tuning.cc); all-reduce of the gradients without (ring, tree across nodes, NVLS or NVLSTree on
// NVSwitch Hopper nodes, CollNet Direct where the fabric has SHARP). Each by the algorithm NCCL's
// tuner picks, the fastest of
// TunerAlgorithms, as `moesim collective` picks it.
Duration SyncTime(const NetworkModel& net, const std::vector<uint32_t>& group, uint64_t params,
                  uint32_t weight_bytes, const StepConfig& config) {
  const uint64_t grads = params * config.grad_bytes;
  if (!config.distributed_optimizer) {
    return net.TunedGroupCollective(group, CollectiveOp::kAllReduce, grads).time;
  }
  return net.TunedGroupCollective(group, CollectiveOp::kReduceScatter, grads).time +
         net.TunedGroupCollective(group, CollectiveOp::kAllGather, params * weight_bytes).time;
}

double Seconds(Duration d) { return static_cast<double>(d.picoseconds()) / 1e12; }

// Kernels count FLOPs in 64 bits: a micro-batch whose largest kernel could pass 2^64 is refused
// (KernelFlopsUpperBound, step.h), before a count wraps and the step comes out fast.
Status CheckKernelFlopsFit(const pb::ModelSpec& model, const StepConfig& config) {
  constexpr double kLimit = 18446744073709551615.0;  // 2^64 - 1
  const double largest = KernelFlopsUpperBound(model, config);
  if (largest < kLimit) return Status::Ok();
  char figure[32];
  std::snprintf(figure, sizeof figure, "%.3g", largest);
  return InputError({}, "micro_batch x seq_len",
                    std::to_string(config.micro_batch) + " x " + std::to_string(config.seq_len),
                    std::string("one kernel of a micro-batch could do ") + figure +
                        " FLOPs, past the 64-bit counts kernels are timed in (1.84e+19)",
                    "a smaller micro-batch or sequence length");
}

}  // namespace

double KernelFlopsUpperBound(const pb::ModelSpec& model, const StepConfig& config) {
  const double mb = config.micro_batch, seq = static_cast<double>(config.seq_len);
  const double tokens = config.mode == StepMode::kDecode ? mb : mb * seq;
  const models::AttentionShape a = models::ShapeOf(model);
  const double attention =
      5.0 * tokens * seq * static_cast<double>(a.heads) * static_cast<double>(a.qk_dim + a.v_dim);
  const double h = model.hidden_size();
  const double wide = std::max<double>(
      {static_cast<double>(model.expert_ffn_size()) * std::max<uint32_t>(model.top_k(), 1),
       static_cast<double>(model.dense_ffn_size()),
       static_cast<double>(model.shared_expert_ffn_size()) * model.num_shared_experts(),
       static_cast<double>(model.vocab_size()), 4.0 * h});
  return std::max(attention, 4.0 * tokens * h * wide);
}

StatusOr<StepReport> SimulateStep(const topology::Cluster& cluster, const pb::ModelSpec& model,
                                  const models::Plan& plan, const models::LayerWork& layer_work,
                                  const StepConfig& config, const StepTraceWork* trace) {
  const models::ParallelSizes& s = plan.sizes();
  if (plan.world() != cluster.gpus()) {
    return InputError({}, "plan", std::to_string(plan.world()) + " ranks",
                      "the plan must cover the cluster's GPUs", std::to_string(cluster.gpus()));
  }
  if (layer_work.dispatch_tokens.ranks() != s.ep) {
    return InputError({}, "routing", std::to_string(layer_work.dispatch_tokens.ranks()) + " ranks",
                      "the MoE layer's routing must cover one EP group", std::to_string(s.ep));
  }
  if (trace != nullptr) {
    const uint32_t moe_layers = models::MoeLayerCount(model);
    if (trace->by_step.empty()) return Error("trace replay: no step to replay");
    for (const std::vector<models::LayerWork>& step : trace->by_step) {
      if (step.size() != moe_layers) {
        return Error("trace replay: a step holds " + std::to_string(step.size()) +
                     " MoE layers; the model has " + std::to_string(moe_layers));
      }
      for (const models::LayerWork& work : step) {
        if (work.dispatch_tokens.ranks() != s.ep) {
          return Error("trace replay: a layer's routing covers " +
                       std::to_string(work.dispatch_tokens.ranks()) + " ranks; the EP group " +
                       std::to_string(s.ep));
        }
      }
    }
  }
  const uint64_t per_step = uint64_t{s.dp} * config.micro_batch;
  if (config.micro_batch == 0 || config.global_batch == 0 || config.global_batch % per_step != 0) {
    return InputError({}, "global_batch", std::to_string(config.global_batch),
                      "the global batch must be a positive multiple of dp x micro-batch (" +
                          std::to_string(s.dp) + " x " + std::to_string(config.micro_batch) + ")",
                      "a multiple of " + std::to_string(per_step));
  }
  if (config.seq_len == 0) {
    return InputError({}, "seq_len", "0", "sequences need at least one token", ">= 1");
  }
  MOESIM_RETURN_IF_ERROR(CheckKernelFlopsFit(model, config));

  StepReport r;
  r.mode = config.mode;
  r.micro_batches = static_cast<uint32_t>(config.global_batch / per_step);
  const bool training = config.mode == StepMode::kTraining;
  MOESIM_RETURN_IF_ERROR(
      CheckSchedule(config.schedule, config.virtual_stages, plan, r.micro_batches, training));
  if (config.mtp_depth > 0 && !training) {
    return InputError({}, "step.mtp_depth", std::to_string(config.mtp_depth),
                      "multi-token prediction is a training loss", "0 for prefill and decode");
  }
  const RecomputeModules modules = models::Recomputed(config.recompute, config.recompute_modules);
  if (modules.mla_up_proj && model.attention().kind() != pb::AttentionSpec::MLA) {
    return InputError({}, "step.recompute_modules", "mla_up_proj",
                      "recomputes MLA's up-projections; " + model.name() + " has no MLA",
                      "norm, attention_core, mlp, moe, moe_act");
  }
  MOESIM_ASSIGN_OR_RETURN(const KernelModel kernels, StepKernels(cluster, model.dtype(), config));
  const std::unique_ptr<NetworkModel> net = MakeNetworkModel(cluster, config.fidelity, config.flow);
  net->set_memo(config.memo);
  const LayerCoster coster(*net, model, plan, layer_work, config, kernels);
  r.hardware = (config.hardware ? "profile " + config.hardware->name() + "; " : std::string()) +
               kernels.Describe() + "; EP all-to-alls: " + coster.AllToAllSource();
  if (trace) r.routing = trace->description;
  r.recompute = config.recompute == Recompute::kFull        ? "full"
                : config.recompute == Recompute::kSelective ? "selective (attention_core)"
                                                            : models::ToString(modules);
  // What the memory keeps of the attention: the scores unless recomputed (models/memory.h).
  r.attention_scores_kept = config.recompute != Recompute::kFull && !modules.attention_core;
  r.mtp_depth = config.mtp_depth;
  r.fp8_activations = config.fp8_activations;
  r.schedule = config.schedule;
  r.virtual_stages = config.schedule == PipelineSchedule::kInterleaved ? config.virtual_stages : 1;
  // SM sharing: what the EP all-to-alls hold while compute runs beside them (none when nothing
  // runs beside them).
  r.gpu_sms = cluster.gpu_spec().multiprocessors;
  r.grad_bytes = config.grad_bytes;
  const bool beside = config.overlap.alltoall || config.overlap.shared_expert ||
                      config.schedule == PipelineSchedule::kDualPipe;
  r.comm_sms = beside ? std::min(config.comm_sms.value_or(DefaultCommSms(
                                     config.alltoall_algo, model.num_experts(), r.gpu_sms)),
                                 r.gpu_sms)
                      : 0;
  const SmShare sms{r.comm_sms, r.gpu_sms};

  // Each stage's ops and times: with SM sharing, without it (`alone`, for the report), and with
  // every collective free (the compute-only step).
  struct Stage {
    StageOps ops;
    PassTime f, b, f_alone, b_alone, f_free, b_free;
  };
  // The micro-batches that differ: one with synthetic routing; with a trace, variant v stands for
  // the weight[v] micro-batches j with j mod steps = v, each MoE layer i costed by its own
  // coster (by_step[v][i]).
  const uint32_t steps = trace ? static_cast<uint32_t>(trace->by_step.size()) : 1;
  const uint32_t variants = std::min(steps, r.micro_batches);
  std::vector<int64_t> weight(variants);
  for (uint32_t v = 0; v < variants; ++v)
    weight[v] = r.micro_batches / steps + (v < r.micro_batches % steps ? 1 : 0);
  std::vector<std::vector<std::unique_ptr<LayerCoster>>> moe_costers(trace ? variants : 0);
  std::vector<uint32_t> moe_index(model.num_layers(), 0);  // model layer -> its MoE ordinal
  for (uint32_t l = 0, i = 0; l < model.num_layers(); ++l) {
    moe_index[l] = i;
    if (models::IsMoeLayer(model, l)) ++i;
  }
  for (uint32_t v = 0; v < moe_costers.size(); ++v) {
    for (const models::LayerWork& work : trace->by_step[v])
      moe_costers[v].push_back(
          std::make_unique<LayerCoster>(*net, model, plan, work, config, kernels));
  }
  const uint32_t sends = r.virtual_stages;  // pipeline sends per pass per device
  const bool sends_overlapped = PipelineSendsOverlapped(config) && s.pp > 1;
  r.pipeline_sends_overlapped = sends_overlapped;
  std::vector<Stage> stages(s.pp);
  for (uint32_t st = 0; st < s.pp; ++st) {
    Stage& x = stages[st];
    std::vector<PassTime> f, b, f_alone, b_alone, f_free, b_free;
    for (uint32_t v = 0; v < variants; ++v) {
      auto coster_of = [&](uint32_t l) -> const LayerCoster& {
        if (!trace) return coster;
        const uint32_t layer = std::min(l, model.num_layers() - 1);
        return models::IsMoeLayer(model, layer) ? *moe_costers[v][moe_index[layer]] : coster;
      };
      const StageOps ops = BuildStage(coster, coster_of, plan, st, config);
      const uint32_t layers = model.num_layers();
      const Duration h = config.host_per_kernel;
      f.push_back(Time(ops.forward, config.overlap, false, sms, layers, s.tp, h));
      b.push_back(Time(ops.backward, config.overlap, false, sms, layers, s.tp, h));
      f_alone.push_back(Time(ops.forward, config.overlap, false, {}, layers, s.tp, h));
      b_alone.push_back(Time(ops.backward, config.overlap, false, {}, layers, s.tp, h));
      f_free.push_back(Time(ops.forward, config.overlap, true, {}, layers, s.tp, h));
      b_free.push_back(Time(ops.backward, config.overlap, true, {}, layers, s.tp, h));
      if (v == 0) x.ops = ops;
    }
    x.f = MeanPass(f, weight);
    x.b = MeanPass(b, weight);
    x.f_alone = MeanPass(f_alone, weight);
    x.b_alone = MeanPass(b_alone, weight);
    x.f_free = MeanPass(f_free, weight);
    x.b_free = MeanPass(b_free, weight);
    const StageParams params = ParamsOnGpu(model, plan, st, config.mtp_depth);
    x.ops.dense_params = params.dense;
    x.ops.expert_params = params.expert;
    // Receiving from the stage before (forward) and from the stage after (backward); with V
    // chunks per device, every chunk but the model's last (first) sends on. Overlapped
    // (overlap_p2p_comm), they leave the passes: ChunkTimes::hop prices them.
    const int64_t forward_sends = sends_overlapped ? 0 : st + 1 < s.pp ? sends : sends - 1;
    const int64_t backward_sends = training && !sends_overlapped ? (st > 0 ? sends : sends - 1) : 0;
    for (PassTime* f : {&x.f, &x.f_alone}) {
      f->serial += forward_sends * coster.PipelineSend();
      f->other_comm += forward_sends * coster.PipelineSend();
      f->sends = forward_sends * coster.PipelineSend();
    }
    for (PassTime* b : {&x.b, &x.b_alone}) {
      b->serial += backward_sends * coster.PipelineSend();
      b->other_comm += backward_sends * coster.PipelineSend();
      b->sends = backward_sends * coster.PipelineSend();
    }
    r.stage_forward.push_back(x.f.serial);
    r.stage_backward.push_back(x.b.serial);
  }

  // A steady-state pair: a forward and a backward of two micro-batches, their EP all-to-alls
  // under each other's compute when they overlap (the shared-expert saving undone: under the
  // all-to-all overlap the shared expert is plain compute that the all-to-alls may hide under).
  // At most `hidden` of the all-to-alls' time hides (OverlappedAtMost, schedule.h).
  const double hidden =
      config.overlap.alltoall_hidden.value_or(DefaultAllToAllHidden(config.schedule));
  // DualPipe's pairs hide the pipeline sends with the all-to-alls: DeepSeek-V3's report (3.2.1)
  // says both all-to-all and PP communication are fully hidden.
  const bool dualpipe = config.schedule == PipelineSchedule::kDualPipe;
  auto pair = [&](const PassTime& f, const PassTime& b, bool overlap, SmShare share) {
    const Duration fb = f.serial + b.serial;
    if (!overlap) return fb;
    const Duration sends = dualpipe ? f.sends + b.sends : Duration();
    const Duration a2a = f.alltoall + b.alltoall + sends;
    const Duration other = f.other_comm + b.other_comm - sends;
    // The TP overlap's saving stays: it hid part of `other` under the compute.
    const Duration tp_saved = f.tp_saved + b.tp_saved;
    const Duration compute = fb + f.shared_saved + b.shared_saved + tp_saved - a2a - other;
    return std::min(fb, OverlappedAtMost(compute, a2a, share, hidden) + other - tp_saved);
  };
  auto mean = [](Duration a, Duration b) {
    return Duration::Picoseconds((a + b).picoseconds() / 2 + (a + b).picoseconds() % 2);
  };
  const bool overlap = config.overlap.alltoall || dualpipe;
  r.alltoall_hidden = overlap ? hidden : 0;
  // The chunk times of device d: its stage's, or DualPipe's mean of stages d and pp - 1 - d,
  // whose pairs run a forward of one stage with a backward of the other.
  auto chunk = [&](uint32_t d, PassTime Stage::*f, PassTime Stage::*b, SmShare share) {
    const Stage& x = stages[d];
    if (!dualpipe) {
      ChunkTimes t{(x.*f).serial, (x.*b).serial, (x.*b).weight, pair(x.*f, x.*b, overlap, share),
                   Duration()};
      if (sends_overlapped && f != &Stage::f_free) {
        // A chunk's forward send and its backward send: what a fill or drain hop waits on
        // (SchedulePipeline also floors the steady pair at V of them).
        t.hop = (training ? 2 : 1) * coster.PipelineSend();
      }
      return t;
    }
    const Stage& y = stages[s.pp - 1 - d];
    return ChunkTimes{mean((x.*f).serial, (y.*f).serial), mean((x.*b).serial, (y.*b).serial),
                      mean((x.*b).weight, (y.*b).weight),
                      mean(pair(x.*f, y.*b, true, share), pair(y.*f, x.*b, true, share)),
                      Duration()};
  };
  auto run = [&](const ChunkTimes& t) {
    return SchedulePipeline(config.schedule, s.pp, r.micro_batches, r.virtual_stages, t,
                            plan.StageLayerCount(r.slowest_stage));
  };
  // The device the schedule waits on: the largest F + B (1F1B, interleaved), the longest
  // pipeline (DualPipe, whose devices differ in what overlaps).
  const uint32_t devices = dualpipe ? s.pp / 2 : s.pp;
  ChunkTimes slow;
  PipelineTime slow_time;
  for (uint32_t d = 0; d < devices; ++d) {
    const ChunkTimes t = chunk(d, &Stage::f, &Stage::b, sms);
    // Only DualPipe needs each device's pipeline to choose (a laid-out schedule costs p x m).
    const PipelineTime x = dualpipe ? run(t) : PipelineTime{};
    const bool slower = dualpipe ? x.pipeline > slow_time.pipeline
                                 : t.forward + t.backward > slow.forward + slow.backward;
    if (d == 0 || slower) {
      slow = t;
      slow_time = x;
      r.slowest_stage = d;
    }
  }
  if (!dualpipe) slow_time = run(slow);
  const Stage& worst = stages[r.slowest_stage];
  r.forward = slow.forward;
  r.backward = slow.backward;
  r.weight = slow.weight;
  r.pair = slow_time.pair;
  r.bubble = slow_time.bubble;
  r.dependency_wait = slow_time.dependency_wait;
  r.pipeline = slow_time.pipeline;
  r.sm_sharing =
      r.pipeline - run(chunk(r.slowest_stage, &Stage::f_alone, &Stage::b_alone, {})).pipeline;
  const Duration free_pipeline =
      run(chunk(r.slowest_stage, &Stage::f_free, &Stage::b_free, {})).pipeline;
  r.mtp_forward = stages[s.pp - 1].f.mtp;
  r.host_per_kernel = config.host_per_kernel;
  r.kernels_per_micro_batch = worst.f.kernels + worst.b.kernels;
  r.host_wait = worst.f.host_wait + worst.b.host_wait;
  r.alltoalls_per_micro_batch = worst.f.alltoalls + worst.b.alltoalls;
  r.dropped_copies = layer_work.TotalDropped();
  for (uint64_t t : layer_work.tokens_in) r.routed_copies += t * model.top_k();
  Duration a2a = worst.f.alltoall + worst.b.alltoall;
  if (dualpipe) {
    const Stage& mirror = stages[s.pp - 1 - r.slowest_stage];
    a2a = mean(a2a, mirror.f.alltoall + mirror.b.alltoall);
  }
  r.alltoall = int64_t{r.micro_batches} * a2a;

  // Gradients and the optimizer, training only.
  if (training) {
    const uint32_t elem = models::BytesPerElement(model.dtype());
    for (uint32_t st = 0; st < s.pp; ++st) {
      StageParams p = ParamsOnGpu(model, plan, st, config.mtp_depth);
      if (dualpipe) {
        // The device holds stage pp - 1 - st too: its gradients and its optimizer step.
        const StageParams q = ParamsOnGpu(model, plan, s.pp - 1 - st, config.mtp_depth);
        p.dense += q.dense;
        p.expert += q.expert;
      }
      const Duration sync = SyncTime(*net, plan.DpCpGroup(0), p.dense, elem, config) +
                            SyncTime(*net, plan.EdpGroup(0), p.expert, elem, config);
      // Adam: reads the fp32 master weight, two moments and the fp32 gradient, writes the master
      // weight, the moments and the model-dtype weight: 4 x 7 + elem bytes per parameter.
      const uint64_t dense_share = config.distributed_optimizer ? s.dp * s.cp : 1;
      const uint64_t expert_share = config.distributed_optimizer ? s.edp : 1;
      const uint64_t params = p.dense / dense_share + p.expert / expert_share;
      const Kernel update = Kernel::Memory(params * (28 + elem));
      const Duration optimizer = kernels.Time(update);
      stages[st].ops.optimizer = optimizer;
      stages[st].ops.optimizer_work = kernels.Work(update);
      if (st == r.slowest_stage || sync + optimizer > r.grad_sync + r.optimizer) {
        r.grad_sync = sync;
        r.optimizer = optimizer;
        r.dense_grad_bytes = p.dense * config.grad_bytes;
        r.expert_grad_bytes = p.expert * config.grad_bytes;
      }
    }
    r.grad_sync_exposed =
        config.overlap.gradients ? std::max(Duration(), r.grad_sync - r.backward) : r.grad_sync;
  }
  r.step = r.pipeline + r.grad_sync_exposed + r.optimizer;
  r.compute_only = free_pipeline + r.optimizer;
  r.ops = worst.ops.forward;
  r.ops.insert(r.ops.end(), worst.ops.backward.begin(), worst.ops.backward.end());
  for (Stage& x : stages) r.stages.push_back(std::move(x.ops));
  r.dispatch_bytes = coster.DispatchBytes();
  r.combine_bytes = coster.CombineBytes();
  r.expert_work = coster.ExpertWork();
  r.pipeline_send_bytes = coster.PipelineSendBytes();
  r.pipeline_send = coster.PipelineSend();

  // Model FLOPs as params.h counts them (training: 3 x forward), over the step.
  const uint64_t tokens =
      config.mode == StepMode::kDecode ? config.global_batch : config.global_batch * config.seq_len;
  // With multi-token prediction, its modules' FLOPs are the model's too (3 x forward).
  const double per_token =
      training ? static_cast<double>(
                     models::TrainingFlopsPerToken(model, config.seq_len) +
                     3 * models::MtpForwardFlopsPerToken(model, config.seq_len, config.mtp_depth))
               : static_cast<double>(models::ForwardFlopsPerToken(model, config.seq_len).total());
  // Dropped token copies are not computed: their routed-expert FLOPs (2 per weight of the top_k
  // experts, 3x in training) come off the work done, by the share of copies dropped. `mfu` counts
  // the FLOPs computed, `mfu_nominal` every routed copy (the two agree without a capacity).
  const double dropped_share = r.routed_copies == 0 ? 0.0
                                                    : static_cast<double>(r.dropped_copies) /
                                                          static_cast<double>(r.routed_copies);
  const double routed_expert_flops = (training ? 3.0 : 1.0) * 2.0 *
                                     static_cast<double>(models::CountParams(model).active.routed_experts);
  const double computed_per_token = per_token - dropped_share * routed_expert_flops;
  const double seconds = Seconds(r.step);
  auto mfu = [&](pb::DType dtype, double flops_per_token) {
    const double peak = static_cast<double>(PeakFlops(cluster.gpu_spec(), dtype).per_second());
    return flops_per_token * static_cast<double>(tokens) / (seconds * plan.world() * peak);
  };
  r.mfu = mfu(model.dtype(), computed_per_token);
  r.mfu_nominal = mfu(model.dtype(), per_token);
  r.mfu_bf16 = mfu(pb::BF16, computed_per_token);
  r.mfu_dtype = pb::DType_Name(model.dtype());
  r.tokens_per_second = static_cast<double>(tokens) / seconds;
  return r;
}

StatusOr<models::LayerWork> StepMoeLayer(const pb::ModelSpec& model, const models::Plan& plan,
                                         const pb::Routing& routing,
                                         const pb::ExpertPlacementSpec& placement,
                                         uint32_t gpus_per_node, const StepConfig& config,
                                         const TextFile* file) {
  if (!routing.has_synthetic()) {
    return InputError(file ? file->Locate("routing") : Location{}, "routing",
                      routing.has_trace()    ? "trace"
                      : routing.has_scores() ? "scores"
                                             : "explicit",
                      routing.has_trace()
                          ? "a trace's layers and steps are replayed by StepTraceLayers "
                            "(sim/step/step_trace.h), not drawn as one layer"
                          : "a whole step draws its routing for each plan's micro-batch",
                      "routing { synthetic { ... } } or routing { trace { ... } }");
  }
  const uint32_t ep = plan.sizes().ep;
  models::RoutingShape shape;
  shape.ranks = ep;
  shape.layers = 1;
  shape.tokens_per_rank = MoeTokensPerRank(plan, config);
  shape.num_experts = model.num_experts();
  shape.top_k = model.top_k();
  MOESIM_ASSIGN_OR_RETURN(models::Plan ep_plan, models::EpGroupPlan(model, ep));
  std::vector<std::vector<uint64_t>> loads;
  if (models::DrawsCounts(routing)) {  // routing_version 2 (models/count_routing.h)
    MOESIM_ASSIGN_OR_RETURN(std::vector<models::LayerCounts> counts,
                            models::ResolveSyntheticCounts(routing.synthetic(), shape, file));
    models::AddCountLoads(counts.front(), &loads);
    MOESIM_ASSIGN_OR_RETURN(models::ExpertPlacement where,
                            models::ResolvePlacement(placement, ep_plan, model.num_experts(), 1,
                                                     gpus_per_node, loads, file));
    return models::ExpandCounts(counts.front(), ep_plan, where, config.capacity_factor);
  }
  MOESIM_ASSIGN_OR_RETURN(std::vector<models::LayerRouting> layers,
                          models::ResolveRouting(routing, shape, file));
  models::AddRoutingLoads(layers.front(), model.num_experts(), &loads);
  MOESIM_ASSIGN_OR_RETURN(models::ExpertPlacement where,
                          models::ResolvePlacement(placement, ep_plan, model.num_experts(), 1,
                                                   gpus_per_node, loads, file));
  return models::ExpandLayer(layers.front(), ep_plan, where, config.capacity_factor);
}

models::MemoryBreakdown StepMemory(const pb::ModelSpec& model, const models::Plan& plan,
                                   const StepConfig& config, uint32_t micro_batches,
                                   const models::LayerWork& layer_work) {
  models::MemoryOptions memory;
  memory.seq_len = config.mode == StepMode::kDecode ? 1 : config.seq_len;
  memory.micro_batch_size = config.micro_batch;
  memory.num_microbatches = micro_batches;
  memory.recompute = config.recompute;
  memory.modules = config.recompute_modules;
  memory.fp8_activations = config.fp8_activations;
  memory.grad_bytes = config.grad_bytes;
  memory.mtp_depth = config.mode == StepMode::kTraining ? config.mtp_depth : 0;
  memory.schedule = config.schedule;
  memory.virtual_stages = config.virtual_stages;
  memory.distributed_optimizer = config.distributed_optimizer;
  // Prefill and decode keep no gradients or optimizer states, and a KV cache of seq_len tokens
  // per sequence (decode: the context).
  memory.inference = config.mode != StepMode::kTraining;
  memory.kv_context = memory.inference ? config.seq_len : 0;
  // Physical experts per GPU: replicas (EPLB) count.
  for (const std::vector<uint64_t>& rank : layer_work.expert_tokens) {
    memory.experts_per_rank = std::max(memory.experts_per_rank, static_cast<uint32_t>(rank.size()));
  }
  uint64_t busiest = 0, all = 0;
  for (const std::vector<uint64_t>& rank : layer_work.expert_tokens) {
    uint64_t n = 0;
    for (uint64_t t : rank) n += t;
    busiest = std::max(busiest, n);
    all += n;
  }
  memory.routed_token_factor =
      all == 0 ? 1.0 : static_cast<double>(busiest) * plan.sizes().ep / static_cast<double>(all);
  return models::PeakMemory(model, plan, memory);
}

StatusOr<KernelModel> StepKernels(const topology::Cluster& cluster, pb::DType dtype,
                                  const StepConfig& config) {
  MOESIM_ASSIGN_OR_RETURN(KernelModel k,
                          KernelModel::Defaults(cluster.gpu_spec(), dtype, config.expert_gemm));
  return config.hardware ? k.With(config.hardware->gpu()) : k;
}

bool PipelineSendsOverlapped(const StepConfig& config) {
  if (config.schedule != PipelineSchedule::kInterleaved) return false;
  return config.overlap.pipeline.value_or(true);
}

Duration HostPerKernel(double microseconds) {
  return Duration::Picoseconds(static_cast<int64_t>(std::llround(microseconds * 1e6)));
}

StatusOr<StepConfig> StepConfigFromSpec(const pb::StepSpec& spec, const TextFile& file,
                                        Fidelity fidelity) {
  StepConfig c;
  switch (spec.mode()) {
    case pb::StepSpec::PREFILL:
      c.mode = StepMode::kPrefill;
      break;
    case pb::StepSpec::DECODE:
      c.mode = StepMode::kDecode;
      break;
    default:
      c.mode = StepMode::kTraining;
  }
  if (spec.global_batch() == 0) {
    return InputError(file.Locate("step.global_batch"), "step.global_batch", "0", "missing or zero",
                      "sequences per step, >= 1");
  }
  if (spec.seq_len() == 0) {
    return InputError(file.Locate("step.seq_len"), "step.seq_len", "0", "missing or zero",
                      "tokens per sequence, >= 1");
  }
  if (spec.has_micro_batch() && spec.micro_batch() == 0) {
    return InputError(file.Locate("step.micro_batch"), "step.micro_batch", "0",
                      "a micro-batch holds at least one sequence", ">= 1");
  }
  c.global_batch = spec.global_batch();
  c.seq_len = spec.seq_len();
  c.micro_batch = spec.has_micro_batch() ? spec.micro_batch() : 1;
  c.distributed_optimizer = !spec.has_distributed_optimizer() || spec.distributed_optimizer();
  switch (spec.recompute()) {
    case pb::StepSpec::NONE:
      c.recompute = Recompute::kNone;
      break;
    case pb::StepSpec::FULL:
      c.recompute = Recompute::kFull;
      break;
    default:
      c.recompute = Recompute::kSelective;
  }
  if (spec.recompute_modules_size() > 0) {
    if (spec.recompute() != pb::StepSpec::RECOMPUTE_UNSPECIFIED) {
      return InputError(file.Locate("step.recompute"), "step.recompute",
                        pb::StepSpec::Recompute_Name(spec.recompute()),
                        "recompute_modules says what is recomputed; a preset beside it is "
                        "ambiguous",
                        "one of recompute (NONE, SELECTIVE, FULL) or recompute_modules");
    }
    const std::vector<std::string> names(spec.recompute_modules().begin(),
                                         spec.recompute_modules().end());
    MOESIM_ASSIGN_OR_RETURN(c.recompute_modules, models::ParseRecomputeModules(
                                                     names, file.Locate("step.recompute_modules"),
                                                     "step.recompute_modules"));
    c.recompute = Recompute::kModules;
  }
  c.fp8_activations = spec.fp8_activations();
  c.mtp_depth = spec.mtp_depth();
  MOESIM_ASSIGN_OR_RETURN(
      c.schedule, ParseSchedule(spec.schedule(), file.Locate("step.schedule"), "step.schedule"));
  if (spec.has_virtual_stages()) {
    if (c.schedule != PipelineSchedule::kInterleaved || spec.virtual_stages() < 2) {
      return InputError(file.Locate("step.virtual_stages"), "step.virtual_stages",
                        std::to_string(spec.virtual_stages()),
                        c.schedule != PipelineSchedule::kInterleaved
                            ? "chunks per device are the interleaved schedule's"
                            : "interleaving needs at least two chunks per device",
                        "with schedule: \"interleaved\", >= 2");
    }
    c.virtual_stages = spec.virtual_stages();
  } else if (c.schedule == PipelineSchedule::kInterleaved) {
    c.virtual_stages = 2;
  }
  if (spec.has_comm_sms()) c.comm_sms = spec.comm_sms();
  if (spec.has_dispatch_kernel_gbps()) c.dispatch_kernel_gbps = spec.dispatch_kernel_gbps();
  if (spec.has_combine_kernel_gbps()) c.combine_kernel_gbps = spec.combine_kernel_gbps();
  c.grad_bytes = spec.has_grad_reduce_in_fp32() && !spec.grad_reduce_in_fp32() ? 2 : kGradBytes;
  if (spec.has_dispatch_rdma_kernel_gbps())
    c.dispatch_rdma_kernel_gbps = spec.dispatch_rdma_kernel_gbps();
  if (spec.has_combine_rdma_kernel_gbps())
    c.combine_rdma_kernel_gbps = spec.combine_rdma_kernel_gbps();
  c.overlap.alltoall = spec.overlap().alltoall();
  c.overlap.shared_expert = spec.overlap().shared_expert();
  c.overlap.gradients = spec.overlap().gradients();
  c.overlap.tp = spec.overlap().tp();
  if (spec.overlap().has_pipeline()) {
    if (spec.overlap().pipeline() && c.schedule != PipelineSchedule::kInterleaved) {
      return InputError(file.Locate("step.overlap.pipeline"), "step.overlap.pipeline", "true",
                        "Megatron-Core overlaps pipeline sends only in its interleaved schedule "
                        "(overlap_p2p_comm); this step's schedule is " +
                            std::string(ToString(c.schedule)),
                        "false, or with schedule: \"interleaved\"");
    }
    c.overlap.pipeline = spec.overlap().pipeline();
  }
  if (spec.has_host_us_per_kernel()) {
    c.host_per_kernel = HostPerKernel(spec.host_us_per_kernel());
  }
  if (spec.overlap().has_alltoall_hidden()) {
    if (!spec.overlap().alltoall() && c.schedule != PipelineSchedule::kDualPipe) {
      return InputError(file.Locate("step.overlap.alltoall_hidden"), "step.overlap.alltoall_hidden",
                        std::to_string(spec.overlap().alltoall_hidden()),
                        "nothing overlaps the all-to-alls",
                        "with overlap { alltoall: true } or schedule: \"dualpipe\"");
    }
    c.overlap.alltoall_hidden = spec.overlap().alltoall_hidden();
  }
  if (spec.has_capacity_factor() && !(spec.capacity_factor() > 0)) {
    return InputError(file.Locate("step.capacity_factor"), "step.capacity_factor",
                      std::to_string(spec.capacity_factor()), "must be positive",
                      "> 0 (1.0 = exactly the balanced share); absent = no dropping");
  }
  c.capacity_factor = spec.capacity_factor();
  MOESIM_ASSIGN_OR_RETURN(
      c.alltoall_algo,
      models::ParseAllToAllAlgo(spec.alltoall_algo(), file.Locate("step.alltoall_algo"),
                                "step.alltoall_algo"));
  MOESIM_ASSIGN_OR_RETURN(
      c.chunk_tokens,
      models::ParseChunkTokens(spec.has_alltoall_chunk_tokens(), spec.alltoall_chunk_tokens(),
                               c.alltoall_algo, file.Locate("step.alltoall_chunk_tokens"),
                               "step.alltoall_chunk_tokens"));
  MOESIM_ASSIGN_OR_RETURN(
      c.dispatch_dtype,
      models::ParseWireDtype(spec.dispatch_dtype(), file.Locate("step.dispatch_dtype"),
                             "step.dispatch_dtype"));
  MOESIM_ASSIGN_OR_RETURN(c.combine_dtype, models::ParseWireDtype(spec.combine_dtype(),
                                                                  file.Locate("step.combine_dtype"),
                                                                  "step.combine_dtype"));
  MOESIM_ASSIGN_OR_RETURN(
      c.expert_gemm,
      ParseExpertGemm(spec.expert_gemm(), file.Locate("step.expert_gemm"), "step.expert_gemm"));
  c.fidelity = fidelity;
  return c;
}

}  // namespace moesim::sim
