#include "sim/step/step.h"

#include <algorithm>
#include <memory>

#include "models/model_spec.h"
#include "models/params.h"
#include "models/placement_spec.h"
#include "models/routing.h"
#include "sim/compute/compute_model.h"
#include "sim/network/group_comm.h"
#include "sim/step/step_ops.h"

namespace moesim::sim {
namespace {

// Gradients are kept and reduced in fp32 (Megatron-LM turns accumulate_allreduce_grads_in_fp32 on
// for BF16 training; models/memory.h counts them alike).
constexpr uint64_t kGradBytes = 4;

// Parts of one pass (a micro-batch's forward or backward on one stage).
struct PassTime {
  Duration serial;    // every op one after another (with the shared-expert overlap if on)
  Duration alltoall;  // EP all-to-alls
  Duration other_comm;
  Duration shared_saved;  // what the shared-expert overlap took off `serial`
  uint32_t alltoalls = 0;
};

// `free_comm`: every collective costs nothing (the compute-only step).
PassTime Time(const std::vector<StepOp>& ops, const Overlap& overlap, bool free_comm) {
  PassTime p;
  // Per (layer, pass): the dispatch op and the shared expert's block beside it.
  Duration dispatch, shared;
  auto settle = [&] {
    if (overlap.shared_expert) p.shared_saved += std::min(dispatch, shared);
    dispatch = shared = Duration();
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
    if (op.alltoall) {
      p.alltoall += t;
      ++p.alltoalls;
      if (op.name == "dispatch") dispatch = t;
    } else if (op.communication) {
      p.other_comm += t;
    }
    if (op.shared_expert) shared += t;
  }
  settle();
  p.serial = p.serial - p.shared_saved;
  return p;
}

struct StageOps {
  std::vector<StepOp> forward, backward;
};

StageOps BuildStage(const LayerCoster& coster, const models::Plan& plan, uint32_t stage,
                    const StepConfig& config) {
  StageOps s;
  const uint32_t pp = plan.sizes().pp;
  const uint32_t first = plan.StageFirstLayer(stage), count = plan.StageLayerCount(stage);
  std::vector<std::vector<StepOp>> layers;
  if (stage == 0) layers.push_back(coster.Embedding());
  for (uint32_t l = first; l < first + count; ++l) layers.push_back(coster.Forward(l));
  if (stage == pp - 1) layers.push_back(coster.LmHead());
  for (const auto& ops : layers) s.forward.insert(s.forward.end(), ops.begin(), ops.end());
  if (config.mode != StepMode::kTraining) return s;
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    if (config.recompute == Recompute::kFull) {
      for (StepOp op : *it) {
        op.pass = "recompute";
        s.backward.push_back(op);
      }
    }
    const std::vector<StepOp> back = LayerCoster::Backward(*it);
    s.backward.insert(s.backward.end(), back.begin(), back.end());
  }
  return s;
}

// Parameters of a stage's layers held by one GPU: dense ones split over TP, experts over EP.
struct StageParams {
  uint64_t dense = 0, expert = 0;
};

StageParams ParamsOnGpu(const pb::ModelSpec& m, const models::Plan& plan, uint32_t stage) {
  const models::ParallelSizes& s = plan.sizes();
  const uint64_t h = m.hidden_size();
  uint64_t dense = 0, expert = 0;
  if (stage == 0) dense += uint64_t{m.vocab_size()} * h;
  if (stage == s.pp - 1 && !(m.tie_word_embeddings() && s.pp == 1))
    dense += uint64_t{m.vocab_size()} * h;
  const uint32_t first = plan.StageFirstLayer(stage);
  for (uint32_t l = first; l < first + plan.StageLayerCount(stage); ++l) {
    dense += models::AttentionBlockParams(m);
    if (!models::IsMoeLayer(m, l)) {
      dense += models::FfnParams(m, m.dense_ffn_size());
      continue;
    }
    if (m.num_experts() > 1) dense += h * m.num_experts();
    const uint64_t shared_ffn =
        m.shared_expert_ffn_size() != 0 ? m.shared_expert_ffn_size() : m.expert_ffn_size();
    dense += uint64_t{m.num_shared_experts()} * models::FfnParams(m, shared_ffn);
    expert += uint64_t{m.num_experts()} * models::FfnParams(m, m.expert_ffn_size());
  }
  return {dense / s.tp, expert / (uint64_t{s.ep} * s.etp)};
}

// Gradient reduction of one group of `params` parameters: reduce-scatter of the gradients and,
// after the optimizer, all-gather of the updated weights with the distributed optimizer;
// all-reduce of the gradients without.
Duration SyncTime(const NetworkModel& net, const std::vector<uint32_t>& group, uint64_t params,
                  uint32_t weight_bytes, const StepConfig& config) {
  const uint64_t grads = params * kGradBytes;
  if (!config.distributed_optimizer) {
    return net.GroupCollective(group, CollectiveOp::kAllReduce, CollectiveAlgo::kRing, grads).time;
  }
  return net.GroupCollective(group, CollectiveOp::kReduceScatter, CollectiveAlgo::kRing, grads)
             .time +
         net.GroupCollective(group, CollectiveOp::kAllGather, CollectiveAlgo::kRing,
                             params * weight_bytes)
             .time;
}

double Seconds(Duration d) { return static_cast<double>(d.picoseconds()) / 1e12; }

}  // namespace

