// `moesim sweep --html`: the response of the total to the swept fields (sim/report/html_report.h).
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "sim/report/html_report.h"
#include "sim/report/html_svg.h"

namespace moesim::sim {
namespace {

using html::Escape;
using html::Num;

double SweepMs(int64_t ns) { return static_cast<double>(ns) / 1e6; }

// Milliseconds with the digits that matter at that size.
std::string SweepMsText(double ms) {
  return ms == 0 ? "0" : Num(ms, ms >= 100 ? 1 : ms >= 1 ? 3 : 4);
}

// The total of each row, NaN where the point failed.
std::vector<double> SweepTotals(const pb::SweepTable& t) {
  std::vector<double> out;
  for (const pb::SweepRow& r : t.rows()) {
    out.push_back(r.error().empty() ? SweepMs(r.total_ns())
                                    : std::numeric_limits<double>::quiet_NaN());
  }
  return out;
}

std::string SweepTotalName(const pb::SweepTable& t) {
  return t.kind() == "step" ? "step time (ms)" : "MoE layers, total (ms)";
}

// One field: the total and each component against its values.
std::string SweepOneFieldCharts(const pb::SweepTable& t) {
  const pb::SweepField& f = t.fields(0);
  html::LineChartSpec total{.title = SweepTotalName(t) + " against " + f.path(),
                            .x_label = f.path(),
                            .y_label = SweepTotalName(t),
                            .categories = {f.values().begin(), f.values().end()},
                            .series = {{"", SweepTotals(t), html::SeriesColor(0)}},
                            .format = SweepMsText};
  html::LineChartSpec parts = total;
  parts.title = "components (ms) against " + f.path();
  parts.y_label = "ms";
  parts.series.clear();
  for (int c = 0; c < t.components_size(); ++c) {
    html::LineSeries line{t.components(c), {}, html::SeriesColor(static_cast<size_t>(c))};
    for (const pb::SweepRow& r : t.rows()) {
      line.values.push_back(r.error().empty() ? SweepMs(r.components(c).time_ns())
                                              : std::numeric_limits<double>::quiet_NaN());
    }
    parts.series.push_back(std::move(line));
  }
  return html::PageFigure("sweep-total", html::LineChart(total)) +
         html::PageFigure("sweep-components", html::LineChart(parts));
}

// Two fields: the total as a heatmap (first field down, second across) and, while the second has
// at most 10 values, as lines over the first, one per value of the second.
std::string SweepTwoFieldCharts(const pb::SweepTable& t) {
  const pb::SweepField &a = t.fields(0), &b = t.fields(1);
  const std::vector<double> totals = SweepTotals(t);
  html::HeatmapSpec heat{.title = SweepTotalName(t),
                         .rows = static_cast<uint32_t>(a.values_size()),
                         .cols = static_cast<uint32_t>(b.values_size()),
                         .values = totals,
                         .group = 0,
                         .row_label = a.path(),
                         .col_label = b.path(),
                         .row_names = {a.values().begin(), a.values().end()},
                         .col_names = {b.values().begin(), b.values().end()},
                         .format = SweepMsText};
  std::string s = html::PageFigure("sweep-heatmap", html::Heatmap(heat));
  if (b.values_size() > 10) return s;
  html::LineChartSpec lines{
      .title = SweepTotalName(t) + " against " + a.path() + ", one line per " + b.path(),
      .x_label = a.path(),
      .y_label = SweepTotalName(t),
      .categories = {a.values().begin(), a.values().end()},
      .series = {},
      .format = SweepMsText};
  for (int j = 0; j < b.values_size(); ++j) {
    html::LineSeries line{b.path() + " = " + b.values(j), {}, html::SeriesColor(j)};
    for (int i = 0; i < a.values_size(); ++i)
      line.values.push_back(totals.at(static_cast<size_t>(i * b.values_size() + j)));
    lines.series.push_back(std::move(line));
  }
  return s + html::PageFigure("sweep-lines", html::LineChart(lines));
}

}  // namespace

std::string HtmlSweepPage(const pb::SweepTable& t) {
  std::string s = html::PageHead("moesim sweep: " + t.name());
  s += "<h1>moesim sweep: " + Escape(t.name().empty() ? t.scenario() : t.name()) + "</h1>\n";
  s += fmt::format(
      "<p class=\"note\">{}: {} at {} fidelity; {} points, {} failed; change against point "
      "{}</p>\n",
      Escape(t.scenario()), t.kind() == "step" ? "whole steps" : "MoE layers", Escape(t.fidelity()),
      t.rows_size(), t.failed(), t.baseline());
  s += "<h2>Response</h2>\n";
  if (t.fields_size() == 1) {
    s += SweepOneFieldCharts(t);
  } else if (t.fields_size() == 2) {
    s += SweepTwoFieldCharts(t);
  } else {
    s += "<p class=\"note\">No chart for three or more swept fields: every point is in the "
         "table.</p>\n";
  }
  s += "<h2>Points</h2>\n<table id=\"sweep-table\">\n<tr><th>#</th>";
  for (const pb::SweepField& f : t.fields()) s += "<th class=\"l\">" + Escape(f.path()) + "</th>";
  s += "<th>total (ms)</th><th>change</th>";
  for (const std::string& c : t.components()) s += "<th>" + Escape(c) + " (ms)</th>";
  s += "<th class=\"l\">bottleneck</th>";
  if (t.kind() == "step") s += "<th>memory (GB)</th><th>fits</th>";
  s += "</tr>\n";
  for (const pb::SweepRow& r : t.rows()) {
    s += fmt::format("<tr><td>{}</td>", r.index());
    for (const std::string& v : r.values()) s += "<td class=\"l\">" + Escape(v) + "</td>";
    if (!r.error().empty()) {
      s += fmt::format("<td class=\"l\" colspan=\"{}\">{}</td></tr>\n",
                       3 + t.components_size() + (t.kind() == "step" ? 2 : 0), Escape(r.error()));
      continue;
    }
    s += fmt::format("<td>{}</td><td>{} %</td>", SweepMsText(SweepMs(r.total_ns())),
                     Num(r.delta_pct(), 1));
    for (const pb::SweepComponent& c : r.components())
      s += "<td>" + SweepMsText(SweepMs(c.time_ns())) + "</td>";
    s += "<td class=\"l\">" + Escape(r.bottleneck()) + "</td>";
    if (t.kind() == "step") {
      s +=
          fmt::format("<td>{}</td><td>{}</td>", Num(static_cast<double>(r.memory_bytes()) / 1e9, 2),
                      r.fits() ? "yes" : "no");
    }
    s += "</tr>\n";
  }
  return s + "</table>\n</body>\n</html>\n";
}

}  // namespace moesim::sim
