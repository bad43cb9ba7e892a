// `moesim plan --emit-scenario N -o FILE` (sim/cli/plan_options.h): a row of the ranked table
// as the scenario file `moesim simulate` runs, and the helpers the search shares with it.
#include <fmt/format.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <filesystem>

#include "proto/atomic_file.h"
#include "proto/text_file.h"
#include "sim/cli/plan_options.h"

namespace moesim::sim::plan_cli {

pb::Cluster PresetCluster(const std::string& preset, uint32_t nodes) {
  pb::Cluster spec;
  spec.set_node_preset(preset);
  if (nodes > 1) {
    spec.set_nodes(nodes);
    spec.mutable_fabric()->mutable_rail_optimized()->set_nodes_per_group(std::min(nodes, 32u));
  }
  return spec;
}

std::string RecomputeName(Recompute r, const std::string& recompute_modules) {
  switch (r) {
    case Recompute::kNone:
      return "NONE";
    case Recompute::kSelective:
      return "SELECTIVE";
    case Recompute::kFull:
      return "FULL";
    case Recompute::kModules:
      break;
  }
  return recompute_modules;
}

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(',', start), text.size());
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

namespace {

// The scenario `moesim simulate` runs as plan search ran `candidate`: the same cluster (a preset
// over a rail-optimized fabric as PlanCluster builds it, a cluster file's block, an NCCL XML by
// its absolute path), model (catalog name, or a model file's spec), plan and placement, routing
// (the flags' synthetic block, or the trace by its absolute path) and step flags. `--hardware`
// becomes hardware_profile by its absolute path.
StatusOr<pb::Scenario> PlanScenario(const PlanOptions& o, const pb::ModelSpec& model,
                                    const pb::Routing& routing,
                                    const pb::ExpertPlacementSpec& placement, uint32_t nodes,
                                    const PlanCandidate& candidate, const pb::PlanRow& row) {
  namespace fs = std::filesystem;
  pb::Scenario s;
  s.set_name(
      fmt::format("{} on {} x {}, {}", model.name(), o.gpus.value_or(0), o.cluster, row.plan()));
  s.set_description(fmt::format(
      "moesim plan --emit-scenario: plan search predicted {:.2f} ms a step and {:.2f} GB on the "
      "fullest GPU from each expert's expected load; simulate draws the routing's tokens, and "
      "the slowest GPU's share of that draw moves the step by the draw's imbalance",
      row.step_ms(), static_cast<double>(row.memory_bytes()) / 1e9));
  pb::Cluster& cluster = *s.mutable_cluster();
  if (o.cluster.ends_with(".xml")) {
    cluster.set_nccl_topology(fs::absolute(o.cluster).string());
  } else if (o.cluster.find('/') != std::string::npos || o.cluster.ends_with(".pbtxt")) {
    if (auto parsed = TextFile::Parse(o.cluster, &cluster); !parsed.ok()) return parsed.error();
    if (!cluster.nccl_topology().empty()) {
      cluster.set_nccl_topology(
          (fs::absolute(o.cluster).parent_path() / cluster.nccl_topology()).string());
    }
  } else {
    cluster = PresetCluster(o.cluster, nodes);
  }
  if (!o.nccl_version.empty()) cluster.set_nccl_version(o.nccl_version);
  const bool catalog = o.model.find('/') == std::string::npos && !o.model.ends_with(".pbtxt");
  if (catalog) {
    s.set_model(o.model);
  } else {
    *s.mutable_model_spec() = model;
  }
  *s.mutable_plan() = candidate.plan;
  *s.mutable_plan()->mutable_placement() = placement;
  if (o.trace.empty()) {
    *s.mutable_routing() = routing;
  } else {
    s.mutable_routing()->mutable_trace()->set_file(fs::absolute(o.trace).string());
  }
  if (!o.hardware.empty()) s.set_hardware_profile(fs::absolute(o.hardware).string());
  pb::StepSpec& step = *s.mutable_step();
  step.set_mode(o.mode == "prefill"  ? pb::StepSpec::PREFILL
                : o.mode == "decode" ? pb::StepSpec::DECODE
                                     : pb::StepSpec::TRAINING);
  step.set_global_batch(o.global_batch);
  step.set_seq_len(o.seq_len);
  step.set_micro_batch(candidate.micro_batch);
  pb::StepSpec::Recompute recompute = pb::StepSpec::RECOMPUTE_UNSPECIFIED;
  if (candidate.recompute == Recompute::kModules) {
    for (const std::string& m : SplitCommas(o.recompute_modules)) step.add_recompute_modules(m);
  } else if (pb::StepSpec::Recompute_Parse(RecomputeName(candidate.recompute, ""), &recompute)) {
    step.set_recompute(recompute);
  }
  step.mutable_overlap()->set_alltoall(o.overlap_alltoall);
  // What overlap hides applies where something overlaps (the step refuses it otherwise).
  if (o.alltoall_hidden &&
      (o.overlap_alltoall || candidate.schedule.schedule == PipelineSchedule::kDualPipe)) {
    step.mutable_overlap()->set_alltoall_hidden(*o.alltoall_hidden);
  }
  step.mutable_overlap()->set_shared_expert(o.overlap_shared);
  if (!o.grad_reduce_in_fp32) step.set_grad_reduce_in_fp32(false);
  if (o.dispatch_kernel_gbps) step.set_dispatch_kernel_gbps(*o.dispatch_kernel_gbps);
  if (o.host_us_per_kernel) step.set_host_us_per_kernel(*o.host_us_per_kernel);
  if (o.combine_kernel_gbps) step.set_combine_kernel_gbps(*o.combine_kernel_gbps);
  if (o.dispatch_rdma_kernel_gbps) step.set_dispatch_rdma_kernel_gbps(*o.dispatch_rdma_kernel_gbps);
  if (o.combine_rdma_kernel_gbps) step.set_combine_rdma_kernel_gbps(*o.combine_rdma_kernel_gbps);
  step.mutable_overlap()->set_gradients(o.overlap_grads);
  step.mutable_overlap()->set_tp(o.overlap_tp);
  if (o.no_overlap_pipeline && candidate.schedule.schedule == PipelineSchedule::kInterleaved) {
    step.mutable_overlap()->set_pipeline(false);
  }
  if (o.capacity_factor > 0) step.set_capacity_factor(o.capacity_factor);
  step.set_alltoall_algo(o.alltoall_algo);
  if (o.alltoall_chunk_tokens) step.set_alltoall_chunk_tokens(*o.alltoall_chunk_tokens);
  step.set_dispatch_dtype(o.dispatch_dtype);
  step.set_combine_dtype(o.combine_dtype);
  step.set_fp8_activations(o.fp8_activations);
  step.set_mtp_depth(o.mtp_depth);
  step.set_schedule(std::string(ToString(candidate.schedule.schedule)));
  if (candidate.schedule.schedule == PipelineSchedule::kInterleaved)
    step.set_virtual_stages(candidate.schedule.virtual_stages);
  if (o.comm_sms) step.set_comm_sms(*o.comm_sms);
  step.set_expert_gemm(o.expert_gemm);
  return s;
}

}  // namespace

