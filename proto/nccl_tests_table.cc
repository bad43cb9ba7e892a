#include "proto/nccl_tests_table.h"

#include <cstdio>

namespace moesim {
namespace {

// printf into a string (the widths nccl-tests uses are C format widths).
template <typename... Args>
std::string Printf(const char* format, Args... args) {
  char buffer[128];
  std::snprintf(buffer, sizeof buffer, format, args...);
  return buffer;
}

// One half of a row, as util.cu writes it: "  %7s  %6s  %6s  %6g", or "  %7s  %6s  %6s    N/A"
// when the data was not checked.
std::string Half(double time_us, double algbw, double busbw, const std::optional<uint64_t>& wrong) {
  const std::string checked =
      wrong ? Printf("  %6llu", static_cast<unsigned long long>(*wrong)) : std::string("    N/A");
  return "  " + NcclTestsFigure(time_us, 7) + "  " + NcclTestsFigure(algbw, 6) + "  " +
         NcclTestsFigure(busbw, 6) + checked;
}

}  // namespace

std::string NcclTestsFigure(double value, int width) {
  for (const char* format : {"%*.2f", "%*.1f", "%*.0f"}) {
    const std::string s = Printf(format, width, value);
    if (static_cast<int>(s.size()) <= width) return s;
  }
  return Printf(width >= 7 ? "%*.1e" : "%*.0e", width, value);
}

void WriteNcclTestsTable(const pb::CollectiveSweep& sweep, const NcclTestsTable& table,
                         std::ostream& out) {
  const char* blank = "";
  out << Printf(
             "# %10s  %12s  %8s  %6s  %6s           out-of-place                       in-place"
             "          \n",
             blank, blank, blank, blank, blank)
      << Printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s", "size",
                "count", "type", "redop", "root", "time", "algbw", "busbw", "#wrong", "time",
                "algbw", "busbw", "#wrong")
      << (table.extra_heading.empty() ? "" : "  " + table.extra_heading) << "\n"
      << Printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s", "(B)",
                "(elements)", blank, blank, blank, "(us)", "(GB/s)", "(GB/s)", blank, "(us)",
                "(GB/s)", "(GB/s)", blank)
      << "\n";
  uint64_t wrong_total = 0;
  double busbw_sum = 0;
  int busbw_count = 0;
  for (int i = 0; i < sweep.rows_size(); ++i) {
    const pb::CollectiveRow& r = sweep.rows(i);
    const std::optional<uint64_t> wrong =
        i < static_cast<int>(table.wrong.size()) ? table.wrong[i] : std::nullopt;
    const std::optional<uint64_t> in_place_wrong =
        i < static_cast<int>(table.in_place_wrong.size()) ? table.in_place_wrong[i] : wrong;
    out << Printf("%12llu  %12llu  %8s  %6s  %6i", static_cast<unsigned long long>(r.size_bytes()),
                  static_cast<unsigned long long>(r.count()), r.type().c_str(),
                  std::string(table.redop).c_str(), -1)
        << Half(r.time_us(), r.algbw_gbps(), r.busbw_gbps(), wrong);
    busbw_sum += r.busbw_gbps();
    ++busbw_count;
    if (table.in_place) {
      const bool measured = r.has_in_place_time_us();
      const double busbw = measured ? r.in_place_busbw_gbps() : r.busbw_gbps();
      out << Half(measured ? r.in_place_time_us() : r.time_us(),
                  measured ? r.in_place_algbw_gbps() : r.algbw_gbps(), busbw, in_place_wrong);
      busbw_sum += busbw;
      ++busbw_count;
      if (in_place_wrong && i < static_cast<int>(table.in_place_wrong.size()))
        wrong_total += *in_place_wrong;
    }
    if (table.extra) out << "  " << table.extra(r);
    out << "\n";
    if (wrong) wrong_total += *wrong;
  }
  out << Printf("# %-20s : %llu %s\n", "Out of bounds values",
                static_cast<unsigned long long>(wrong_total), wrong_total ? "FAILED" : "OK")
      << Printf("# %-20s : %g \n", "Avg bus bandwidth", busbw_count ? busbw_sum / busbw_count : 0.0)
      << "#\n";
}

}  // namespace moesim
