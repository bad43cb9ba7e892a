#include "sim/calibration/validation.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "sim/compute/profile_model.h"
#include "sim/compute/profile_predict.h"
#include "sim/moe/moe_layer.h"

namespace moesim::sim {
namespace {

StatusOr<int64_t> PhaseTime(const pb::Result& r, const std::string& name, uint32_t layer,
                            const std::string& what) {
  for (const pb::Phase& p : r.phases()) {
    if (p.name() == name && p.layer() == layer) return p.time_ns();
  }
  return Error(what + " has no phase " + name + " of layer " + std::to_string(layer));
}

double RelativeError(int64_t predicted, int64_t measured) {
  return (static_cast<double>(predicted) - static_cast<double>(measured)) /
         static_cast<double>(measured);
}

void AddRow(pb::ValidationReport& report, const std::string& scenario, const std::string& op,
            uint32_t layer, int64_t measured, int64_t predicted, int64_t datasheet) {
  pb::ValidationRow* row = report.add_rows();
  row->set_scenario(scenario);
  row->set_op(op);
  row->set_layer(layer);
  row->set_measured_ns(measured);
  row->set_predicted_ns(predicted);
  row->set_relative_error(RelativeError(predicted, measured));
  row->set_datasheet_ns(datasheet);
  row->set_datasheet_relative_error(RelativeError(datasheet, measured));
}

// Median of |x| (the mean of the two middle ones for an even count) and the largest |x|.
std::pair<double, double> MedianAndWorst(std::vector<double> x) {
  for (double& v : x) v = std::abs(v);
  std::sort(x.begin(), x.end());
  const size_t n = x.size();
  const double median = n % 2 == 1 ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2;
  return {median, x.back()};
}

void Summarize(pb::ValidationReport& report) {
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> by_op;
  const std::vector<std::string> order = {"router",      "dispatch", "expert", "combine",
                                          "collectives", "step",     "all"};
  for (const pb::ValidationRow& row : report.rows()) {
    for (const std::string& op : {row.op(), std::string("all")}) {
      if (op == "all" && (row.op() == "collectives" || row.op() == "step")) continue;
      by_op[op].first.push_back(row.relative_error());
      by_op[op].second.push_back(row.datasheet_relative_error());
    }
  }
  for (const std::string& op : order) {
    auto it = by_op.find(op);
    if (it == by_op.end()) continue;
    pb::ValidationSummary* s = report.add_summaries();
    s->set_op(op);
    s->set_rows(static_cast<uint32_t>(it->second.first.size()));
    const auto [median, worst] = MedianAndWorst(it->second.first);
    const auto [d_median, d_worst] = MedianAndWorst(it->second.second);
    s->set_median_abs_error(median);
    s->set_worst_abs_error(worst);
    s->set_datasheet_median_abs_error(d_median);
    s->set_datasheet_worst_abs_error(d_worst);
  }
}

}  // namespace

StatusOr<pb::ValidationReport> Validate(const std::vector<ValidationCase>& cases,
                                        const pb::HardwareProfile* profile) {
  if (cases.empty()) {
    return InputError({}, "scenarios", "none", "nothing to validate",
                      "SCENARIO --measured RESULT (one --measured per scenario)");
  }
  pb::ValidationReport report;
  if (profile != nullptr) report.set_hardware(profile->name());
  for (const ValidationCase& c : cases) {
    MOESIM_RETURN_IF_ERROR(CheckSameScenario(*c.measured, *c.scenario));
    // Predict what was run: moebench's CPU path computes and moves fp32, and it exchanges every
    // copy directly whatever the scenario's alltoall_algo and dispatch/combine dtypes say.
    models::Workload workload = c.scenario->workload;
    workload.model = ModelAsMeasured(workload.model, c.measured->result);
    workload.alltoall_algo = models::AllToAllAlgo::kDirect;
    workload.dispatch_dtype = workload.combine_dtype = std::nullopt;
    const pb::Result datasheet = SimulateMoeLayers(c.scenario->cluster, workload);
    pb::Result predicted = datasheet;
    if (profile != nullptr) {
      auto p = PredictWithProfile(c.scenario->cluster, workload, *profile);
      if (!p.ok()) return Error(c.scenario->file.path() + ": " + p.error().message());
      predicted = std::move(*p);
    }
    const pb::Result& m = c.measured->result;
    const std::string name = c.scenario->file.path();
    int64_t measured_comm = 0, predicted_comm = 0, datasheet_comm = 0;
    int64_t measured_step = 0, predicted_step = 0, datasheet_step = 0;
    for (const pb::Phase& phase : m.phases()) {
      MOESIM_ASSIGN_OR_RETURN(const int64_t p,
                              PhaseTime(predicted, phase.name(), phase.layer(), "the prediction"));
      MOESIM_ASSIGN_OR_RETURN(const int64_t d, PhaseTime(datasheet, phase.name(), phase.layer(),
                                                         "the datasheet prediction"));
      AddRow(report, name, phase.name(), phase.layer(), phase.time_ns(), p, d);
      measured_step += phase.time_ns();
      predicted_step += p;
      datasheet_step += d;
      if (phase.name() == "dispatch" || phase.name() == "combine") {
        measured_comm += phase.time_ns();
        predicted_comm += p;
        datasheet_comm += d;
      }
    }
    if (measured_comm > 0)
      AddRow(report, name, "collectives", 0, measured_comm, predicted_comm, datasheet_comm);
    AddRow(report, name, "step", 0, measured_step, predicted_step, datasheet_step);
  }
  Summarize(report);
  return report;
}

void PrintValidation(const pb::ValidationReport& report, std::ostream& out) {
  const bool profile = !report.hardware().empty();
  out << "# predicted (" << (profile ? "profile " + report.hardware() : std::string("datasheet"))
      << ") against measured; error = (predicted - measured) / measured\n";
  out << fmt::format("{:<44} {:<11} {:>5} {:>12} {:>12} {:>9} {:>12} {:>9}\n", "scenario", "op",
                     "layer", "measured_us", "predicted_us", "error", "datasheet_us", "error");
  for (const pb::ValidationRow& r : report.rows()) {
    out << fmt::format("{:<44} {:<11} {:5} {:>12.1f} {:>12.1f} {:>+8.1f}% {:>12.1f} {:>+8.1f}%\n",
                       r.scenario(), r.op(), r.layer(), r.measured_ns() / 1e3,
                       r.predicted_ns() / 1e3, 100 * r.relative_error(), r.datasheet_ns() / 1e3,
                       100 * r.datasheet_relative_error());
  }
  out << "\n# absolute relative error per op: median and worst\n";
  out << fmt::format("{:<11} {:>5} {:>10} {:>10} {:>16} {:>16}\n", "op", "rows", "median", "worst",
                     "datasheet_median", "datasheet_worst");
  for (const pb::ValidationSummary& s : report.summaries()) {
    out << fmt::format("{:<11} {:5} {:>9.1f}% {:>9.1f}% {:>15.1f}% {:>15.1f}%\n", s.op(), s.rows(),
                       100 * s.median_abs_error(), 100 * s.worst_abs_error(),
                       100 * s.datasheet_median_abs_error(), 100 * s.datasheet_worst_abs_error());
  }
}

}  // namespace moesim::sim