Status EmitScenario(const PlanOptions& o, const pb::ModelSpec& model, const pb::Routing& routing,
                    const pb::ExpertPlacementSpec& placement, uint32_t nodes,
                    const std::vector<PlanCandidate>& candidates, const pb::PlanTable& table,
                    std::ostream& err) {
  if (o.emit_scenario > static_cast<uint32_t>(table.rows_size())) {
    return InputError({}, "--emit-scenario", std::to_string(o.emit_scenario),
                      "no such row of the ranked table",
                      "1 to " + std::to_string(table.rows_size()));
  }
  const pb::PlanRow& row = table.rows(static_cast<int>(o.emit_scenario - 1));
  MOESIM_ASSIGN_OR_RETURN(
      const pb::Scenario scenario,
      PlanScenario(o, model, routing, placement, nodes, candidates.at(row.index()), row));
  std::string text;
  google::protobuf::TextFormat::PrintToString(scenario, &text);
  text =
      fmt::format(
          "# proto-file: proto/scenario.proto\n# proto-message: moesim.pb.Scenario\n#\n"
          "# Row {} of `moesim plan` ({}): {:.2f} ms a step, {:.2f} GB on the fullest GPU,\n"
          "# priced from each expert's expected load. `moesim simulate THIS_FILE` draws the\n"
          "# routing's tokens instead: the slowest GPU's share of the draw moves its step (a few\n"
          "# per cent at a few thousand tokens per GPU).\n",
          o.emit_scenario, row.plan(), row.step_ms(),
          static_cast<double>(row.memory_bytes()) / 1e9) +
      text;
  MOESIM_RETURN_IF_ERROR(WriteFileAtomically(o.output, text, "the scenario"));
  err << "moesim plan: wrote " << o.output << ": row " << o.emit_scenario << ", " << row.plan()
      << "\n";
  return Status::Ok();
}

}  // namespace moesim::sim::plan_cli
