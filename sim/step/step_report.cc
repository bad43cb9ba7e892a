#include "sim/step/step_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace moesim::sim {
namespace {

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }
double Gb(uint64_t bytes) { return static_cast<double>(bytes) / 1e9; }

std::string Plan(const models::ParallelSizes& s) {
  std::string text = "tp" + std::to_string(s.tp);
  if (s.cp > 1) text += " cp" + std::to_string(s.cp);
  text += " pp" + std::to_string(s.pp) + " ep" + std::to_string(s.ep);
  if (s.etp > 1) text += " etp" + std::to_string(s.etp);
  text += " dp" + std::to_string(s.dp) + " (edp " + std::to_string(s.edp) + ")";
  return text;
}

int64_t Ns(Duration d) { return d.nanoseconds_ceil(); }

// Insertion order, so each event reads ph, name, pid, ... as Chrome's own traces do.
using Json = nlohmann::ordered_json;

}  // namespace

std::string_view ToString(StepMode mode) {
  switch (mode) {
    case StepMode::kPrefill:
      return "prefill";
    case StepMode::kDecode:
      return "decode";
    default:
      return "training";
  }
}

pb::StepResult ToStepResult(const StepReport& r, const models::Plan& plan,
                            const models::MemoryBreakdown& memory, uint64_t gpu_memory_bytes) {
  pb::StepResult p;
  p.set_gpus(plan.world());
  p.set_mode(std::string(ToString(r.mode)));
  p.set_plan(Plan(plan.sizes()));
  p.set_hardware(r.hardware);
  p.set_routing(r.routing);
  p.set_micro_batches(r.micro_batches);
  p.set_slowest_stage(r.slowest_stage);
  p.set_step_ns(Ns(r.step));
  p.set_forward_ns(Ns(r.forward));
  p.set_backward_ns(Ns(r.backward));
  p.set_pair_ns(Ns(r.pair));
  p.set_weight_ns(Ns(r.weight));
  p.set_schedule(std::string(ToString(r.schedule)));
  p.set_virtual_stages(r.virtual_stages);
  p.set_bubble_formula(BubbleFormula(r.schedule, r.virtual_stages,
                                     plan.StageLayerCount(r.slowest_stage),
                                     r.pipeline_sends_overlapped));
  p.set_pipeline_send_bytes(r.pipeline_send_bytes);
  p.set_pipeline_send_ns(Ns(r.pipeline_send));
  p.set_pipeline_sends_overlapped(r.pipeline_sends_overlapped);
  p.set_comm_sms(r.comm_sms);
  p.set_alltoall_hidden(r.alltoall_hidden);
  p.set_grad_bytes(r.grad_bytes);
  p.set_gpu_sms(r.gpu_sms);
  p.set_sm_sharing_ns(Ns(r.sm_sharing));
  p.set_host_us_per_kernel(static_cast<double>(r.host_per_kernel.picoseconds()) / 1e6);
  p.set_kernels_per_micro_batch(r.kernels_per_micro_batch);
  p.set_host_wait_ns(Ns(r.host_wait));
  p.set_attention_scores_kept(r.attention_scores_kept);
  p.set_mtp_depth(r.mtp_depth);
  p.set_mtp_forward_ns(Ns(r.mtp_forward));
  p.set_recompute(r.recompute);
  p.set_fp8_activations(r.fp8_activations);
  p.set_bubble_ns(Ns(r.bubble));
  p.set_dependency_wait_ns(Ns(r.dependency_wait));
  p.set_pipeline_ns(Ns(r.pipeline));
  p.set_grad_sync_ns(Ns(r.grad_sync));
  p.set_grad_sync_exposed_ns(Ns(r.grad_sync_exposed));
  p.set_optimizer_ns(Ns(r.optimizer));
  p.set_compute_only_ns(Ns(r.compute_only));
  p.set_exposed_comm_ns(Ns(r.exposed_communication()));
  p.set_alltoall_ns(Ns(r.alltoall));
  p.set_alltoall_share(r.step.picoseconds() == 0 ? 0
                                                 : static_cast<double>(r.alltoall.picoseconds()) /
                                                       static_cast<double>(r.step.picoseconds()));
  p.set_alltoalls_per_micro_batch(r.alltoalls_per_micro_batch);
  p.set_mfu(r.mfu);
  p.set_mfu_nominal(r.mfu_nominal);
  p.set_mfu_bf16(r.mfu_bf16);
  p.set_mfu_dtype(r.mfu_dtype);
  p.set_tokens_per_second(r.tokens_per_second);
  p.set_dropped_copies(r.dropped_copies);
  p.set_routed_copies(r.routed_copies);
  p.set_dense_grad_bytes(r.dense_grad_bytes);
  p.set_expert_grad_bytes(r.expert_grad_bytes);
  pb::MemoryUse* m = p.mutable_memory();
  m->set_stage(memory.stage);
  m->set_weights(memory.weights.value);
  m->set_gradients(memory.gradients.value);
  m->set_optimizer(memory.optimizer.value);
  m->set_activations(memory.activations.value);
  m->set_all_to_all(memory.all_to_all.value);
  m->set_total(memory.total().value);
  m->set_capacity(gpu_memory_bytes);
  m->set_fits(memory.total().value <= gpu_memory_bytes);
  m->set_microbatches_in_flight(memory.microbatches_in_flight);
  m->set_in_flight_rule(memory.in_flight_rule);
  m->set_kv_cache(memory.kv_cache.value);
  m->set_kv_cache_per_sequence(memory.kv_cache_per_sequence.value);
  if (r.mode != StepMode::kTraining) {
    m->set_sequences_that_fit(memory.SequencesThatFit(Bytes{gpu_memory_bytes}));
  }
  for (const StepOp& op : r.ops) {
    pb::StepOp* o = p.add_ops();
    o->set_name(op.name);
    o->set_pass(op.pass);
    o->set_layer(op.layer);
    o->set_communication(op.communication);
    o->set_alltoall(op.alltoall);
    o->set_time_ns(Ns(op.time));
  }
  for (Duration d : r.stage_forward) p.add_stage_forward_ns(Ns(d));
  for (Duration d : r.stage_backward) p.add_stage_backward_ns(Ns(d));
  return p;
}

