#include "backend/run/run_report.h"

#include <fmt/format.h>

namespace moesim::backend {
namespace {

void PrintMatrix(const pb::SendMatrix& m, std::ostream& out) {
  const int n = m.tokens_size();
  out << "# layer " << m.layer()
      << " dispatch: rows sent (token copies), row = source rank, column = destination\n";
  if (n > 16) {
    out << "#   " << n << " ranks: too wide to print; see --json\n";
    return;
  }
  out << "#        ";
  for (int j = 0; j < n; ++j) {
    out << fmt::format("{:>8}", "rank" + std::to_string(j));
  }
  out << "\n";
  for (int i = 0; i < n; ++i) {
    out << fmt::format("#   {:<5}", "rank" + std::to_string(i));
    for (int j = 0; j < n; ++j) {
      out << fmt::format("{:>8.0f}", m.tokens(i).values(j).number_value());
    }
    out << "\n";
  }
}

}  // namespace

void PrintRunReport(const std::string& path, const RunReport& report, std::ostream& out) {
  const pb::Result& r = report.result;
  out << "# moebench run: " << r.scenario() << " (" << path << ")\n"
      << "# device " << r.device() << " (" << r.dtype() << "), " << r.gpus() << " ranks, "
      << r.iterations() << " timed iterations after " << r.warmup_iterations() << " warm-up\n"
      << "# time: slowest rank in each iteration; median, p10 and p90 over iterations. rate:\n"
      << "# compute = the critical rank's GFLOP/s; communication = bytes between ranks / time\n"
      << "#\n"
      << "# layer  phase       median(us)   p10(us)   p90(us)  critical        bytes      "
         "GFLOP    rate\n";
  for (const pb::Phase& p : r.phases()) {
    const double us = p.time_ns() / 1e3;
    const bool comm = p.name() == "dispatch" || p.name() == "combine";
    const double rate =
        p.time_ns() > 0 ? (comm ? static_cast<double>(p.bytes()) : static_cast<double>(p.flops())) /
                              static_cast<double>(p.time_ns())
                        : 0;
    out << fmt::format(
        "{:7}  {:<9} {:>11.1f} {:>9.1f} {:>9.1f}  {:8} {:12} {:>10.3f}  {:>6.2f} {}\n", p.layer(),
        p.name(), us, p.time_p10_ns() / 1e3, p.time_p90_ns() / 1e3, p.critical_rank(), p.bytes(),
        p.flops() / 1e9, rate, comm ? "GB/s" : "GFLOP/s");
  }
  out << fmt::format("{:>7}  {:<9} {:>11.1f}\n", "total", "", r.total_ns() / 1e3) << "#\n";
  for (const pb::SendMatrix& m : r.send_matrices()) {
    if (m.phase() == "dispatch") PrintMatrix(m, out);
  }
  const CheckReport& c = report.check;
  if (c.ran && c.dispatch_checked) {
    out << fmt::format(
        "check: passed: dispatch delivered all {} rows to the ranks of their experts, "
        "stamps and payloads intact; combine matches the single-process reference, max "
        "relative error {:.2e} (bound {:.0e})\n",
        c.rows_checked, c.max_relative_error, c.bound);
  } else if (c.ran) {
    out << fmt::format(
        "check: passed: every token's output matches the CPU fp32 reference, max "
        "relative error {:.2e} (bound {:.0e})\n",
        c.max_relative_error, c.bound);
  }
}

std::vector<std::string> SpreadWarnings(const pb::Result& result) {
  std::vector<std::string> lines;
  for (const pb::Phase& p : result.phases()) {
    if (p.time_p10_ns() <= 0 || p.time_p90_ns() <= 0) continue;
    const double spread =
        static_cast<double>(p.time_p90_ns()) / static_cast<double>(p.time_p10_ns());
    if (spread <= kWideSpread) continue;
    lines.push_back(fmt::format(
        "layer {} {}: p90 {:.1f} us is {:.1f}x p10 {:.1f} us (wider than {:.0f}x): the machine was "
        "busy or the run too short; for a quieter measurement run on an idle machine (load average "
        "near 0), with more --iters and --warmup, ranks pinned (mpirun --bind-to core)",
        p.layer(), p.name(), p.time_p90_ns() / 1e3, spread, p.time_p10_ns() / 1e3, kWideSpread));
  }
  return lines;
}

}  // namespace moesim::backend
