#include "sim/sweep/sweep.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>

#include "sim/step/scenario_run.h"

namespace moesim::sim {
namespace {

void AddComponent(pb::SweepRow& row, const std::string& name, int64_t ns) {
  for (pb::SweepComponent& c : *row.mutable_components()) {
    if (c.name() == name) {
      c.set_time_ns(c.time_ns() + ns);
      return;
    }
  }
  pb::SweepComponent* c = row.add_components();
  c->set_name(name);
  c->set_time_ns(ns);
}

// A step: its parts, the longest op of one micro-batch on the slowest stage, memory and MFU.
void FillStepRow(const pb::StepResult& r, pb::SweepRow& row) {
  row.set_total_ns(r.step_ns());
  AddComponent(row, "pipeline", r.pipeline_ns());
  AddComponent(row, "bubble", r.bubble_ns());
  AddComponent(row, "EP all-to-all", r.alltoall_ns());
  AddComponent(row, "exposed comm", r.exposed_comm_ns());
  AddComponent(row, "grad sync exposed", r.grad_sync_exposed_ns());
  AddComponent(row, "optimizer", r.optimizer_ns());
  // Ops by name over the layers and passes, first seen first; the longest in total.
  std::vector<std::pair<std::string, int64_t>> ops;
  std::map<std::string, bool> communication;
  for (const pb::StepOp& op : r.ops()) {
    auto it =
        std::find_if(ops.begin(), ops.end(), [&](const auto& o) { return o.first == op.name(); });
    if (it == ops.end()) {
      ops.emplace_back(op.name(), 0);
      it = ops.end() - 1;
    }
    it->second += op.time_ns();
    communication[op.name()] = op.communication();
  }
  // The GPU's wait for the host (step.host_us_per_kernel) competes as one more part.
  if (r.host_wait_ns() > 0) {
    ops.emplace_back("host", r.host_wait_ns());
    communication["host"] = false;
  }
  const auto longest = std::max_element(
      ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  if (longest != ops.end() && longest->first == "host") {
    row.set_bottleneck("host (issuing kernels)");
  } else if (longest != ops.end()) {
    row.set_bottleneck(longest->first +
                       (communication[longest->first] ? " (communication)" : " (compute)"));
  }
  row.set_memory_bytes(r.memory().total());
  row.set_memory_capacity_bytes(r.memory().capacity());
  row.set_fits(r.memory().fits());
  row.set_mfu(r.mfu());
}

// MoE layers: each phase summed over the layers; the bottleneck is the longest phase in total,
// with what bounds its slowest instance and that instance's busiest link.
void FillLayerRow(const pb::Result& r, pb::SweepRow& row) {
  row.set_total_ns(r.total_ns());
  for (const pb::Phase& p : r.phases()) AddComponent(row, p.name(), p.time_ns());
  const pb::SweepComponent* longest = nullptr;
  for (const pb::SweepComponent& c : row.components()) {
    if (longest == nullptr || c.time_ns() > longest->time_ns()) longest = &c;
  }
  if (longest == nullptr) return;
  const pb::Phase* slowest = nullptr;
  for (const pb::Phase& p : r.phases()) {
    if (p.name() == longest->name() && (slowest == nullptr || p.time_ns() > slowest->time_ns()))
      slowest = &p;
  }
  std::string what = slowest->bound();
  if (!slowest->bottleneck_link().empty()) {
    what += (what.empty() ? "" : ", ") + slowest->bottleneck_link();
  }
  row.set_bottleneck(longest->name() + (what.empty() ? "" : " (" + what + ")"));
}

StatusOr<pb::SweepRow> Simulate(const SweepBase& base, const std::vector<SweepAxis>& axes,
                                size_t point, Fidelity fidelity, FlowOptions flow) {
  MOESIM_ASSIGN_OR_RETURN(PointSpec spec, MakePoint(base, axes, point));
  MOESIM_ASSIGN_OR_RETURN(const LoadedScenario scenario,
                          ResolveScenario(std::move(spec.spec), std::move(spec.file)));
  MOESIM_ASSIGN_OR_RETURN(const auto hardware, ScenarioHardware(scenario, ""));
  pb::SweepRow row;
  if (scenario.spec.has_step()) {
    MOESIM_ASSIGN_OR_RETURN(const ScenarioStep step,
                            SimulateScenarioStep(scenario, fidelity, hardware, flow));
    FillStepRow(step.result, row);
  } else {
    MOESIM_ASSIGN_OR_RETURN(const pb::Result result,
                            SimulateScenarioLayers(scenario, fidelity, hardware, nullptr, flow));
    FillLayerRow(result, row);
  }
  return row;
}

}  // namespace

StatusOr<SweepBase> LoadSweepBase(const std::string& path) {
  pb::Scenario spec;
  MOESIM_ASSIGN_OR_RETURN(TextFile file, TextFile::Parse(path, &spec));
  return SweepBase{std::move(spec), std::move(file)};
}

pb::SweepRow RunSweepPoint(const SweepBase& base, const std::vector<SweepAxis>& axes, size_t point,
                           Fidelity fidelity, FlowOptions flow) {
  StatusOr<pb::SweepRow> run = Simulate(base, axes, point, fidelity, flow);
  pb::SweepRow row = run.ok() ? *std::move(run) : pb::SweepRow();
  if (!run.ok()) row.set_error(run.error().message());
  row.set_index(static_cast<uint32_t>(point));
  const std::vector<size_t> index = PointValues(axes, point);
  for (size_t k = 0; k < axes.size(); ++k) row.add_values(axes[k].values[index[k]]);
  return row;
}

std::vector<pb::SweepRow> RunSweepPoints(const SweepBase& base, const std::vector<SweepAxis>& axes,
                                         const SweepRun& run) {
  const StatusOr<size_t> count = PointCount(axes);
  std::vector<size_t> mine;
  for (size_t i = run.offset; count.ok() && i < *count; i += std::max(run.stride, 1u))
    mine.push_back(i);
  std::vector<pb::SweepRow> rows(mine.size());
  std::atomic<size_t> next{0}, done{0};
  auto work = [&](bool reporter) {
    for (size_t k = next++; k < mine.size(); k = next++) {
      rows[k] = RunSweepPoint(base, axes, mine[k], run.fidelity, run.flow);
      ++done;
      if (reporter && run.progress) run.progress(done.load());
    }
  };
  std::vector<std::thread> pool;
  // No more threads than points: --threads 100000 on 4 points starts 3 more.
  const size_t threads = std::clamp<size_t>(run.threads, 1, std::max<size_t>(mine.size(), 1));
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work, false);
  work(true);
  for (std::thread& t : pool) t.join();
  if (run.progress) run.progress(done.load());
  return rows;
}

pb::SweepTable MakeSweepTable(const SweepBase& base, const std::vector<SweepAxis>& axes,
                              Fidelity fidelity, std::vector<pb::SweepRow> rows) {
  std::sort(rows.begin(), rows.end(),
            [](const pb::SweepRow& a, const pb::SweepRow& b) { return a.index() < b.index(); });
  pb::SweepTable t;
  t.set_scenario(base.file.path());
  t.set_name(base.spec.name());
  t.set_kind(base.spec.has_step() ? "step" : "layers");
  t.set_fidelity(std::string(ToString(fidelity)));
  for (const SweepAxis& a : axes) {
    pb::SweepField* f = t.add_fields();
    f->set_path(a.path.text);
    for (const std::string& v : a.values) f->add_values(v);
  }
  // One component list, first seen first, and every row's components in its order.
  for (const pb::SweepRow& r : rows) {
    for (const pb::SweepComponent& c : r.components()) {
      if (std::find(t.components().begin(), t.components().end(), c.name()) ==
          t.components().end()) {
        t.add_components(c.name());
      }
    }
  }
  const pb::SweepRow* baseline = nullptr;
  for (const pb::SweepRow& r : rows) {
    if (r.error().empty()) {
      baseline = &r;
      break;
    }
  }
  if (baseline != nullptr) t.set_baseline(baseline->index());
  const int64_t base_ns = baseline != nullptr ? baseline->total_ns() : 0;
  for (pb::SweepRow& r : rows) {
    if (!r.error().empty()) {
      t.set_failed(t.failed() + 1);
    } else if (base_ns > 0) {
      r.set_delta_pct(100.0 * static_cast<double>(r.total_ns() - base_ns) /
                      static_cast<double>(base_ns));
    }
    pb::SweepRow ordered = r;
    ordered.clear_components();
    for (const std::string& name : t.components()) {
      pb::SweepComponent* c = ordered.add_components();
      c->set_name(name);
      for (const pb::SweepComponent& have : r.components()) {
        if (have.name() == name) c->set_time_ns(have.time_ns());
      }
    }
    *t.add_rows() = std::move(ordered);
  }
  return t;
}

}  // namespace moesim::sim