void PrintStepReport(const pb::StepResult& r, const StepConfig& c, std::ostream& out) {
  out << r.model() << " on " << r.gpus() << " GPUs, plan " << r.plan() << ", " << r.mode() << ", "
      << r.fidelity() << FlowToleranceNote(r.flow_tolerance()) << "\n";
  out << "hardware: " << r.hardware() << "\n";
  if (!r.routing().empty()) out << "routing: " << r.routing() << "\n";
  out << fmt::format(
      "batch {} sequences x {} tokens, micro-batch {}: {} micro-batches per "
      "pipeline\n\n",
      c.global_batch, c.seq_len, c.micro_batch, r.micro_batches());
  // MFU against the model dtype's peak, and against BF16's where that differs (FP8 models).
  const std::string mfu = r.mfu_dtype() == "BF16" || r.mfu_bf16() == r.mfu()
                              ? fmt::format("MFU {:.1f} % ({} peak)", 100 * r.mfu(), r.mfu_dtype())
                              : fmt::format("MFU {:.1f} % of {} peak, {:.1f} % of BF16",
                                            100 * r.mfu(), r.mfu_dtype(), 100 * r.mfu_bf16());
  out << fmt::format("  {:<22} {:>12.3f} ms   {}   {:.3g} tokens/s\n", "step", Ms(r.step_ns()), mfu,
                     r.tokens_per_second());
  const std::string schedule = r.schedule() == "interleaved"
                                   ? fmt::format("interleaved, V {}", r.virtual_stages())
                               : r.schedule() == "dualpipe" ? std::string("DualPipe")
                                                            : std::string("1F1B");
  out << fmt::format(
      "  {:<22} {:>12.3f} ms   bubble {:.3f} ms = {}{}{}\n", "pipeline (" + schedule + ")",
      Ms(r.pipeline_ns()), Ms(r.bubble_ns()), r.bubble_formula(),
      r.pipeline_sends_overlapped()
          ? fmt::format(" (S {:.3f} ms a send, beside the steady state's compute)",
                        Ms(r.pipeline_send_ns()))
          : "",
      r.dependency_wait_ns() > 0 ? fmt::format("; + {:.3f} ms waiting on the next stage's backward "
                                               "(B > steady pair)",
                                               Ms(r.dependency_wait_ns()))
                                 : "");
  out << fmt::format(
      "  {:<22} {:>12.3f} ms   backward {:.3f} ms (W {:.3f} ms), steady pair {:.3f} ms ({} "
      "{})\n",
      "forward, 1 micro-batch", Ms(r.forward_ns()), Ms(r.backward_ns()), Ms(r.weight_ns()),
      Ms(r.pair_ns()), r.schedule() == "dualpipe" ? "stages" : "stage",
      r.schedule() == "dualpipe"
          ? fmt::format("{} and {}", r.slowest_stage(),
                        r.stage_forward_ns_size() - 1 - static_cast<int>(r.slowest_stage()))
          : std::to_string(r.slowest_stage()));
  if (r.mode() == "training" && r.comm_sms() > 0) {
    out << fmt::format(
        "  {:<22} {:>12.3f} ms   the all-to-alls hold {} of {} SMs: overlapped compute at {:.1f} "
        "%\n",
        "SM sharing", Ms(r.sm_sharing_ns()), r.comm_sms(), r.gpu_sms(),
        100.0 * (r.gpu_sms() - r.comm_sms()) / r.gpu_sms());
  }
  if (r.host_us_per_kernel() > 0) {
    out << fmt::format(
        "  {:<22} {:>12.3f} ms   the GPU waits for the host, per micro-batch on stage {}: {} "
        "kernels at {:g} us each, the host waiting for the GPU at each dispatch\n",
        "host", Ms(r.host_wait_ns()), r.slowest_stage(), r.kernels_per_micro_batch(),
        r.host_us_per_kernel());
  }
  if (r.mtp_depth() > 0) {
    out << fmt::format("  {:<22} {:>12.3f} ms   forward per micro-batch on the last stage\n",
                       fmt::format("MTP, depth {}", r.mtp_depth()), Ms(r.mtp_forward_ns()));
  }
  out << fmt::format(
      "  {:<22} {:>12.3f} ms   {:.1f} % of the step, {} per micro-batch{}\n", "EP all-to-all",
      Ms(r.alltoall_ns()), 100 * r.alltoall_share(), r.alltoalls_per_micro_batch(),
      r.alltoall_hidden() > 0
          ? fmt::format("; overlap hides at most {:.2f} % of it", 100 * r.alltoall_hidden())
          : std::string());
  if (c.capacity_factor > 0) {
    out << fmt::format(
        "  {:<22} {:12} copies of {} per MoE layer per micro-batch ({:.2f} %), capacity "
        "factor {:.2f}\n",
        "dropped by capacity", r.dropped_copies(), r.routed_copies(),
        r.routed_copies() == 0 ? 0.0 : 100.0 * r.dropped_copies() / r.routed_copies(),
        c.capacity_factor);
    out << fmt::format(
        "  {:<22} {:>12.1f} %    of {} peak counting only the copies computed (the step's MFU); "
        "{:.1f} % counting the dropped ones too\n",
        "MFU, computed", 100 * r.mfu(), r.mfu_dtype(), 100 * r.mfu_nominal());
  }
  if (r.mode() == "training") {
    out << fmt::format(
        "  {:<22} {:>12.3f} ms   exposed {:.3f} ms; {} gradients {:.1f} MB dense, {:.1f} MB "
        "expert per GPU\n",
        "gradient reduction", Ms(r.grad_sync_ns()), Ms(r.grad_sync_exposed_ns()),
        r.grad_bytes() == 2 ? "16-bit" : "fp32", Gb(r.dense_grad_bytes()) * 1e3,
        Gb(r.expert_grad_bytes()) * 1e3);
    out << fmt::format("  {:<22} {:>12.3f} ms\n", "optimizer", Ms(r.optimizer_ns()));
  }
  out << fmt::format("  {:<22} {:>12.3f} ms   (step - the same step with free communication)\n",
                     "exposed communication", Ms(r.exposed_comm_ns()));
  const pb::MemoryUse& m = r.memory();
  if (r.mode() == "training") {
    out << fmt::format(
        "  {:<22} {:>12.2f} GB   of {:.2f} GB (stage {}: weights {:.2f}, gradients {:.2f}, "
        "optimizer {:.2f}, activations {:.2f}, all-to-all {:.2f})",
        "memory, fullest GPU", Gb(m.total()), Gb(m.capacity()), m.stage(), Gb(m.weights()),
        Gb(m.gradients()), Gb(m.optimizer()), Gb(m.activations()), Gb(m.all_to_all()));
  } else {
    out << fmt::format(
        "  {:<22} {:>12.2f} GB   of {:.2f} GB (stage {}: weights {:.2f}, KV cache {:.2f}, "
        "activations {:.2f}, all-to-all {:.2f}; no gradients or optimizer states)",
        "memory, fullest GPU", Gb(m.total()), Gb(m.capacity()), m.stage(), Gb(m.weights()),
        Gb(m.kv_cache()), Gb(m.activations()), Gb(m.all_to_all()));
  }
  out << (m.fits() ? " fits\n"
                   : fmt::format(" DOES NOT FIT: {:.2f} GB more\n", Gb(m.total() - m.capacity())));
  if (r.mode() != "training") {
    out << fmt::format("  {:<22} {:>12.2f} MB   per sequence of {} tokens; {} such sequences fit "
                       "per micro-batch (now {})\n",
                       "KV cache", Gb(m.kv_cache_per_sequence()) * 1e3, c.seq_len,
                       m.sequences_that_fit(), c.micro_batch);
  }
  if (r.mode() == "training") {
    // Without attention_core (none, or modules without it) the memory keeps the attention scores
    // as unfused attention does (models/memory.h), which the FlashAttention of the compute model
    // never keeps: say so where it is counted.
    const bool scores_kept = r.attention_scores_kept();
    out << fmt::format("  {:<22} {}{}; in flight: {}{}\n", "recompute", r.recompute(),
                       r.fp8_activations() ? ", FP8 activation caching" : "", m.in_flight_rule(),
                       scores_kept ? "; the attention scores are kept as unfused attention keeps "
                                     "them (5 a s^2 / tp bytes a layer): FlashAttention, which the "
                                     "step's compute assumes, keeps none (selective, or add "
                                     "attention_core)"
                                   : "");
  }
  out << "\none micro-batch on stage " << r.slowest_stage() << ", by op:\n";
  out << fmt::format("  {:<10} {:<32} {:>6} {:>12}\n", "pass", "op", "count", "total ms");
  for (const OpSum& sum : SumOps(r)) {
    out << fmt::format("  {:<10} {:<32} {:6} {:>12.3f}\n", sum.pass, sum.name, sum.count,
                       Ms(sum.ns));
  }
}

