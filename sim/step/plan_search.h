// Plan search: every valid parallel plan of a model on a cluster, each simulated for a whole step,
// ranked. What `moesim plan` prints.
//
// Candidates: tp over the powers of two up to a node (and dividing the heads), pp over the
// divisors of the GPU count up to the layers (uneven first and last stages when pp does not
// divide the layers, as Megatron-Core allows), ep over the divisors of the experts that divide
// tp x dp (MoE parallel folding, etp = 1; with --expert-tp also etp = 2 .. tp, powers of two),
// dp what is left, micro-batch sizes 1, 2, 4, 8 that
// divide the global batch per DP rank, and selective or full recomputation (selective costs no
// time, so keeping every activation is never better; with step.recompute kModules, those modules
// only). cp stays 1. Every candidate goes through ResolvePlan, so the plan rules are the
// scenario's. Each is tried with every schedule asked for (the step's own by default) that can
// run it (CheckSchedule: interleaved needs m a multiple of pp and stages of a multiple of V
// layers, DualPipe an even pp and an even m >= 2 pp); the others are left out without a count.
//
// Routing: each candidate's MoE layer is the expected layer (models/expected_layer.h) of the
// routing's per-expert loads: exact for UNIFORM (equal, with a group limit too) and ZIPF
// (inclusion probabilities, hot order as the generator draws it), measured for a trace or
// MEASURED counts, a sample of 65,536 tokens of the generator otherwise (ZIPF with a group limit
// among them). With the hierarchical all-to-all, how many of a rank's tokens reach each node
// (DeepEP sends a token once per node) comes from the same sample (SetExpectedNodeTokens), or from
// a trace's first 65,536 tokens; with the per-rank one, how many reach each GPU
// (SetExpectedRankTokens), likewise. The sample is drawn once, so candidates differ by plan only,
// never by sampling noise.
//
// Ranking: plans that fit in GPU memory first, then by step time (ties: the order of
// enumeration). Deterministic: the same inputs give the same table on any number of threads or
// MPI ranks.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "models/memory.h"
#include "models/plan.h"
#include "proto/model.pb.h"
#include "proto/scenario.pb.h"
#include "proto/status.h"
#include "sim/step/step.h"
#include "topology/cluster.h"

namespace moesim::sim {

struct ScheduleChoice {
  PipelineSchedule schedule = PipelineSchedule::k1F1B;
  uint32_t virtual_stages = 1;  // interleaved: chunks per device
};

struct PlanCandidate {
  pb::ParallelPlan plan;
  uint32_t micro_batch = 1;
  Recompute recompute = Recompute::kSelective;
  ScheduleChoice schedule;
};

struct PlanRow {
  uint32_t index = 0;  // in enumeration order
  // "tp2 pp4 ep8 dp8 mb1" (+ " full-rc" with full recomputation, " int2" interleaved with 2
  // chunks per device, " dualpipe")
  std::string plan;
  models::ParallelSizes sizes;
  uint32_t micro_batch = 1;
  Recompute recompute = Recompute::kSelective;
  ScheduleChoice schedule;
  Duration step;
  double mfu = 0;       // against the model dtype's peak (StepReport::mfu)
  double mfu_bf16 = 0;  // against the BF16 peak
  double alltoall_share = 0;  // EP all-to-all time per step over the step
  Duration exposed_comm;
  Duration bubble;
  uint64_t memory_bytes = 0;  // the fullest GPU
  double dropped_share = 0;   // copies dropped by the capacity factor, of all routed
  bool fits = false;
  Fidelity fidelity = Fidelity::kAnalytical;  // the network model that timed the step
};

// What every candidate's expected layer is made from.
struct PlanRouting {
  // Relative selections per expert (see above).
  std::vector<uint64_t> loads;
  // Tokens drawn from the routing block (or a trace's first ones), top_k experts each, token-major:
  // what loads cannot say, which nodes a token reaches (DeepEP's deduplication), and the loads
  // themselves under a group limit.
  std::vector<uint32_t> sample;
  uint32_t top_k = 0;
  // "exact", "a sample of 65536 tokens", "the trace's counts; nodes from its first N tokens"
  std::string source;
};

// The routing of `routing` for `model` (see above). `trace_path`, when not empty, wins over
// `routing`. `file` locates errors.
StatusOr<PlanRouting> ResolvePlanRouting(const pb::ModelSpec& model, const pb::Routing& routing,
                                         const std::string& trace_path, const TextFile* file);

// An enumerated plan the plan rules (models::ResolvePlan) refused, and why.
struct RefusedPlan {
  std::string plan;    // named as PlanRow::plan names a plan: "tp8 pp1 ep16 dp2 mb1"
  std::string reason;  // the rule's message
};

// The candidates, in enumeration order; `refused` (when not null) gets those ResolvePlan refused,
// in enumeration order. With `expert_tp`, each also with etp = 2, 4, ... up to tp where etp
// divides the expert FFN and ep x etp divides tp x dp. `schedules`: each plan with each of these
// that can run it; empty: the step's schedule.
std::vector<PlanCandidate> EnumeratePlans(const pb::ModelSpec& model, uint32_t gpus,
                                          uint32_t gpus_per_node, const StepConfig& step,
                                          std::vector<RefusedPlan>* refused, bool expert_tp = false,
                                          const std::vector<ScheduleChoice>& schedules = {});

// One candidate. Errors are the candidate's (e.g. a batch its micro-batch does not divide).
// `placement`: where the experts go in every candidate (contiguous when its kind is unset; EPLB
// from `loads`); a candidate whose EP size the placement cannot use fails.
StatusOr<PlanRow> EvaluatePlan(const topology::Cluster& cluster, const pb::ModelSpec& model,
                               const PlanRouting& routing, const pb::ExpertPlacementSpec& placement,
                               const StepConfig& step, const PlanCandidate& candidate,
                               uint32_t index);

// Evaluates `candidates[i]` for every i with i % stride == offset on `threads` threads (the MPI
// spread gives each rank its offset), calling `progress(done)` from one thread now and then. The
// candidates that fail are left out; `first_error`, when given, gets the error of the first of
// them in enumeration order (nullopt when none failed).
std::vector<PlanRow> EvaluatePlans(const topology::Cluster& cluster, const pb::ModelSpec& model,
                                   const PlanRouting& routing,
                                   const pb::ExpertPlacementSpec& placement, const StepConfig& step,
                                   const std::vector<PlanCandidate>& candidates, uint32_t offset,
                                   uint32_t stride, uint32_t threads,
                                   const std::function<void(size_t)>& progress,
                                   std::optional<Error>* first_error = nullptr);

// Fitting plans first, then by step time, then by index.
void RankPlans(std::vector<PlanRow>& rows);

// `moesim plan --rerank-flow K`: the candidates `indices` (into `candidates`: the best K of a
// search at analytical fidelity) simulated again with `step` at flow fidelity, each row keeping
// its index, ranked by RankPlans. The flow model prices what the closed forms bound (links shared
// max-min fairly), so the best plans are ranked by the finer figure without the search paying it
// for every candidate. Error: the first candidate that could not be simulated.
StatusOr<std::vector<PlanRow>> RerankAtFlow(const topology::Cluster& cluster,
                                            const pb::ModelSpec& model, const PlanRouting& routing,
                                            const pb::ExpertPlacementSpec& placement,
                                            const StepConfig& step,
                                            const std::vector<PlanCandidate>& candidates,
                                            const std::vector<uint32_t>& indices, uint32_t threads);

}  // namespace moesim::sim
