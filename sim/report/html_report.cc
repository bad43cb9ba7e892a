#include "sim/report/html_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "sim/report/html_svg.h"
#include "sim/report/report.h"

namespace moesim::sim {
namespace {

using html::Escape;
using html::Num;

// 1280 px wide, charts scaled down with the window, one chart per printed page at most.
constexpr const char* kStyle = R"(
body { font: 13px/1.4 "DejaVu Sans", Helvetica, Arial, sans-serif; color: #222; margin: 0 auto;
       max-width: 1240px; padding: 12px 20px; background: #fff; }
h1 { font-size: 20px; margin: 8px 0; } h2 { font-size: 16px; margin: 20px 0 6px;
  border-bottom: 1px solid #ccc; } p.note { color: #555; margin: 2px 0 8px; }
figure { margin: 8px 0 16px; } svg.chart { max-width: 100%; height: auto; display: block; }
svg text { font-size: 11px; fill: #333; } svg text.title { font-size: 13px; font-weight: bold; }
table { border-collapse: collapse; margin: 6px 0 14px; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
th { background: #f0f0f0; } td.l, th.l { text-align: left; }
@media print { body { max-width: none; padding: 0; } figure, table { break-inside: avoid; }
  h2 { break-after: avoid; } }
)";

// Colours of phases and link classes (ColorBrewer's Set2 and Dark2), fixed per name.
std::string PhaseColor(const std::string& phase) {
  static const std::map<std::string, std::string> colors = {{"router", "#969696"},
                                                            {"dispatch", "#3182bd"},
                                                            {"expert", "#31a354"},
                                                            {"combine", "#e6550d"},
                                                            {"gemm", "#756bb1"}};
  const auto it = colors.find(phase);
  return it == colors.end() ? "#bdbdbd" : it->second;
}

std::string LinkClassColor(const std::string& cls) {
  static const std::map<std::string, std::string> colors = {
      {"nvlink", "#1b9e77"},   {"pcie", "#d95f02"}, {"infiniband", "#7570b3"},
      {"ethernet", "#e7298a"}, {"roce", "#e7298a"}, {"nvswitch", "#66a61e"}};
  const auto it = colors.find(cls);
  return it == colors.end() ? "#a6761d" : it->second;
}

std::string Head(const std::string& title) { return html::PageHead(title); }

std::string Figure(const std::string& id, const std::string& svg) {
  return html::PageFigure(id, svg);
}

}  // namespace

std::string html::PageHead(const std::string& title) {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=1280\">\n<title>" +
         Escape(title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n";
}

std::string html::PageFigure(const std::string& id, const std::string& svg) {
  return "<figure id=\"" + Escape(id) + "\">\n" + svg + "</figure>\n";
}

namespace {

// a + b for times of a Result read from a file, held at int64's largest instead of overflowing.
int64_t SatAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  return __builtin_add_overflow(a, b, &sum) ? std::numeric_limits<int64_t>::max() : sum;
}

std::string FormatBytesD(double v) { return FormatBytes(static_cast<uint64_t>(std::llround(v))); }
std::string FormatNsD(double v) { return FormatNs(static_cast<int64_t>(std::llround(v))); }

// A send-matrix cell as a count; what is not a whole non-negative number counts as 0.
double CellCount(const google::protobuf::ListValue& row, int j) {
  if (j >= row.values_size()) return 0;
  const double v = row.values(j).number_value();
  return std::isfinite(v) && v > 0 ? v : 0;
}

std::string DispatchSection(const pb::Result& r) {
  std::string s;
  for (const pb::SendMatrix& m : r.send_matrices()) {
    if (m.phase() != "dispatch") continue;
    const uint32_t n = static_cast<uint32_t>(m.bytes_size());
    if (n == 0) continue;
    if (s.empty()) {
      s += "<h2>Dispatch all-to-all: bytes from each GPU to each GPU</h2>\n<p class=\"note\">Row = "
           "source, column = destination, the diagonal is what a GPU keeps; orange lines are node "
           "boundaries.";
      if (n > kHtmlMaxRanks)
        s += fmt::format(" {} GPUs: each cell sums a block of {} x {} GPUs.", n,
                         (n + kHtmlMaxRanks - 1) / kHtmlMaxRanks,
                         (n + kHtmlMaxRanks - 1) / kHtmlMaxRanks);
      s += "</p>\n";
    }
    const uint32_t block = (n + kHtmlMaxRanks - 1) / kHtmlMaxRanks;
    const uint32_t cells = (n + block - 1) / block;
    html::HeatmapSpec h;
    h.title = fmt::format("Layer {} dispatch (bytes)", m.layer());
    h.rows = h.cols = cells;
    h.values.assign(static_cast<size_t>(cells) * cells, 0.0);
    for (uint32_t i = 0; i < n; ++i) {
      for (uint32_t j = 0; j < n; ++j)
        h.values[static_cast<size_t>(i / block) * cells + j / block] += CellCount(m.bytes(i), j);
    }
    h.group = r.gpus_per_node() > 0 && r.gpus_per_node() % block == 0 && r.gpus_per_node() < n
                  ? r.gpus_per_node() / block
                  : 0;
    if (block > 1) h.row_label = h.col_label = fmt::format("GPU block ({} GPUs)", block);
    h.format = FormatBytesD;
    s += Figure(fmt::format("dispatch-L{}", m.layer()), html::Heatmap(h));
  }
  return s;
}

std::string LoadsSection(const pb::Result& r) {
  std::string s;
  for (const pb::ExpertLoads& l : r.expert_loads()) {
    if (s.empty()) {
      s += "<h2>Expert loads: token copies each expert and each GPU computed</h2>\n";
    }
    auto mean = [](const auto& values) {
      double sum = 0;
      for (const uint64_t v : values) sum += static_cast<double>(v);
      return values.empty() ? 0.0 : sum / values.size();
    };
    html::BarChartSpec experts;
    experts.title = fmt::format("Layer {}: token copies per expert", l.layer());
    experts.y_label = "token copies";
    for (int e = 0; e < l.expert_tokens_size(); ++e)
      experts.bars.push_back({"e" + std::to_string(e), static_cast<double>(l.expert_tokens(e))});
    experts.lines.push_back({"mean", mean(l.expert_tokens()), "#333333"});
    if (l.capacity_tokens() > 0)
      experts.lines.push_back({"capacity", static_cast<double>(l.capacity_tokens()), "#d62728"});
    s += Figure(fmt::format("experts-L{}", l.layer()), html::BarChart(experts));
    html::BarChartSpec gpus;
    gpus.title = fmt::format("Layer {}: token copies per GPU", l.layer());
    gpus.y_label = "token copies";
    for (int g = 0; g < l.gpu_tokens_size(); ++g)
      gpus.bars.push_back(
          {"gpu" + std::to_string(g), static_cast<double>(l.gpu_tokens(g)), "#74c476"});
    gpus.lines.push_back({"mean", mean(l.gpu_tokens()), "#333333"});
    s += Figure(fmt::format("gpus-L{}", l.layer()), html::BarChart(gpus));
  }
  return s;
}

std::string LinksSection(const pb::Result& r) {
  struct Row {
    const pb::Phase* phase;
    const pb::LinkLoad* load;
  };
  std::vector<Row> rows;
  for (const pb::Phase& p : r.phases())
    for (const pb::LinkLoad& l : p.busiest_links()) rows.push_back({&p, &l});
  if (rows.empty()) return "";
  // Busiest first; ties in Result order (stable).
  std::vector<Row> top = rows;
  std::stable_sort(top.begin(), top.end(), [](const Row& a, const Row& b) {
    return a.load->utilization() > b.load->utilization();
  });
  if (top.size() > 16) top.resize(16);
  html::HBarChartSpec chart;
  chart.title = "Busiest links: share of the phase each needs to move its bytes";
  chart.x_label = "utilization (%)";
  chart.format = [](double v) { return Num(v, 1) + " %"; };
  std::set<std::string> classes;
  for (const Row& row : top) {
    chart.bars.push_back(
        {fmt::format("L{} {}: {}", row.phase->layer(), row.phase->name(), row.load->link()),
         100 * row.load->utilization(), LinkClassColor(row.load->link_class())});
    classes.insert(row.load->link_class());
  }
  for (const std::string& c : classes) chart.legend.emplace_back(c, LinkClassColor(c));
  std::string s = "<h2>Links</h2>\n" + Figure("links", html::HBarChart(chart));
  s += "<table id=\"link-table\">\n<tr><th>layer</th><th class=\"l\">phase</th><th "
       "class=\"l\">link</th><th class=\"l\">class</th><th>bytes</th><th>utilization</th></tr>\n";
  for (const Row& row : rows) {
    s += fmt::format(
        "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>"
        "<td>{}</td><td>{} %</td></tr>\n",
        row.phase->layer(), Escape(row.phase->name()), Escape(row.load->link()),
        Escape(row.load->link_class()), FormatBytes(row.load->bytes()),
        Num(100 * row.load->utilization(), 1));
  }
  return s + "</table>\n";
}

// The GPUs the Gantt chart shows: all up to kHtmlMaxRanks, else each phase's slowest GPU and
// those on the critical path, then the lowest ranks, in rank order.
std::vector<uint32_t> GanttRanks(const pb::Result& r) {
  std::set<uint32_t> shown;
  if (r.gpus() <= kHtmlMaxRanks) {
    for (uint32_t g = 0; g < r.gpus(); ++g) shown.insert(g);
  } else {
    for (const pb::Phase& p : r.phases())
      if (p.critical_rank() < r.gpus() && shown.size() < kHtmlMaxRanks)
        shown.insert(p.critical_rank());
    for (const pb::CriticalStep& c : r.critical_path())
      if (c.rank() < r.gpus() && shown.size() < kHtmlMaxRanks) shown.insert(c.rank());
    for (uint32_t g = 0; g < r.gpus() && shown.size() < kHtmlMaxRanks; ++g) shown.insert(g);
  }
  return {shown.begin(), shown.end()};
}

std::string GanttSection(const pb::Result& r) {
  if (r.phases_size() == 0) return "";
  const std::vector<uint32_t> ranks = GanttRanks(r);
  std::map<uint32_t, uint32_t> lane;
  html::GanttSpec g;
  g.title = "Phases per GPU (phases start together, after the slowest GPU of the phase before)";
  for (const uint32_t rank : ranks) {
    lane[rank] = static_cast<uint32_t>(g.lanes.size());
    g.lanes.push_back("gpu" + std::to_string(rank));
  }
  g.format = FormatNsD;
  std::set<std::string> names;
  int64_t start = 0;
  for (const pb::Phase& p : r.phases()) {
    for (int k = 0; k < p.rank_time_ns_size(); ++k) {
      const auto it = lane.find(static_cast<uint32_t>(k));
      if (it == lane.end() || p.rank_time_ns(k) <= 0) continue;
      g.bars.push_back({it->second, start, SatAdd(start, p.rank_time_ns(k)), PhaseColor(p.name()),
                        fmt::format("gpu{} layer {} {}: {}", k, p.layer(), p.name(),
                                    FormatNs(p.rank_time_ns(k))),
                        static_cast<uint32_t>(k) == p.critical_rank()});
    }
    if (p.rank_time_ns_size() == 0 && p.time_ns() > 0 && !ranks.empty()) {
      // A phase without per-GPU times: the slowest GPU's time on its lane, or the first lane.
      const auto it = lane.find(p.critical_rank());
      g.bars.push_back({it == lane.end() ? 0u : it->second, start, SatAdd(start, p.time_ns()),
                        PhaseColor(p.name()),
                        fmt::format("layer {} {}: {}", p.layer(), p.name(), FormatNs(p.time_ns())),
                        true});
    }
    names.insert(p.name());
    if (p.time_ns() > 0) start = SatAdd(start, p.time_ns());
  }
  if (r.critical_path_size() > 0) {
    const uint32_t path_lane = static_cast<uint32_t>(g.lanes.size());
    g.lanes.push_back("critical path");
    for (const pb::CriticalStep& c : r.critical_path()) {
      g.bars.push_back(
          {path_lane, c.start_ns(), c.end_ns(), PhaseColor(c.phase()),
           fmt::format("gpu{} layer {} {}: {} to {} ({})", c.rank(), c.layer(), c.phase(),
                       FormatNs(c.start_ns()), FormatNs(c.end_ns()), c.note()),
           true});
    }
  }
  for (const std::string& n : names) g.legend.emplace_back(n, PhaseColor(n));
  std::string s =
      "<h2>Timeline</h2>\n<p class=\"note\">Each GPU's own time in each phase; the "
      "slowest GPU of each phase is outlined in red.";
  if (r.critical_path_size() > 0) {
    s += fmt::format(
        " The last lane is the critical path without barriers between phases: gpu{} finishes "
        "last at {} (with barriers: {}).",
        r.critical_path(r.critical_path_size() - 1).rank(), FormatNs(r.dataflow_total_ns()),
        FormatNs(r.total_ns()));
  }
  if (ranks.size() < r.gpus())
    s += fmt::format(" {} of {} GPUs shown: every phase's slowest, then the lowest ranks.",
                     ranks.size(), r.gpus());
  return s + "</p>\n" + Figure("timeline", html::Gantt(g));
}

std::string PhaseTable(const pb::Result& r) {
  std::string s =
      "<h2>Phases</h2>\n<table id=\"phase-table\">\n<tr><th>layer</th><th class=\"l\">phase</th>"
      "<th>time</th><th>bytes</th><th class=\"l\">bound</th><th>slowest</th><th "
      "class=\"l\">busiest link</th></tr>\n";
  for (const pb::Phase& p : r.phases()) {
    s += fmt::format(
        "<tr><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td>"
        "<td>gpu{}</td><td class=\"l\">{}</td></tr>\n",
        p.layer(), Escape(p.name()), FormatNs(p.time_ns()), FormatBytes(p.bytes()),
        Escape(p.bound()), p.critical_rank(), Escape(p.bottleneck_link()));
  }
  return s + fmt::format(
                 "<tr><td></td><td class=\"l\">total</td><td>{}</td><td></td><td></td>"
                 "<td></td><td></td></tr>\n</table>\n",
                 FormatNs(r.total_ns()));
}

}  // namespace

std::string HtmlResultPage(const pb::Result& r) {
  std::string s = Head("moesim: " + r.scenario());
  s += "<h1>moesim: " + Escape(r.scenario()) + "</h1>\n";
  const std::string per_node =
      r.gpus_per_node() > 0 ? fmt::format(" ({} per node)", r.gpus_per_node()) : "";
  s += fmt::format("<p class=\"note\">{} on {} GPUs{}, {}; total {}</p>\n", Escape(r.model()),
                   r.gpus(), per_node, Escape(r.executor()), FormatNs(r.total_ns()));
  s += GanttSection(r);
  s += DispatchSection(r);
  const std::string loads = LoadsSection(r);
  s += loads.empty() ? "<h2>Expert loads</h2>\n<p class=\"note\">Not in this Result (`moesim "
                       "simulate` records them; a measured Result does not).</p>\n"
                     : loads;
  s += LinksSection(r);
  s += PhaseTable(r);
  return s + "</body>\n</html>\n";
}

std::string HtmlPlanPage(const pb::PlanTable& t) {
  std::string s = Head("moesim plan: " + t.model());
  s += "<h1>moesim plan: " + Escape(t.model()) + " on " + Escape(t.cluster()) + "</h1>\n";
  s += fmt::format(
      "<p class=\"note\">{} GPUs, {}, global batch {}, sequence {}; {} candidates simulated, {} "
      "refused by the plan rules, {} failed</p>\n",
      t.gpus(), Escape(t.mode()), t.global_batch(), t.seq_len(), t.candidates(), t.rejected(),
      t.failed());
  // The Pareto front of (memory, step time): a plan no other plan beats on both (<= on both and
  // < on one). Among fitting plans only.
  html::ScatterSpec sc;
  sc.title = "Step time against memory per GPU, every candidate";
  sc.x_label = "memory of the fullest GPU (GB)";
  sc.y_label = "step time (ms)";
  sc.format_x = [](double v) { return Num(v, 0); };
  sc.format_y = [](double v) { return Num(v, v >= 100 ? 0 : 1); };
  for (const pb::PlanRow& a : t.rows()) {
    bool dominated = !a.fits();
    for (const pb::PlanRow& b : t.rows()) {
      if (dominated) break;
      dominated = b.fits() && b.memory_bytes() <= a.memory_bytes() && b.step_ps() <= a.step_ps() &&
                  (b.memory_bytes() < a.memory_bytes() || b.step_ps() < a.step_ps());
    }
    sc.points.push_back({a.memory_bytes() / 1e9, a.step_ms(), a.plan(), !dominated, a.fits()});
  }
  s += "<h2>Trade-offs</h2>\n<p class=\"note\">Red: the Pareto front (no other fitting plan is "
       "both faster and smaller); grey: does not fit in memory.</p>\n";
  s += Figure("plans", html::Scatter(sc));
  s += "<h2>Top plans</h2>\n<table id=\"plan-table\">\n<tr><th>#</th><th class=\"l\">plan</th>"
       "<th>step (ms)</th><th>MFU</th><th>all-to-all</th><th>memory (GB)</th><th>fits</th>"
       "<th>front</th></tr>\n";
  for (int i = 0; i < t.rows_size() && i < 20; ++i) {
    const pb::PlanRow& row = t.rows(i);
    s += fmt::format(
        "<tr><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{} %</td><td>{} %</td><td>{}</td>"
        "<td>{}</td><td>{}</td></tr>\n",
        i + 1, Escape(row.plan()), Num(row.step_ms(), 2), Num(100 * row.mfu(), 1),
        Num(100 * row.alltoall_share(), 1), Num(row.memory_bytes() / 1e9, 1),
        row.fits() ? "yes" : "no", sc.points[i].front ? "yes" : "");
  }
  s += "</table>\n";
  if (t.refused_size() > 0) {
    s += fmt::format(
        "<h2>Refused by the plan rules</h2>\n<p class=\"note\">{} enumerated plans, each with the "
        "rule that refused it.</p>\n<table id=\"refused-table\">\n<tr><th class=\"l\">plan</th>"
        "<th class=\"l\">reason</th></tr>\n",
        t.refused_size());
    for (const pb::RefusedPlan& r : t.refused()) {
      s += fmt::format("<tr><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>\n",
                       Escape(r.plan()), Escape(r.reason()));
    }
    s += "</table>\n";
  }
  return s + "</body>\n</html>\n";
}

}  // namespace moesim::sim