std::vector<OpSum> SumOps(const pb::StepResult& r) {
  std::map<std::pair<std::string, std::string>, size_t> index;
  std::vector<OpSum> sums;
  for (const pb::StepOp& op : r.ops()) {
    const auto [it, added] = index.try_emplace({op.pass(), op.name()}, sums.size());
    if (added) sums.push_back({op.pass(), op.name(), 0, 0, op.communication()});
    OpSum& sum = sums[it->second];
    ++sum.count;
    sum.ns += op.time_ns();
  }
  return sums;
}

std::vector<PipelineSlice> PipelineSlices(const pb::StepResult& r) {
  const uint32_t p = static_cast<uint32_t>(r.stage_forward_ns_size());
  if (p == 0) return {};
  const PipelineSchedule schedule = r.schedule() == "interleaved" ? PipelineSchedule::kInterleaved
                                    : r.schedule() == "dualpipe"  ? PipelineSchedule::kDualPipe
                                                                  : PipelineSchedule::k1F1B;
  const PipelineLayout layout =
      LayoutOf(schedule, p, r.micro_batches(), r.mode() == "training", r.forward_ns(),
               r.backward_ns(), r.pair_ns(), r.bubble_ns());
  std::vector<PipelineSlice> slices;
  for (const PipelineSlot& x : LayOutPipeline(layout)) {
    slices.push_back({x.stage, x.forward, x.micro_batch, x.overlapped, x.start, x.end});
  }
  return slices;
}

