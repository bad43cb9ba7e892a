#include "sim/step/plan_search.h"

#include "proto/checked.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

#include "models/expected_layer.h"
#include "models/placement.h"
#include "models/placement_spec.h"
#include "models/routing.h"
#include "models/synthetic.h"
#include "models/trace.h"
#include "proto/checked.h"
#include "sim/network/group_comm.h"

namespace moesim::sim {
namespace {

// Tokens drawn from a routing block (or read from a trace) for what per-expert loads cannot say.
constexpr uint32_t kSampleTokens = 65'536;

std::vector<uint32_t> Divisors(uint32_t n) {
  std::vector<uint32_t> out;
  for (uint32_t d = 1; d <= n; ++d) {
    if (n % d == 0) out.push_back(d);
  }
  return out;
}

// First and last stages take what an even split leaves (pp >= 2 and pp not dividing the layers).
void SetUnevenStages(pb::ParallelPlan& plan, uint32_t layers, uint32_t pp) {
  if (pp < 2 || layers % pp == 0) return;
  if (pp == 2) {
    plan.set_pp_first_stage_layers(layers / 2);
    plan.set_pp_last_stage_layers(layers - layers / 2);
    return;
  }
  uint32_t middle = (layers + pp - 1) / pp;
  if (layers < (pp - 2) * middle + 2) middle = layers / pp;
  const uint32_t rest = layers - (pp - 2) * middle;
  plan.set_pp_first_stage_layers(rest / 2);
  plan.set_pp_last_stage_layers(rest - rest / 2);
}

std::string Describe(const models::ParallelSizes& s, uint32_t micro_batch, Recompute recompute,
                     ScheduleChoice schedule) {
  std::string text = "tp" + std::to_string(s.tp) + " pp" + std::to_string(s.pp) + " ep" +
                     std::to_string(s.ep) + (s.etp > 1 ? " etp" + std::to_string(s.etp) : "") +
                     " dp" + std::to_string(s.dp) + " mb" + std::to_string(micro_batch);
  if (s.cp > 1) text += " cp" + std::to_string(s.cp);
  if (recompute == Recompute::kFull) text += " full-rc";
  if (schedule.schedule == PipelineSchedule::kInterleaved)
    text += " int" + std::to_string(schedule.virtual_stages);
  if (schedule.schedule == PipelineSchedule::kDualPipe) text += " dualpipe";
  return text;
}

}  // namespace

StatusOr<PlanRouting> ResolvePlanRouting(const pb::ModelSpec& model, const pb::Routing& routing,
                                         const std::string& trace_path, const TextFile* file) {
  const uint32_t experts = model.num_experts();
  PlanRouting out;
  if (!trace_path.empty()) {
    MOESIM_ASSIGN_OR_RETURN(models::TraceCounts counts, models::CountTrace(trace_path));
    if (counts.header.num_experts() != experts) {
      return InputError({}, "--trace", trace_path,
                        "the trace routes over " + std::to_string(counts.header.num_experts()) +
                            " experts, the model has " + std::to_string(experts),
                        "a trace of " + model.name());
    }
    std::vector<uint64_t> loads(experts, 0);
    for (const std::vector<uint64_t>& layer : counts.counts) {
      for (uint32_t e = 0; e < layer.size() && e < experts; ++e) loads[e] += layer[e];
    }
    uint64_t sum = 0;
    for (uint64_t l : loads) sum += l;
    if (sum == 0) return InputError({}, "--trace", trace_path, "the trace routes no token", "");
    out.loads = std::move(loads);
    // Which nodes a token reaches: the trace's first tokens, as many as a generator's sample.
    MOESIM_ASSIGN_OR_RETURN(models::TraceReader reader, models::TraceReader::Open(trace_path));
    out.top_k = reader.header().top_k();
    const size_t want = size_t{kSampleTokens} * out.top_k;
    pb::TraceRecord record;
    while (out.sample.size() < want) {
      MOESIM_ASSIGN_OR_RETURN(const bool got, reader.Next(&record));
      if (!got) break;
      const size_t take = std::min<size_t>(want - out.sample.size(), record.experts_size());
      out.sample.insert(out.sample.end(), record.experts().begin(),
                        record.experts().begin() + static_cast<int>(take));
    }
    out.source = "the trace's counts; nodes from its first " +
                 std::to_string(out.sample.size() / out.top_k) + " tokens";
    return out;
  }
  if (routing.has_scores()) {
    // The search prices an expected layer from per-expert loads and a fixed top_k per token
    // (models/expected_layer.h); a router's drops and per-batch capacity are not in that form.
    return InputError(file ? file->Locate("routing.scores") : Location{}, "routing.scores", "",
                      "plan search draws no router scores", "routing { synthetic { ... } }");
  }
  // Checks the routing block as a scenario would, and samples it.
  models::RoutingShape shape;
  shape.ranks = 1;
  shape.tokens_per_rank = kSampleTokens;
  shape.num_experts = experts;
  shape.top_k = model.top_k();
  MOESIM_ASSIGN_OR_RETURN(std::vector<models::LayerRouting> layers,
                          models::ResolveRouting(routing, shape, file));
  out.top_k = model.top_k();
  out.sample = std::move(layers.front().experts.front());
  const pb::SyntheticRouting& synthetic = routing.synthetic();
  const bool limited =
      synthetic.router_groups() > 0 && synthetic.router_group_topk() < synthetic.router_groups();
  if (routing.has_synthetic() && synthetic.distribution() == pb::SyntheticRouting::UNIFORM) {
    // Equal, group limit or not: M of G groups uniformly, then k of their M E / G experts
    // uniformly, gives every expert (M / G) (k G / (M E)) = k / E; groups picked by i.i.d. scores
    // (router_group_score_top) favour no group and no expert either.
    out.loads.assign(experts, 1);
    out.source = "exact";
    return out;
  }
  if (routing.has_synthetic() && synthetic.distribution() == pb::SyntheticRouting::ZIPF &&
      !limited) {
    // Exact expected shares, in units of 1e-12 of a token's selections.
    const std::vector<double> pi = models::InclusionProbabilities(
        models::ZipfPopularity(experts, synthetic.zipf_alpha()), model.top_k());
    const std::vector<uint32_t> order =
        models::HotOrder(experts, synthetic.seed(), 0, 0, synthetic.shuffle_experts());
    out.loads.assign(experts, 0);
    for (uint32_t r = 0; r < experts; ++r) {
      out.loads[order[r]] = static_cast<uint64_t>(std::llround(pi[r] * 1e12));
    }
    out.source = "exact";
    return out;
  }
  // A group limit moves selections between experts in a way with no closed form (the experts of
  // a token's groups share its k selections): the sample's counts.
  out.loads.assign(experts, 0);
  for (uint32_t e : out.sample) ++out.loads[e];
  out.source = "a sample of " + std::to_string(shape.tokens_per_rank) + " tokens";
  return out;
}

std::vector<PlanCandidate> EnumeratePlans(const pb::ModelSpec& model, uint32_t gpus,
                                          uint32_t gpus_per_node, const StepConfig& step,
                                          std::vector<RefusedPlan>* refused, bool expert_tp,
                                          const std::vector<ScheduleChoice>& schedules) {
  std::vector<PlanCandidate> out;
  const bool training = step.mode == StepMode::kTraining;
  const std::vector<ScheduleChoice> tried =
      schedules.empty() ? std::vector<ScheduleChoice>{{step.schedule, step.virtual_stages}}
                        : schedules;
  // Selective and full, or the step's modules alone.
  const std::vector<Recompute> recomputes =
      step.recompute == Recompute::kModules
          ? std::vector<Recompute>{Recompute::kModules}
          : std::vector<Recompute>{Recompute::kSelective, Recompute::kFull};
  for (uint32_t tp = 1; tp <= gpus_per_node && gpus % tp == 0; tp *= 2) {
    for (uint32_t pp : Divisors(gpus / tp)) {
      if (pp > model.num_layers()) break;
      const uint32_t dp = gpus / (tp * pp);
      for (uint32_t ep : Divisors(model.num_experts())) {
        for (uint32_t etp = 1; etp <= (expert_tp ? tp : 1); etp *= 2) {
          if ((tp * dp) % (ep * etp) != 0 || model.expert_ffn_size() % etp != 0) continue;
          for (uint32_t mb : {1u, 2u, 4u, 8u}) {
            if (step.global_batch % (uint64_t{dp} * mb) != 0) continue;
            for (Recompute recompute : recomputes) {
              if (recompute == Recompute::kFull && !training) continue;
              PlanCandidate c;
              c.plan.set_tp(tp);
              c.plan.set_pp(pp);
              c.plan.set_ep(ep);
              if (etp > 1) c.plan.set_etp(etp);
              c.plan.set_dp(dp);
              SetUnevenStages(c.plan, model.num_layers(), pp);
              c.micro_batch = mb;
              c.recompute = recompute;
              const auto plan = models::ResolvePlan(c.plan, gpus, model, nullptr);
              if (!plan.ok()) {
                if (refused != nullptr) {
                  const models::ParallelSizes sizes{
                      .tp = tp, .dp = dp, .pp = pp, .ep = ep, .etp = etp};
                  refused->push_back(
                      {Describe(sizes, mb, recompute, ScheduleChoice{}), plan.error().message()});
                }
                continue;
              }
              const uint32_t m = static_cast<uint32_t>(step.global_batch / (uint64_t{dp} * mb));
              for (const ScheduleChoice& schedule : tried) {
                if (!CheckSchedule(schedule.schedule, schedule.virtual_stages, *plan, m, training)
                         .ok()) {
                  continue;
                }
                c.schedule = schedule;
                out.push_back(c);
              }
            }
          }
        }
      }
    }
  }
  return out;
}

StatusOr<PlanRow> EvaluatePlan(const topology::Cluster& cluster, const pb::ModelSpec& model,
                               const PlanRouting& routing,
                               const pb::ExpertPlacementSpec& placement_spec,
                               const StepConfig& step, const PlanCandidate& candidate,
                               uint32_t index) {
  MOESIM_ASSIGN_OR_RETURN(models::Plan plan,
                          models::ResolvePlan(candidate.plan, cluster.gpus(), model, nullptr));
  StepConfig config = step;
  config.micro_batch = candidate.micro_batch;
  config.recompute = candidate.recompute;
  config.schedule = candidate.schedule.schedule;
  config.virtual_stages = candidate.schedule.virtual_stages;
  const models::ParallelSizes& s = plan.sizes();
  MOESIM_ASSIGN_OR_RETURN(models::Plan ep_plan, models::EpGroupPlan(model, s.ep));
  MOESIM_ASSIGN_OR_RETURN(
      models::ExpertPlacement placement,
      models::ResolvePlacement(placement_spec, ep_plan, model.num_experts(), 1,
                               cluster.gpus_per_node(), {routing.loads}, nullptr));
  const uint64_t tokens = MoeTokensPerRank(plan, config);
  models::LayerWork work = models::ExpectedLayer(
      routing.loads, s.ep, tokens, model.top_k(), placement,
      models::ExpertCapacity(tokens, model.top_k(), model.num_experts(), config.capacity_factor));
  // DeepEP's deduplication, where the step will use it (an EP group filling whole nodes).
  if (models::RelaysByNode(config.alltoall_algo) && !routing.sample.empty() &&
      GroupFillsNodes(cluster, plan.EpGroup(0))) {
    models::SetExpectedNodeTokens(routing.sample, routing.top_k, cluster.gpus_per_node(), tokens,
                                  placement, &work);
  }
  // The per-rank deduplication, from the same sample (deepep_normal runs it on an EP group inside
  // one node).
  if ((config.alltoall_algo == models::AllToAllAlgo::kPerRank ||
       config.alltoall_algo == models::AllToAllAlgo::kDeepEpNormal) &&
      !routing.sample.empty()) {
    models::SetExpectedRankTokens(routing.sample, routing.top_k, tokens, placement, &work);
  }
  MOESIM_ASSIGN_OR_RETURN(StepReport r, SimulateStep(cluster, model, plan, work, config));
  // A step past int64 picoseconds (saturated, proto/units.h) cannot be ranked: the candidate
  // counts as one that could not be simulated.
  MOESIM_RETURN_IF_ERROR(CheckRepresentable(r.step, "the step"));

  const models::MemoryBreakdown peak = StepMemory(model, plan, config, r.micro_batches, work);

  PlanRow row;
  row.index = index;
  row.sizes = s;
  row.micro_batch = candidate.micro_batch;
  row.recompute = candidate.recompute;
  row.schedule = candidate.schedule;
  row.plan = Describe(s, candidate.micro_batch, candidate.recompute, candidate.schedule);
  row.step = r.step;
  row.mfu = r.mfu;
  row.mfu_bf16 = r.mfu_bf16;
  row.alltoall_share = r.step.picoseconds() == 0 ? 0
                                                 : static_cast<double>(r.alltoall.picoseconds()) /
                                                       static_cast<double>(r.step.picoseconds());
  row.exposed_comm = r.exposed_communication();
  row.bubble = r.bubble;
  row.dropped_share = r.routed_copies == 0 ? 0
                                           : static_cast<double>(r.dropped_copies) /
                                                 static_cast<double>(r.routed_copies);
  row.memory_bytes = peak.total().value;
  row.fits =
      peak.total().value <= static_cast<uint64_t>(std::llround(cluster.gpu_spec().hbm_gb * 1e9));
  row.fidelity = config.fidelity;
  return row;
}

std::vector<PlanRow> EvaluatePlans(const topology::Cluster& cluster, const pb::ModelSpec& model,
                                   const PlanRouting& routing,
                                   const pb::ExpertPlacementSpec& placement, const StepConfig& step,
                                   const std::vector<PlanCandidate>& candidates, uint32_t offset,
                                   uint32_t stride, uint32_t threads,
                                   const std::function<void(size_t)>& progress,
                                   std::optional<Error>* first_error) {
  std::vector<uint32_t> mine;
  for (uint32_t i = offset; i < candidates.size(); i += stride) mine.push_back(i);
  // Candidates that differ only in pipeline stages, recomputation or micro-batches run the same
  // EP all-to-alls and rings: each is timed once (the same answer, bit for bit).
  CollectiveMemo memo;
  StepConfig shared = step;
  if (shared.memo == nullptr) shared.memo = &memo;
  std::vector<std::optional<PlanRow>> rows(mine.size());
  std::vector<std::optional<Error>> errors(mine.size());
  std::atomic<size_t> next{0}, done{0};
  auto work = [&](bool reporter) {
    for (size_t k = next++; k < mine.size(); k = next++) {
      auto row =
          EvaluatePlan(cluster, model, routing, placement, shared, candidates[mine[k]], mine[k]);
      if (row.ok()) {
        rows[k] = std::move(*row);
      } else {
        errors[k] = row.error();
      }
      ++done;
      if (reporter && progress) progress(done.load());
    }
  };
  std::vector<std::thread> pool;
  for (uint32_t t = 1; t < std::max(threads, 1u); ++t) pool.emplace_back(work, false);
  work(true);
  for (std::thread& t : pool) t.join();
  if (progress) progress(done.load());
  std::vector<PlanRow> out;
  for (auto& r : rows) {
    if (r) out.push_back(std::move(*r));
  }
  if (first_error != nullptr) {
    *first_error = std::nullopt;
    for (auto& e : errors) {
      if (e) {
        *first_error = std::move(e);
        break;
      }
    }
  }
  return out;
}

void RankPlans(std::vector<PlanRow>& rows) {
  std::sort(rows.begin(), rows.end(), [](const PlanRow& a, const PlanRow& b) {
    if (a.fits != b.fits) return a.fits;
    if (a.step != b.step) return a.step < b.step;
    return a.index < b.index;
  });
}

StatusOr<std::vector<PlanRow>> RerankAtFlow(const topology::Cluster& cluster,
                                            const pb::ModelSpec& model, const PlanRouting& routing,
                                            const pb::ExpertPlacementSpec& placement,
                                            const StepConfig& step,
                                            const std::vector<PlanCandidate>& candidates,
                                            const std::vector<uint32_t>& indices,
                                            uint32_t threads) {
  std::vector<PlanCandidate> chosen;
  for (uint32_t i : indices) chosen.push_back(candidates.at(i));
  StepConfig flow = step;
  flow.fidelity = Fidelity::kFlow;
  std::optional<Error> first_error;
  std::vector<PlanRow> rows = EvaluatePlans(cluster, model, routing, placement, flow, chosen, 0, 1,
                                            threads, {}, &first_error);
  if (rows.size() != chosen.size()) {
    return first_error ? *first_error : Error("--rerank-flow: a plan could not be simulated");
  }
  for (PlanRow& r : rows) r.index = indices[r.index];
  RankPlans(rows);
  return rows;
}

}  // namespace moesim::sim