StatusOr<StepReport> SimulateStep(const topology::Cluster& cluster, const pb::ModelSpec& model,
                                  const models::Plan& plan, const models::LayerWork& layer_work,
                                  const StepConfig& config) {
  const models::ParallelSizes& s = plan.sizes();
  if (plan.world() != cluster.gpus()) {
    return InputError({}, "plan", std::to_string(plan.world()) + " ranks",
                      "the plan must cover the cluster's GPUs", std::to_string(cluster.gpus()));
  }
  if (layer_work.dispatch_tokens.ranks() != s.ep) {
    return InputError({}, "routing", std::to_string(layer_work.dispatch_tokens.ranks()) + " ranks",
                      "the MoE layer's routing must cover one EP group", std::to_string(s.ep));
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

  StepReport r;
  r.mode = config.mode;
  r.micro_batches = static_cast<uint32_t>(config.global_batch / per_step);
  const std::unique_ptr<NetworkModel> net = MakeNetworkModel(cluster, config.fidelity);
  const LayerCoster coster(*net, model, plan, layer_work, config);
  const bool training = config.mode == StepMode::kTraining;
  r.hardware = (config.hardware ? "profile " + config.hardware->name()
                                : std::string("assumed efficiencies (GEMM 70%, memory 80%, 4 us "
                                              "launch)")) +
               "; EP all-to-alls: " + coster.AllToAllSource();

  // The slowest stage, and each stage's times.
  struct Stage {
    StageOps ops;
    PassTime f, b, f_free, b_free;
  };
  std::vector<Stage> stages(s.pp);
  Duration worst;
  for (uint32_t st = 0; st < s.pp; ++st) {
    Stage& x = stages[st];
    x.ops = BuildStage(coster, plan, st, config);
    x.f = Time(x.ops.forward, config.overlap, false);
    x.b = Time(x.ops.backward, config.overlap, false);
    x.f_free = Time(x.ops.forward, config.overlap, true);
    x.b_free = Time(x.ops.backward, config.overlap, true);
    // Receiving from the stage before (forward) and from the stage after (backward).
    if (st + 1 < s.pp) {
      x.f.serial += coster.PipelineSend();
      x.f.other_comm += coster.PipelineSend();
    }
    if (training && st > 0) {
      x.b.serial += coster.PipelineSend();
      x.b.other_comm += coster.PipelineSend();
    }
    r.stage_forward.push_back(x.f.serial);
    r.stage_backward.push_back(x.b.serial);
    if (x.f.serial + x.b.serial > worst || st == 0) {
      worst = x.f.serial + x.b.serial;
      r.slowest_stage = st;
    }
  }
  const Stage& slow = stages[r.slowest_stage];

  // The pipeline: bubble, the first micro-batch, then m - 1 steady-state pairs.
  auto pipeline = [&](const PassTime& f, const PassTime& b, Duration* pair) {
    const Duration fb = f.serial + b.serial;
    *pair = fb;
    if (config.overlap.alltoall) {
      // Undo the shared-expert saving: under the all-to-all overlap the shared expert is plain
      // compute that another micro-batch's all-to-alls may hide under (see sim/step/step.h).
      const Duration a2a = f.alltoall + b.alltoall;
      const Duration other = f.other_comm + b.other_comm;
      const Duration compute = fb + f.shared_saved + b.shared_saved - a2a - other;
      *pair = std::min(fb, std::max(compute, a2a) + other);
    }
    const uint32_t m = r.micro_batches;
    return int64_t{s.pp - 1} * fb + fb + int64_t{m - 1} * *pair;
  };
  r.forward = slow.f.serial;
  r.backward = slow.b.serial;
  r.bubble = int64_t{s.pp - 1} * (r.forward + r.backward);
  r.pipeline = pipeline(slow.f, slow.b, &r.pair);
  Duration free_pair;
  const Duration free_pipeline = pipeline(slow.f_free, slow.b_free, &free_pair);
  r.alltoalls_per_micro_batch = slow.f.alltoalls + slow.b.alltoalls;
  r.dropped_copies = layer_work.TotalDropped();
  for (uint64_t t : layer_work.tokens_in) r.routed_copies += t * model.top_k();
  r.alltoall = int64_t{r.micro_batches} * (slow.f.alltoall + slow.b.alltoall);

  // Gradients and the optimizer, training only.
  if (training) {
    const uint32_t elem = models::BytesPerElement(model.dtype());
    for (uint32_t st = 0; st < s.pp; ++st) {
      const StageParams p = ParamsOnGpu(model, plan, st);
      const Duration sync = SyncTime(*net, plan.DpCpGroup(0), p.dense, elem, config) +
                            SyncTime(*net, plan.EdpGroup(0), p.expert, elem, config);
      // Adam: reads the fp32 master weight, two moments and the fp32 gradient, writes the master
      // weight, the moments and the model-dtype weight: 4 x 7 + elem bytes per parameter.
      const uint64_t dense_share = config.distributed_optimizer ? s.dp * s.cp : 1;
      const uint64_t expert_share = config.distributed_optimizer ? s.edp : 1;
      const uint64_t params = p.dense / dense_share + p.expert / expert_share;
      const Duration optimizer =
          ComputeTime(StepComputeRates(cluster, model.dtype(), config), 0, params * (28 + elem));
      if (st == r.slowest_stage || sync + optimizer > r.grad_sync + r.optimizer) {
        r.grad_sync = sync;
        r.optimizer = optimizer;
        r.dense_grad_bytes = p.dense * kGradBytes;
        r.expert_grad_bytes = p.expert * kGradBytes;
      }
    }
    r.grad_sync_exposed =
        config.overlap.gradients ? std::max(Duration(), r.grad_sync - r.backward) : r.grad_sync;
  }
  r.step = r.pipeline + r.grad_sync_exposed + r.optimizer;
  r.compute_only = free_pipeline + r.optimizer;
  r.ops = slow.ops.forward;
  r.ops.insert(r.ops.end(), slow.ops.backward.begin(), slow.ops.backward.end());

  // Model FLOPs as params.h counts them (training: 3 x forward), over the step.
  const uint64_t tokens =
      config.mode == StepMode::kDecode ? config.global_batch : config.global_batch * config.seq_len;
  const double per_token = training ? models::TrainingFlopsPerToken(model, config.seq_len)
                                    : models::ForwardFlopsPerToken(model, config.seq_len).total();
  const double peak =
      static_cast<double>(PeakFlops(cluster.gpu_spec(), model.dtype()).per_second());
  const double seconds = Seconds(r.step);
  r.mfu = per_token * static_cast<double>(tokens) / (seconds * plan.world() * peak);
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
                      routing.has_trace() ? "trace" : "explicit",
                      "a whole step draws its routing for each plan's micro-batch",
                      "routing { synthetic { ... } }");
  }
  const uint32_t ep = plan.sizes().ep;
  models::RoutingShape shape;
  shape.ranks = ep;
  shape.layers = 1;
  shape.tokens_per_rank = MoeTokensPerRank(plan, config);
  shape.num_experts = model.num_experts();
  shape.top_k = model.top_k();
  MOESIM_ASSIGN_OR_RETURN(std::vector<models::LayerRouting> layers,
                          models::ResolveRouting(routing, shape, file));
  // The EP group alone, as a plan of ep ranks.
  pb::ParallelPlan group;
  group.set_ep(ep);
  MOESIM_ASSIGN_OR_RETURN(models::Plan ep_plan, models::ResolvePlan(group, ep, model, nullptr));
  std::vector<std::vector<uint64_t>> loads;
  models::AddRoutingLoads(layers.front(), model.num_experts(), &loads);
  MOESIM_ASSIGN_OR_RETURN(models::ExpertPlacement where,
                          models::ResolvePlacement(placement, ep_plan, model.num_experts(), 1,
                                                   gpus_per_node, loads, file));
  return models::ExpandLayer(layers.front(), ep_plan, where,
                             models::ExpertCapacity(shape.tokens_per_rank, model.top_k(),
                                                    model.num_experts(), config.capacity_factor));
}

models::MemoryBreakdown StepMemory(const pb::ModelSpec& model, const models::Plan& plan,
                                   const StepConfig& config, uint32_t micro_batches,
                                   const models::LayerWork& layer_work) {
  models::MemoryOptions memory;
  memory.seq_len = config.mode == StepMode::kDecode ? 1 : config.seq_len;
  memory.micro_batch_size = config.micro_batch;
  memory.num_microbatches = micro_batches;
  memory.recompute = config.recompute;
  memory.distributed_optimizer = config.distributed_optimizer;
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

ComputeRates StepComputeRates(const topology::Cluster& cluster, pb::DType dtype,
                              const StepConfig& config) {
  const ComputeRates assumed = ComputeRates::Assumed(cluster.gpu_spec(), dtype);
  return config.hardware ? assumed.With(config.hardware->gpu()) : assumed;
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
  c.overlap = {spec.overlap().alltoall(), spec.overlap().shared_expert(),
               spec.overlap().gradients()};
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
  c.fidelity = fidelity;
  return c;
}

}  // namespace moesim::sim
