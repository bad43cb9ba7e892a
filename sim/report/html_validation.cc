// `moesim validate --html` (html_report.h): predicted against measured, op by op, with the error.
// Drawn from the ValidationReport alone, as `--json` prints it.
#include <fmt/format.h>

#include <map>
#include <string>
#include <vector>

#include "sim/report/html_report.h"
#include "sim/report/html_svg.h"
#include "sim/report/report.h"

namespace moesim::sim {
namespace {

using html::Escape;
using html::Num;

// Measured grey, the profile's prediction blue, the datasheet's light orange.
constexpr const char* kMeasuredColor = "#636363";
constexpr const char* kPredictedColor = "#3182bd";
constexpr const char* kDatasheetColor = "#fdae6b";

std::string Percent(double fraction) {
  return (fraction >= 0 ? "+" : "") + Num(100 * fraction, 1) + " %";
}

std::string SummaryTable(const pb::ValidationReport& v) {
  std::string s =
      "<table id=\"validation-summary\">\n<tr><th class=\"l\">op</th><th>rows</th><th>median "
      "|error|</th><th>worst |error|</th><th>datasheet median</th><th>datasheet worst</th></tr>\n";
  for (const pb::ValidationSummary& x : v.summaries()) {
    s += fmt::format(
        "<tr><td class=\"l\">{}</td><td>{}</td><td>{} %</td><td>{} %</td><td>{} %</td><td>{} "
        "%</td></tr>\n",
        Escape(x.op()), x.rows(), Num(100 * x.median_abs_error(), 1),
        Num(100 * x.worst_abs_error(), 1), Num(100 * x.datasheet_median_abs_error(), 1),
        Num(100 * x.datasheet_worst_abs_error(), 1));
  }
  return s + "</table>\n";
}

// One chart per op, in the order the ops first appear: per row, the measured time, the
// prediction and (with a profile) the datasheet's, each prediction labelled with its error.
std::string OpCharts(const pb::ValidationReport& v) {
  std::vector<std::string> ops;
  std::map<std::string, std::vector<const pb::ValidationRow*>> rows;
  for (const pb::ValidationRow& r : v.rows()) {
    if (!rows.count(r.op())) ops.push_back(r.op());
    rows[r.op()].push_back(&r);
  }
  const bool profile = !v.hardware().empty();
  std::string s;
  for (const std::string& op : ops) {
    html::HBarChartSpec h;
    h.title = op;
    h.x_label = "time";
    h.format = [](double ns) { return FormatNs(static_cast<int64_t>(ns)); };
    for (const pb::ValidationRow* r : rows[op]) {
      const std::string at = fmt::format("{} L{}", r->scenario(), r->layer());
      h.bars.push_back({at + " measured", static_cast<double>(r->measured_ns()), kMeasuredColor});
      h.bars.push_back({at + (profile ? " profile " : " predicted ") + Percent(r->relative_error()),
                        static_cast<double>(r->predicted_ns()), kPredictedColor});
      if (profile) {
        h.bars.push_back({at + " datasheet " + Percent(r->datasheet_relative_error()),
                          static_cast<double>(r->datasheet_ns()), kDatasheetColor});
      }
    }
    h.legend = {{"measured", kMeasuredColor},
                {profile ? "profile " + v.hardware() : "predicted (datasheet)", kPredictedColor}};
    if (profile) h.legend.emplace_back("datasheet", kDatasheetColor);
    s += html::PageFigure("op-" + op, html::HBarChart(h));
  }
  return s;
}

std::string RowsTable(const pb::ValidationReport& v) {
  std::string s =
      "<table id=\"validation-rows\">\n<tr><th class=\"l\">scenario</th><th class=\"l\">op</th>"
      "<th>layer</th><th>measured</th><th>predicted</th><th>error</th><th>datasheet</th>"
      "<th>error</th></tr>\n";
  for (const pb::ValidationRow& r : v.rows()) {
    s += fmt::format(
        "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td><td>{}</td></tr>\n",
        Escape(r.scenario()), Escape(r.op()), r.layer(), FormatNs(r.measured_ns()),
        FormatNs(r.predicted_ns()), Percent(r.relative_error()), FormatNs(r.datasheet_ns()),
        Percent(r.datasheet_relative_error()));
  }
  return s + "</table>\n";
}

}  // namespace

std::string HtmlValidationPage(const pb::ValidationReport& v) {
  const std::string against = v.hardware().empty() ? "the datasheet" : "profile " + v.hardware();
  std::string s = html::PageHead("moesim validate: " + against);
  s += "<h1>moesim validate: " + Escape(against) + " against measured</h1>\n";
  s += fmt::format(
      "<p class=\"note\">{} rows; error = (predicted - measured) / measured. With a profile the "
      "datasheet's prediction is drawn beside it.</p>\n",
      v.rows_size());
  s += "<h2>Summary</h2>\n" + SummaryTable(v);
  s += "<h2>Predicted against measured, per op</h2>\n" + OpCharts(v);
  s += "<h2>Rows</h2>\n" + RowsTable(v);
  return s + "</body>\n</html>\n";
}

}  // namespace moesim::sim