void WriteStepTimeline(const pb::StepResult& r, std::ostream& out) {
  Json events = Json::array();
  auto process = [&](uint32_t pid, const std::string& name) {
    events.push_back(
        {{"ph", "M"}, {"name", "process_name"}, {"pid", pid}, {"args", {{"name", name}}}});
  };
  auto thread = [&](uint32_t pid, int tid, const std::string& name) {
    events.push_back({{"ph", "M"},
                      {"name", "thread_name"},
                      {"pid", pid},
                      {"tid", tid},
                      {"args", {{"name", name}}}});
  };
  // Microseconds, as Chrome traces count: ns / 1000 is the double nearest the exact count.
  auto slice = [&](uint32_t pid, int tid, const std::string& name, int64_t start_ns,
                   int64_t dur_ns) {
    events.push_back({{"ph", "X"},
                      {"pid", pid},
                      {"tid", tid},
                      {"name", name},
                      {"ts", static_cast<double>(start_ns) / 1e3},
                      {"dur", static_cast<double>(dur_ns) / 1e3}});
  };
  const uint32_t p = static_cast<uint32_t>(r.stage_forward_ns_size());
  const bool training = r.mode() == "training";
  for (uint32_t s = 0; s < p; ++s) {
    process(s, "pipeline stage " + std::to_string(s));
    thread(s, 0, "micro-batches");
  }
  int64_t end = 0;
  for (const PipelineSlice& x : PipelineSlices(r)) {
    slice(x.stage, 0,
          (x.forward ? "F" : "B") + std::to_string(x.micro_batch) +
              (x.overlapped ? " (overlapped pair)" : ""),
          x.start_ns, x.end_ns - x.start_ns);
    end = std::max(end, x.end_ns);
  }
  if (training) {
    for (uint32_t s = 0; s < p; ++s) {
      slice(s, 0, "gradient reduction (exposed)", end, r.grad_sync_exposed_ns());
      slice(s, 0, "optimizer", end + r.grad_sync_exposed_ns(), r.optimizer_ns());
    }
  }
  // The slowest stage's first micro-batch, op by op, on compute and communication tracks.
  const uint32_t detail = p;
  process(detail, "one micro-batch, stage " + std::to_string(r.slowest_stage()));
  thread(detail, 0, "compute");
  thread(detail, 1, "communication");
  int64_t t = 0;
  for (const pb::StepOp& op : r.ops()) {
    slice(detail, op.communication() ? 1 : 0,
          op.name() + " L" + std::to_string(op.layer()) + " " + op.pass(), t, op.time_ns());
    t += op.time_ns();
  }
  const Json trace = {{"displayTimeUnit", "ns"}, {"traceEvents", std::move(events)}};
  // Bytes that are not UTF-8 in a name become U+FFFD: the file stays JSON, and dump() never throws.
  out << trace.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
}

}  // namespace moesim::sim
