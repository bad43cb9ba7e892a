// `moesim plan --model M --cluster C --gpus N --global-batch B --seq-len S [--trace T] ...`:
// every valid plan simulated for a whole step, ranked (sim/step/plan_search.h). On all cores; under
// mpirun or srun the candidates are spread over the ranks and rank 0 prints the same table a
// single process prints.
#include <fmt/format.h>
#include <google/protobuf/text_format.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "models/dispatch.h"
#include "models/model_spec.h"
#include "proto/atomic_file.h"
#include "proto/checked.h"
#include "proto/text_file.h"
#include "sim/cli/command.h"
#include "sim/cli/mpi_spread.h"
#include "sim/cli/plan_options.h"
#include "sim/cli/progress_bar.h"
#include "sim/compute/profile_predict.h"
#include "sim/report/html_report.h"
#include "sim/step/plan_search.h"

namespace moesim::sim {
namespace {

using plan_cli::EmitScenario;
using plan_cli::PlanOptions;
using plan_cli::PresetCluster;
using plan_cli::RecomputeName;
using plan_cli::SplitCommas;

// Every number given on the command line, against the range the same field of a scenario or
// cluster file declares (proto/range.proto): one limit per figure, wherever it is written.
Status CheckPlanFlags(const PlanOptions& o) {
  struct Flag {
    const char* name;
    std::optional<double> value;
    const pb::Range& range;
  };
  auto given = [](const std::optional<uint32_t>& v) {
    return v ? std::optional<double>(*v) : std::nullopt;
  };
  auto nonzero = [](double v) { return v != 0 ? std::optional<double>(v) : std::nullopt; };
  const Flag flags[] = {
      {"--gpus", given(o.gpus), DeclaredRange<pb::Cluster>("gpus")},
      {"--global-batch", static_cast<double>(o.global_batch),
       DeclaredRange<pb::StepSpec>("global_batch")},
      {"--seq-len", static_cast<double>(o.seq_len), DeclaredRange<pb::StepSpec>("seq_len")},
      {"--router-groups", nonzero(o.router_groups),
       DeclaredRange<pb::SyntheticRouting>("router_groups")},
      {"--router-group-topk", nonzero(o.router_group_topk),
       DeclaredRange<pb::SyntheticRouting>("router_group_topk")},
      {"--router-group-score-top", nonzero(o.router_group_score_top),
       DeclaredRange<pb::SyntheticRouting>("router_group_score_top")},
      {"--capacity-factor", o.capacity_factor, DeclaredRange<pb::StepSpec>("capacity_factor")},
      {"--alltoall-chunk-tokens", given(o.alltoall_chunk_tokens),
       DeclaredRange<pb::StepSpec>("alltoall_chunk_tokens")},
      {"--virtual-stages", static_cast<double>(o.virtual_stages),
       DeclaredRange<pb::StepSpec>("virtual_stages")},
      {"--mtp-depth", static_cast<double>(o.mtp_depth), DeclaredRange<pb::StepSpec>("mtp_depth")},
      {"--comm-sms", given(o.comm_sms), DeclaredRange<pb::StepSpec>("comm_sms")},
      {"--alltoall-hidden", o.alltoall_hidden,
       DeclaredRange<pb::StepSpec::Overlap>("alltoall_hidden")},
      {"--dispatch-kernel-gbps", o.dispatch_kernel_gbps,
       DeclaredRange<pb::StepSpec>("dispatch_kernel_gbps")},
      {"--combine-kernel-gbps", o.combine_kernel_gbps,
       DeclaredRange<pb::StepSpec>("combine_kernel_gbps")},
      {"--dispatch-rdma-kernel-gbps", o.dispatch_rdma_kernel_gbps,
       DeclaredRange<pb::StepSpec>("dispatch_rdma_kernel_gbps")},
      {"--combine-rdma-kernel-gbps", o.combine_rdma_kernel_gbps,
       DeclaredRange<pb::StepSpec>("combine_rdma_kernel_gbps")},
      {"--host-us-per-kernel", o.host_us_per_kernel,
       DeclaredRange<pb::StepSpec>("host_us_per_kernel")},
  };
  for (const Flag& f : flags) {
    if (f.value) MOESIM_RETURN_IF_ERROR(CheckFigure(*f.value, f.range, {}, f.name));
  }
  return Status::Ok();
}

// A preset name with --gpus beyond one node becomes that many nodes on a rail-optimized fabric;
// a file is taken as it is.

StatusOr<topology::Cluster> PlanCluster(const PlanOptions& o) {
  const bool file = o.cluster.find('/') != std::string::npos || o.cluster.ends_with(".pbtxt") ||
                    o.cluster.ends_with(".xml");
  if (file || !o.gpus) return topology::LoadClusterArgument(o.cluster, "");
  MOESIM_ASSIGN_OR_RETURN(topology::Cluster one, topology::LoadClusterArgument(o.cluster, ""));
  const uint32_t per_node = one.gpus_per_node();
  const uint32_t nodes = (*o.gpus + per_node - 1) / per_node;
  if (nodes <= 1) return one;
  return topology::BuildCluster(PresetCluster(o.cluster, nodes));
}

StatusOr<pb::Routing> ParseRouting(const std::string& text) {
  pb::Routing r;
  if (text == "uniform") {
    r.mutable_synthetic()->set_distribution(pb::SyntheticRouting::UNIFORM);
    return r;
  }
  if (text.starts_with("zipf:")) {
    char* end = nullptr;
    const double alpha = std::strtod(text.c_str() + 5, &end);
    if (end != nullptr && *end == '\0' && alpha > 0) {
      r.mutable_synthetic()->set_distribution(pb::SyntheticRouting::ZIPF);
      r.mutable_synthetic()->set_zipf_alpha(alpha);
      r.mutable_synthetic()->set_shuffle_experts(true);
      return r;
    }
  }
  return InputError({}, "--routing", text, "not a routing", "uniform, zipf:ALPHA (ALPHA > 0)");
}

pb::PlanRow ToProto(const PlanRow& r, const std::string& recompute_modules) {
  pb::PlanRow p;
  p.set_index(r.index);
  p.set_plan(r.plan);
  p.set_tp(r.sizes.tp);
  p.set_cp(r.sizes.cp);
  p.set_pp(r.sizes.pp);
  p.set_ep(r.sizes.ep);
  p.set_dp(r.sizes.dp);
  p.set_edp(r.sizes.edp);
  p.set_etp(r.sizes.etp);
  p.set_micro_batch(r.micro_batch);
  p.set_recompute(RecomputeName(r.recompute, recompute_modules));
  p.set_step_ps(r.step.picoseconds());
  p.set_step_ms(static_cast<double>(r.step.picoseconds()) / 1e9);
  p.set_mfu(r.mfu);
  p.set_mfu_bf16(r.mfu_bf16);
  p.set_alltoall_share(r.alltoall_share);
  p.set_exposed_comm_ms(static_cast<double>(r.exposed_comm.picoseconds()) / 1e9);
  p.set_bubble_ms(static_cast<double>(r.bubble.picoseconds()) / 1e9);
  p.set_memory_bytes(r.memory_bytes);
  p.set_fits(r.fits);
  p.set_dropped_share(r.dropped_share);
  p.set_schedule(std::string(ToString(r.schedule.schedule)));
  p.set_virtual_stages(r.schedule.virtual_stages);
  p.set_fidelity(std::string(ToString(r.fidelity)));
  return p;
}

// --schedule: one schedule, or every one ("all"), interleaved with --virtual-stages chunks.
StatusOr<std::vector<ScheduleChoice>> ParseSchedules(const PlanOptions& o) {
  if (o.virtual_stages < 2) {
    return InputError({}, "--virtual-stages", std::to_string(o.virtual_stages),
                      "interleaving needs at least two chunks per device", ">= 2");
  }
  const ScheduleChoice interleaved{PipelineSchedule::kInterleaved, o.virtual_stages};
  if (o.schedule == "all") {
    return std::vector<ScheduleChoice>{{}, interleaved, {PipelineSchedule::kDualPipe, 1}};
  }
  MOESIM_ASSIGN_OR_RETURN(const PipelineSchedule one, ParseSchedule(o.schedule, {}, "--schedule"));
  if (one == PipelineSchedule::kInterleaved) return std::vector<ScheduleChoice>{interleaved};
  return std::vector<ScheduleChoice>{{one, 1}};
}

}  // namespace

void PrintPlanTable(const pb::PlanTable& t, uint32_t top, bool show_refused, CommandIo& io) {
  io.out << t.model() << " on " << t.gpus() << " x " << t.cluster() << ", " << t.mode()
         << ", global batch " << t.global_batch() << " x " << t.seq_len() << " tokens, "
         << t.fidelity() << ", " << t.placement() << " placement: " << t.candidates()
         << " plans simulated";
  if (t.rejected() > 0) {
    io.out << ", " << t.rejected() << " refused by the plan rules"
           << (show_refused ? " (listed below)" : " (--show-refused lists them)");
  }
  if (t.failed() > 0) io.out << ", " << t.failed() << " could not be simulated";
  io.out << "\nrouting: " << t.routing() << "\nhardware: " << t.hardware()
         << "; EP all-to-alls: " << t.alltoall_algo();
  if (!t.dispatch_dtype().empty()) io.out << ", dispatch in " << t.dispatch_dtype();
  if (!t.combine_dtype().empty()) io.out << ", combine in " << t.combine_dtype();
  // The kernels' own rates, as the step report's EP all-to-all line words them.
  auto rates = [&](bool d, double dg, bool c, double cg, const char* kernels, const char* unit) {
    if (!d && !c) return;
    io.out << "; " << kernels << " at most";
    if (d) io.out << fmt::format(" dispatch {:g}", dg);
    if (c) io.out << fmt::format("{} combine {:g}", d ? "," : "", cg);
    io.out << " " << unit << " per GPU";
  };
  rates(t.has_dispatch_kernel_gbps(), t.dispatch_kernel_gbps(), t.has_combine_kernel_gbps(),
        t.combine_kernel_gbps(), "the kernels", "GB/s");
  rates(t.has_dispatch_rdma_kernel_gbps(), t.dispatch_rdma_kernel_gbps(),
        t.has_combine_rdma_kernel_gbps(), t.combine_rdma_kernel_gbps(), "the internode kernels",
        "GB/s (RDMA)");
  if (t.has_host_us_per_kernel())
    io.out << fmt::format("; the host {:g} us a kernel", t.host_us_per_kernel());
  if (t.schedule() == "interleaved" || t.schedule() == "all") {
    io.out << (t.pipeline_sends_exposed()
                   ? "; interleaved: pipeline sends on the critical path (--no-overlap-pipeline)"
                   : "; interleaved: pipeline sends beside the compute (Megatron's "
                     "overlap_p2p_comm)");
  }
  io.out << "\n";
  if (t.rerank_flow() > 0) {
    io.out << "rows 1-" << std::min<int>(t.rerank_flow(), t.rows_size())
           << ": re-timed at flow fidelity" << FlowToleranceNote(t.flow_tolerance())
           << " and ranked by it (--rerank-flow " << t.rerank_flow()
           << "); the rest: " << t.fidelity() << "\n";
  }
  io.out << "\n";
  const bool drops = t.capacity_factor() > 0;
  // The plan column fits the longest plan printed ("... full-rc dualpipe"), 26 at least.
  size_t width = 26;
  for (int i = 0; i < t.rows_size() && i < static_cast<int>(top); ++i)
    width = std::max(width, t.rows(i).plan().size());
  // MFU against the model dtype's dense peak and, for a model that is not BF16, against BF16's too.
  const bool two_mfus = t.mfu_dtype() != "BF16";
  const std::string mfu_header = "MFU " + t.mfu_dtype() + " %";
  io.out << fmt::format("{:>4}  {:<{}} {:>11} {:>11}{} {:>7} {:>12} {:>10} {:>9} {:>5}{}\n", "rank",
                        "plan", width, "step ms", mfu_header,
                        two_mfus ? fmt::format(" {:>11}", "MFU BF16 %") : "", "a2a %", "exposed ms",
                        "bubble ms", "mem GB", "fits", drops ? "  drop %" : "");
  for (int i = 0; i < t.rows_size() && i < static_cast<int>(top); ++i) {
    const pb::PlanRow& r = t.rows(i);
    io.out << fmt::format(
        "{:4}  {:<{}} {:>11.2f} {:>11.1f}{} {:>7.1f} {:>12.2f} {:>10.2f} {:>9.1f} "
        "{:>5}",
        i + 1, r.plan(), width, r.step_ms(), 100 * r.mfu(),
        two_mfus ? fmt::format(" {:>11.1f}", 100 * r.mfu_bf16()) : "", 100 * r.alltoall_share(),
        r.exposed_comm_ms(), r.bubble_ms(), static_cast<double>(r.memory_bytes()) / 1e9,
        r.fits() ? "yes" : "no");
    if (drops) io.out << fmt::format(" {:>7.2f}", 100 * r.dropped_share());
    io.out << "\n";
  }
}

void PrintRefusedPlans(const pb::PlanTable& t, CommandIo& io) {
  io.out << "\nrefused by the plan rules: " << t.refused_size() << "\n";
  size_t width = 0;
  for (const pb::RefusedPlan& r : t.refused()) width = std::max(width, r.plan().size());
  for (const pb::RefusedPlan& r : t.refused())
    io.out << fmt::format("  {:<{}}  {}\n", r.plan(), width, r.reason());
}

namespace {

void PrintCsv(const pb::PlanTable& t, uint32_t top, CommandIo& io) {
  io.out << "rank,plan,tp,cp,pp,ep,dp,edp,micro_batch,recompute,step_ms,mfu,alltoall_share,"
            "exposed_comm_ms,bubble_ms,memory_bytes,fits,dropped_share,etp,schedule,"
            "virtual_stages,mfu_bf16\n";
  for (int i = 0; i < t.rows_size() && i < static_cast<int>(top); ++i) {
    const pb::PlanRow& r = t.rows(i);
    io.out << fmt::format(
        "{},{},{},{},{},{},{},{},{},{},{:.6f},{:.6f},{:.6f},{:.6f},{:.6f},{},{},{:.6f},{},{},{},"
        "{:.6f}\n",
        i + 1, r.plan(), r.tp(), r.cp(), r.pp(), r.ep(), r.dp(), r.edp(), r.micro_batch(),
        // The modules' list holds commas: quoted, as CSV quotes a field.
        r.recompute().find(',') == std::string::npos ? r.recompute() : '"' + r.recompute() + '"',
        r.step_ms(), r.mfu(), r.alltoall_share(), r.exposed_comm_ms(), r.bubble_ms(),
        r.memory_bytes(), r.fits() ? 1 : 0, r.dropped_share(), r.etp(), r.schedule(),
        r.virtual_stages(), r.mfu_bf16());
  }
}

int RunPlan(const PlanOptions& o, CommandIo& io) {
  if (const Status flags = CheckPlanFlags(o); !flags.ok()) return Fail(io, flags.error());
  if (!o.html.empty()) {
    if (const Status s = CheckOutputPath(o.html, "--html"); !s.ok()) return Fail(io, s.error());
  }
  if ((o.emit_scenario > 0) != !o.output.empty()) {
    return Fail(
        io, InputError({}, o.emit_scenario > 0 ? "-o" : "--emit-scenario", "missing",
                       "--emit-scenario N and -o FILE go together", "--emit-scenario N -o FILE"));
  }
  if (!o.output.empty()) {
    if (const Status s = CheckOutputPath(o.output, "-o"); !s.ok()) return Fail(io, s.error());
  }
  auto model = models::LoadModelArgument(o.model);
  if (!model.ok()) return Fail(io, model.error());
  auto cluster = PlanCluster(o);
  if (!cluster.ok()) return Fail(io, cluster.error());
  if (Status s = topology::SetNcclVersionArgument(*cluster, o.nccl_version); !s.ok())
    return Fail(io, s.error());
  const uint32_t gpus = o.gpus.value_or(cluster->gpus());
  if (gpus != cluster->gpus()) {
    return Fail(io, InputError({}, "--gpus", std::to_string(gpus),
                               "the cluster has " + std::to_string(cluster->gpus()) + " GPUs",
                               "a whole number of nodes, or a cluster file of that many GPUs"));
  }
  if (o.global_batch == 0 || o.seq_len == 0) {
    return Fail(io, InputError({}, o.global_batch == 0 ? "--global-batch" : "--seq-len", "0",
                               "a step needs sequences of tokens", ">= 1"));
  }
  StepConfig step;
  step.global_batch = o.global_batch;
  step.seq_len = o.seq_len;
  step.mode = o.mode == "prefill"  ? StepMode::kPrefill
              : o.mode == "decode" ? StepMode::kDecode
                                   : StepMode::kTraining;
  const StatusOr<Fidelity> fidelity = ParseFidelity(o.fidelity);
  if (!fidelity.ok()) return Fail(io, fidelity.error());
  step.fidelity = *fidelity;
  if (o.rerank_flow > 0 && step.fidelity == Fidelity::kFlow) {
    return Fail(io, InputError({}, "--rerank-flow", std::to_string(o.rerank_flow),
                               "re-times an analytical search's best plans; this search is "
                               "already at flow fidelity",
                               "--fidelity analytical, or leave --rerank-flow out"));
  }
  const StatusOr<FlowOptions> flow =
      ParseFlowOptions(o.flow_tolerance, step.fidelity == Fidelity::kFlow || o.rerank_flow > 0);
  if (!flow.ok()) return Fail(io, flow.error());
  step.flow = *flow;
  step.overlap.alltoall = o.overlap_alltoall;
  step.overlap.shared_expert = o.overlap_shared;
  step.overlap.gradients = o.overlap_grads;
  step.overlap.tp = o.overlap_tp;
  if (o.no_overlap_pipeline) step.overlap.pipeline = false;
  if (o.alltoall_hidden && !o.overlap_alltoall && o.schedule != "dualpipe" && o.schedule != "all") {
    return Fail(io, InputError({}, "--alltoall-hidden", fmt::format("{:g}", *o.alltoall_hidden),
                               "nothing overlaps the all-to-alls",
                               "with --overlap-alltoall or --schedule dualpipe (or all)"));
  }
  step.overlap.alltoall_hidden = o.alltoall_hidden;
  step.grad_bytes = o.grad_reduce_in_fp32 ? kGradBytes : 2;
  step.dispatch_kernel_gbps = o.dispatch_kernel_gbps;
  step.combine_kernel_gbps = o.combine_kernel_gbps;
  step.dispatch_rdma_kernel_gbps = o.dispatch_rdma_kernel_gbps;
  step.combine_rdma_kernel_gbps = o.combine_rdma_kernel_gbps;
  if (o.host_us_per_kernel) step.host_per_kernel = HostPerKernel(*o.host_us_per_kernel);
  step.capacity_factor = o.capacity_factor;
  const StatusOr<models::AllToAllAlgo> algo =
      models::ParseAllToAllAlgo(o.alltoall_algo, {}, "--alltoall-algo");
  if (!algo.ok()) return Fail(io, algo.error());
  step.alltoall_algo = *algo;
  if ((o.dispatch_rdma_kernel_gbps || o.combine_rdma_kernel_gbps) && !models::RelaysByNode(*algo)) {
    const bool d = o.dispatch_rdma_kernel_gbps.has_value();
    return Fail(io, InputError({}, d ? "--dispatch-rdma-kernel-gbps" : "--combine-rdma-kernel-gbps",
                               fmt::format("{:g}", d ? *o.dispatch_rdma_kernel_gbps
                                                     : *o.combine_rdma_kernel_gbps),
                               "the internode kernels' RDMA rate bounds a relay deduplicated per "
                               "node; --alltoall-algo " +
                                   o.alltoall_algo + " has none",
                               "with --alltoall-algo hierarchical or deepep_normal"));
  }
  const StatusOr<uint32_t> chunk =
      models::ParseChunkTokens(o.alltoall_chunk_tokens.has_value(),
                               o.alltoall_chunk_tokens.value_or(0), *algo, {},
                               "--alltoall-chunk-tokens");
  if (!chunk.ok()) return Fail(io, chunk.error());
  step.chunk_tokens = *chunk;
  const StatusOr<std::optional<models::WireDtype>> dispatch_dtype =
      models::ParseWireDtype(o.dispatch_dtype, {}, "--dispatch-dtype");
  if (!dispatch_dtype.ok()) return Fail(io, dispatch_dtype.error());
  step.dispatch_dtype = *dispatch_dtype;
  const StatusOr<std::optional<models::WireDtype>> combine_dtype =
      models::ParseWireDtype(o.combine_dtype, {}, "--combine-dtype");
  if (!combine_dtype.ok()) return Fail(io, combine_dtype.error());
  step.combine_dtype = *combine_dtype;
  const StatusOr<std::vector<ScheduleChoice>> schedules = ParseSchedules(o);
  if (!schedules.ok()) return Fail(io, schedules.error());
  if (schedules->size() == 1) {
    step.schedule = schedules->front().schedule;
    step.virtual_stages = schedules->front().virtual_stages;
  }
  if (step.mode != StepMode::kTraining && o.schedule != "1f1b") {
    return Fail(io, InputError({}, "--schedule", o.schedule,
                               "a training schedule; prefill and decode run 1F1B", "1f1b"));
  }
  if (!o.recompute_modules.empty()) {
    const StatusOr<RecomputeModules> modules =
        models::ParseRecomputeModules(SplitCommas(o.recompute_modules), {}, "--recompute-modules");
    if (!modules.ok()) return Fail(io, modules.error());
    step.recompute = Recompute::kModules;
    step.recompute_modules = *modules;
  }
  step.fp8_activations = o.fp8_activations;
  step.mtp_depth = o.mtp_depth;
  step.comm_sms = o.comm_sms;
  const StatusOr<ExpertGemm> expert_gemm = ParseExpertGemm(o.expert_gemm, {}, "--expert-gemm");
  if (!expert_gemm.ok()) return Fail(io, expert_gemm.error());
  step.expert_gemm = *expert_gemm;
  if (auto k = KernelModel::Defaults(cluster->gpu_spec(), model->dtype(), step.expert_gemm, {},
                                     "--expert-gemm");
      !k.ok()) {
    return Fail(io, k.error());
  }
  if (!o.hardware.empty()) {
    auto profile = LoadHardwareProfile(o.hardware);
    if (!profile.ok()) return Fail(io, profile.error());
    step.hardware = *std::move(profile);
  }
  auto routing = ParseRouting(o.routing);
  if (!routing.ok()) return Fail(io, routing.error());
  if (o.router_groups != 0 || o.router_group_topk != 0 || o.router_group_score_top != 0) {
    if (!o.trace.empty()) {
      return Fail(io, Error("--router-groups and --router-group-topk shape --routing; a --trace "
                            "brings its own routing"));
    }
    const Status limit = CheckRouterGroupOptions(o.router_groups, o.router_group_topk,
                                                 model->num_experts(), model->top_k());
    if (!limit.ok()) return Fail(io, limit.error());
    routing->mutable_synthetic()->set_router_groups(o.router_groups);
    routing->mutable_synthetic()->set_router_group_topk(o.router_group_topk);
    if (o.router_group_score_top != 0) {
      if (o.router_groups == 0 || o.routing != "uniform") {
        return Fail(io, InputError({}, "--router-group-score-top",
                                   std::to_string(o.router_group_score_top),
                                   "scores the groups of a group limit over uniform routing",
                                   "with --router-groups, --router-group-topk and --routing "
                                   "uniform"));
      }
      // The routing block checks the rest (models/synthetic_spec.cc): 1 to experts per group.
      routing->mutable_synthetic()->set_router_group_score_top(o.router_group_score_top);
    }
  }
  auto plan_routing = ResolvePlanRouting(*model, *routing, o.trace, nullptr);
  if (!plan_routing.ok()) return Fail(io, plan_routing.error());
  auto placement = ParsePlacementFlag(o.placement);
  if (!placement.ok()) return Fail(io, placement.error());

  std::vector<RefusedPlan> refused;
  const std::vector<PlanCandidate> candidates = EnumeratePlans(
      *model, gpus, cluster->gpus_per_node(), step, &refused, o.expert_tp, *schedules);
  if (candidates.empty()) {
    return Fail(io, InputError({}, "--global-batch", std::to_string(o.global_batch),
                               "no valid plan: the global batch must be a multiple of the "
                               "data-parallel size times a micro-batch of 1, 2, 4 or 8",
                               "e.g. a multiple of " + std::to_string(gpus)));
  }
  const MpiSpread spread = MpiSpread::Start();
  const uint32_t threads =
      o.threads != 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  // Progress on stderr from rank 0 (not under --quiet; not when a test captures stderr).
  const bool report = spread.rank() == 0 && &io.err == &std::cerr && !o.quiet;
  const size_t mine = (candidates.size() + spread.size() - 1 - spread.rank()) / spread.size();
  ProgressBar progress("moesim plan", "plans", mine, report);
  std::optional<Error> first_error;
  std::vector<PlanRow> rows =
      EvaluatePlans(*cluster, *model, *plan_routing, *placement, step, candidates, spread.rank(),
                    spread.size(), threads, progress, &first_error);
  std::vector<pb::PlanRow> mine_rows;
  for (const PlanRow& r : rows) mine_rows.push_back(ToProto(r, o.recompute_modules));
  std::vector<pb::PlanRow> all = spread.GatherRows(mine_rows);
  if (spread.rank() != 0) return 0;
  if (all.empty() && !candidates.empty()) {
    // Not one candidate could be simulated: an empty table with exit 0 would hide why. Rank 0
    // evaluates candidate 0, so its first failure is the first of all.
    return Fail(io, Error("none of the " + std::to_string(candidates.size()) +
                          " plans could be simulated" +
                          (first_error ? "; the first: " + first_error->message() : "")));
  }
  std::sort(all.begin(), all.end(), [](const pb::PlanRow& a, const pb::PlanRow& b) {
    if (a.fits() != b.fits()) return a.fits();
    if (a.step_ps() != b.step_ps()) return a.step_ps() < b.step_ps();
    return a.index() < b.index();
  });
  // --rerank-flow K: the best K again at flow fidelity, ranked by it, at the top.
  const uint32_t reranked = std::min<uint32_t>(o.rerank_flow, static_cast<uint32_t>(all.size()));
  if (reranked > 0) {
    std::vector<uint32_t> best;
    for (uint32_t i = 0; i < reranked; ++i) best.push_back(all[i].index());
    const StatusOr<std::vector<PlanRow>> flow =
        RerankAtFlow(*cluster, *model, *plan_routing, *placement, step, candidates, best, threads);
    if (!flow.ok()) return Fail(io, flow.error());
    for (uint32_t i = 0; i < reranked; ++i) all[i] = ToProto((*flow)[i], o.recompute_modules);
  }
  pb::PlanTable table;
  table.set_model(model->name());
  table.set_cluster(cluster->description());
  table.set_gpus(gpus);
  table.set_mode(o.mode);
  table.set_global_batch(o.global_batch);
  table.set_seq_len(o.seq_len);
  table.set_fidelity(o.fidelity);
  table.set_flow_tolerance(o.flow_tolerance);
  table.set_placement(o.placement);
  table.set_capacity_factor(o.capacity_factor);
  table.set_alltoall_algo(o.alltoall_algo);
  table.set_dispatch_dtype(o.dispatch_dtype);
  table.set_combine_dtype(o.combine_dtype);
  if (o.dispatch_kernel_gbps) table.set_dispatch_kernel_gbps(*o.dispatch_kernel_gbps);
  if (o.combine_kernel_gbps) table.set_combine_kernel_gbps(*o.combine_kernel_gbps);
  if (o.host_us_per_kernel) table.set_host_us_per_kernel(*o.host_us_per_kernel);
  if (o.dispatch_rdma_kernel_gbps)
    table.set_dispatch_rdma_kernel_gbps(*o.dispatch_rdma_kernel_gbps);
  if (o.combine_rdma_kernel_gbps) table.set_combine_rdma_kernel_gbps(*o.combine_rdma_kernel_gbps);
  table.set_schedule(o.schedule);
  table.set_virtual_stages(o.virtual_stages);
  table.set_pipeline_sends_exposed(o.no_overlap_pipeline);
  table.set_rerank_flow(reranked);
  std::string routing_text = o.trace.empty() ? o.routing : "--trace " + o.trace;
  if (o.router_groups != 0) {
    routing_text += ", " + std::to_string(o.router_group_topk) + " of " +
                    std::to_string(o.router_groups) + " groups per token";
    if (o.router_group_score_top != 0) {
      routing_text += " by the sum of their best " + std::to_string(o.router_group_score_top) +
                      " expert scores";
    }
  }
  table.set_routing(routing_text + " (loads: " + plan_routing->source + ")");
  table.set_hardware(step.hardware ? "profile " + step.hardware->name()
                                   : "per-kernel efficiencies");
  table.set_mfu_dtype(pb::DType_Name(model->dtype()));
  table.set_candidates(static_cast<uint32_t>(all.size()));
  table.set_rejected(static_cast<uint32_t>(refused.size()));
  for (const RefusedPlan& r : refused) {
    pb::RefusedPlan* out = table.add_refused();
    out->set_plan(r.plan);
    out->set_reason(r.reason);
  }
  table.set_failed(static_cast<uint32_t>(candidates.size() - all.size()));
  for (pb::PlanRow& r : all) *table.add_rows() = std::move(r);
  if (const Status sane = CheckReportedFigures(table, "plan search"); !sane.ok()) {
    return Fail(io, sane.error());
  }
  if (!o.html.empty()) {
    const Status written = WriteFileAtomically(o.html, HtmlPlanPage(table), "the HTML report");
    if (!written.ok()) return Fail(io, written.error());
  }
  if (o.emit_scenario > 0) {
    const uint32_t nodes = gpus / std::max(1u, cluster->gpus_per_node());
    const Status emitted =
        EmitScenario(o, *model, *routing, *placement, nodes, candidates, table, io.err);
    if (!emitted.ok()) return Fail(io, emitted.error());
  }
  if (o.json) {
    return PrintJson(table, io);
  }
  if (o.csv) {
    PrintCsv(table, o.top, io);
  } else {
    PrintPlanTable(table, o.top, o.show_refused, io);
    if (o.show_refused) PrintRefusedPlans(table, io);
  }
  return 0;
}

}  // namespace

void AddPlanCommand(CLI::App& app, CommandAction* chosen) {
  auto o = std::make_shared<PlanOptions>();
  CLI::App* cmd = app.add_subcommand(
      "plan",
      "every valid parallel plan of a model on a cluster, simulated for a whole step, ranked");
  cmd->add_option("--model", o->model, "catalog name or ModelSpec .pbtxt")->required();
  cmd->add_option(
         "--cluster", o->cluster,
         "node preset (with --gpus: that many GPUs on a rail-optimized fabric) or cluster file")
      ->capture_default_str();
  cmd->add_option("--gpus", o->gpus, "GPUs of the job");
  cmd->add_option("--nccl-version", o->nccl_version,
                  "the NCCL release whose rules the collectives follow, \"2.19\" and later (e.g. "
                  "2.28; default: the cluster file's, else 2.29)");
  cmd->add_option("--global-batch", o->global_batch, "sequences per step")->required();
  cmd->add_option("--seq-len", o->seq_len, "tokens per sequence (decode: the context)")
      ->capture_default_str();
  cmd->add_option("--mode", o->mode, "training, prefill or decode")
      ->check(CLI::IsMember({"training", "prefill", "decode"}))
      ->capture_default_str();
  cmd->add_option("--routing", o->routing, "uniform or zipf:ALPHA (hot experts shuffled)")
      ->capture_default_str();
  cmd->add_option("--router-groups", o->router_groups,
                  "group-limited routing over this many groups of consecutive experts "
                  "(DeepSeek's n_group)");
  cmd->add_option("--router-group-topk", o->router_group_topk,
                  "groups each token's experts come from (DeepSeek's topk_group)");
  cmd->add_option("--router-group-score-top", o->router_group_score_top,
                  "pick each token's groups by the sum of their best N expert scores "
                  "(DeepSeek-V3: 2) instead of drawing them first (uniform routing)");
  cmd->add_option("--placement", o->placement,
                  "contiguous, round-robin, or eplb[:REDUNDANT[:GROUPS]] (DeepSeek's EPLB on the "
                  "routing's loads, REDUNDANT extra replicas per EP group)")
      ->capture_default_str();
  cmd->add_option("--trace", o->trace, "routing trace (moesim trace): per-expert loads from it");
  cmd->add_option("--hardware", o->hardware,
                  "HardwareProfile (moesim calibrate --out): measured figures replace the assumed");
  cmd->add_option("--fidelity", o->fidelity, "analytical or flow")
      ->check(CLI::IsMember({"analytical", "flow"}))
      ->capture_default_str();
  cmd->add_flag("--overlap-alltoall", o->overlap_alltoall,
                "hide one micro-batch's all-to-alls under another's compute");
  cmd->add_option("--alltoall-hidden", o->alltoall_hidden,
                  "the most of the all-to-alls' time overlap hides, 0 to 1 (default: 0.3655 with "
                  "--overlap-alltoall, Megatron-Core's measured share; 1 for dualpipe)");
  cmd->add_option(
         "--grad-reduce-in-fp32", o->grad_reduce_in_fp32,
         "keep and reduce gradients in FP32 (true) or 16 bits (false, as Megatron-Bridge's "
         "performance recipes)")
      ->capture_default_str();
  cmd->add_flag("--overlap-shared-expert", o->overlap_shared,
                "run the shared expert while dispatch is on the wire");
  cmd->add_flag("--overlap-grads", o->overlap_grads, "reduce gradients under the last backward");
  cmd->add_flag(
      "--overlap-tp", o->overlap_tp,
      "run each TP all-gather and reduce-scatter in chunks under its GEMM (Megatron-Core's "
      "tp_comm_overlap)");
  cmd->add_flag("--no-overlap-pipeline", o->no_overlap_pipeline,
                "keep interleaved candidates' pipeline sends on the critical path (Megatron's "
                "--no-overlap-p2p-communication); by default they run beside the compute");
  cmd->add_option("--capacity-factor", o->capacity_factor,
                  "drop token copies beyond this x the balanced share per expert (0: none)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--alltoall-algo", o->alltoall_algo,
                  "EP all-to-alls: direct (NCCL send/recv, a copy per expert), per_rank (DeepEP "
                  "intranode: once per GPU), hierarchical (once across the network per node, "
                  "whole messages), deepep_normal (DeepEP internode: the same, chunk-pipelined) "
                  "or deepep_low_latency (DeepEP low-latency: a message per token and expert)")
      ->check(CLI::IsMember(
          {"direct", "per_rank", "hierarchical", "deepep_normal", "deepep_low_latency"}))
      ->capture_default_str();
  cmd->add_option("--host-us-per-kernel", o->host_us_per_kernel,
                  "the host's time to issue one kernel, us (an eager framework's per-op cost): "
                  "the GPU waits where the host falls behind, and at each dispatch the host waits "
                  "for the GPU");
  cmd->add_option("--dispatch-kernel-gbps", o->dispatch_kernel_gbps,
                  "the dispatch kernel's own rate, GB/s per GPU of what it receives, its own "
                  "tokens included (as DeepEP's and HybridEP's benchmarks report it): a bound");
  cmd->add_option("--combine-kernel-gbps", o->combine_kernel_gbps,
                  "the combine kernel's own rate, likewise");
  cmd->add_option("--dispatch-rdma-kernel-gbps", o->dispatch_rdma_kernel_gbps,
                  "hierarchical, deepep_normal: the internode dispatch's \"RDMA\" rate, GB/s per "
                  "GPU of its tokens x the nodes each reaches, its own node included (DeepEP's "
                  "README figures): a bound");
  cmd->add_option("--combine-rdma-kernel-gbps", o->combine_rdma_kernel_gbps,
                  "hierarchical, deepep_normal: the internode combine's RDMA rate, likewise");
  cmd->add_option("--alltoall-chunk-tokens", o->alltoall_chunk_tokens,
                  "deepep_normal: tokens per chunk the relay forwards (default 80: DeepEP's 10 "
                  "channels x 8-token RDMA chunks)");
  cmd->add_option("--dispatch-dtype", o->dispatch_dtype,
                  "a token in dispatch: fp8 (1 B per element + an fp32 scale per 128) or bf16 "
                  "(default: the model's dtype)")
      ->check(CLI::IsMember({"fp8", "bf16"}));
  cmd->add_option("--combine-dtype", o->combine_dtype,
                  "a token in combine: fp8 or bf16 (default: the model's dtype)")
      ->check(CLI::IsMember({"fp8", "bf16"}));
  cmd->add_option("--schedule", o->schedule,
                  "pipeline schedule: 1f1b, interleaved (--virtual-stages chunks per device), "
                  "dualpipe (DeepSeek-V3's), or all (each plan with every one that can run it)")
      ->check(CLI::IsMember({"1f1b", "interleaved", "dualpipe", "all"}))
      ->capture_default_str();
  cmd->add_option("--virtual-stages", o->virtual_stages,
                  "interleaved: chunks per device (>= 2, dividing every stage's layers)")
      ->capture_default_str();
  cmd->add_option("--recompute-modules", o->recompute_modules,
                  "recompute these modules (norm, mla_up_proj, attention_core, mlp, moe, moe_act; "
                  "comma-separated) instead of trying selective and full");
  cmd->add_flag("--fp8-activations", o->fp8_activations,
                "cache the GEMMs' inputs in FP8 (1 byte per element; memory only)");
  cmd->add_option("--mtp-depth", o->mtp_depth,
                  "multi-token-prediction modules on the last stage (DeepSeek-V3: 1)")
      ->capture_default_str();
  cmd->add_option("--comm-sms", o->comm_sms,
                  "SMs the EP all-to-alls hold while they overlap compute (default: 20 for "
                  "DeepEP's per_rank and hierarchical, 16 NCCL channels for direct; 0: none)");
  cmd->add_option("--expert-gemm", o->expert_gemm,
                  "how the routed experts issue their GEMMs: auto (deepgemm for FP8 models, loop "
                  "otherwise), loop (a cuBLAS GEMM per expert), cublas_grouped, deepgemm (FP8)")
      ->check(CLI::IsMember({"auto", "loop", "cublas_grouped", "deepgemm"}))
      ->capture_default_str();
  cmd->add_flag("--expert-tp", o->expert_tp,
                "also try expert tensor parallelism: etp 2, 4, ... up to tp, dividing the expert "
                "FFN");
  cmd->add_option("--top", o->top, "rows to print")->capture_default_str();
  cmd->add_option("--rerank-flow", o->rerank_flow,
                  "re-time the best K plans at flow fidelity and rank them by it, at the top "
                  "(the rest keep the search's times)");
  cmd->add_option("--flow-tolerance", o->flow_tolerance,
                  "the flow model's tolerance (--fidelity flow or --rerank-flow): flows due "
                  "within this fraction of their own time finish together (direct all-to-alls; 0 "
                  "= exact, at most 0.1)")
      ->capture_default_str();
  CLI::Option* csv = cmd->add_flag("--csv", o->csv, "CSV instead of the table");
  cmd->add_flag("--quiet", o->quiet, "no progress on stderr");
  cmd->add_flag("--show-refused", o->show_refused,
                "after the table, every plan the plan rules refused and why (--json always "
                "carries them, as refused)")
      ->excludes(csv);
  cmd->add_flag("--json", o->json, "the whole ranked table as JSON");
  cmd->add_option("--html", o->html,
                  "write a self-contained HTML report: step time against memory for every "
                  "candidate, the Pareto front, the top plans");
  cmd->add_option("--threads", o->threads, "threads (default: all cores)");
  cmd->add_option("--emit-scenario", o->emit_scenario,
                  "write row N of the ranked table (1 = the first) as a scenario file that "
                  "moesim simulate runs (with -o FILE)");
  cmd->add_option("-o,--output", o->output, "the scenario file --emit-scenario writes");
  cmd->callback([o, chosen] { *chosen = [o](CommandIo& io) { return RunPlan(*o, io); }; });
}

}  // namespace moesim::sim
