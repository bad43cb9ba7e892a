#include "sim/report/html_svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace moesim::sim::html {
namespace {

double Clean(double v) { return std::isfinite(v) && v > 0 ? v : 0; }

// The opening tag of a chart: its size in CSS px, scaled down with the page (viewBox).
std::string Open(std::string_view kind, double width, double height, const std::string& title) {
  return fmt::format(
      "<svg class=\"chart {0}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{1}\" "
      "height=\"{2}\" viewBox=\"0 0 {1} {2}\" role=\"img\">\n<text class=\"title\" x=\"8\" "
      "y=\"18\">{3}</text>\n",
      kind, Num(width, 0), Num(height, 0), Escape(title));
}

std::string Text(double x, double y, std::string_view anchor, const std::string& text,
                 std::string_view cls = "axis") {
  return fmt::format("<text class=\"{}\" x=\"{}\" y=\"{}\" text-anchor=\"{}\">{}</text>\n", cls,
                     Num(x), Num(y), anchor, Escape(text));
}

std::string Line(double x1, double y1, double x2, double y2, std::string_view cls,
                 std::string_view color = "#999") {
  return fmt::format("<line class=\"{}\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\"/>\n",
                     cls, Num(x1), Num(y1), Num(x2), Num(y2), color);
}

// Horizontal grid lines from 0 to `axis` (Ticks(axis) steps) across a plot whose bottom-left corner
// is (left, bottom), each labelled at the left.
std::string YGrid(double left, double bottom, double width, double height, double axis,
                  const std::function<std::string(double)>& format) {
  std::string s;
  const int ticks = Ticks(axis);
  for (int k = 0; k <= ticks; ++k) {
    const double y = bottom - height * k / ticks;
    s += Line(left, y, left + width, y, "grid", "#ddd");
    s += Text(left - 4, y + 4, "end", format(axis * k / ticks));
  }
  return s;
}

// A y axis' title, written upwards at x = 16, centred on `y`.
std::string YLabel(double y, const std::string& text) {
  return fmt::format(
      "<text class=\"axis\" transform=\"translate(16 {}) rotate(-90)\" "
      "text-anchor=\"middle\">{}</text>\n",
      Num(y), Escape(text));
}

std::string Legend(double x, double y, const std::vector<std::pair<std::string, std::string>>& l) {
  std::string s;
  for (const auto& [name, color] : l) {
    s += fmt::format(
        "<rect class=\"key\" x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/>\n", Num(x),
        Num(y - 9), Escape(color));
    s += Text(x + 14, y, "start", name, "legend");
    x += 24 + 7.0 * static_cast<double>(name.size());
  }
  return s;
}

}  // namespace

std::string Escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          out += "\xEF\xBF\xBD";  // U+FFFD
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string Num(double value, int decimals) {
  if (!std::isfinite(value)) return "0";
  std::string s = fmt::format("{:.{}f}", value, decimals);
  // "-0.0" (a tiny negative rounded) reads as zero.
  if (s.find_first_not_of("-0.") == std::string::npos) s = fmt::format("{:.{}f}", 0.0, decimals);
  return s;
}

std::string Hex(Rgb c) { return fmt::format("#{:02x}{:02x}{:02x}", c.r, c.g, c.b); }

Rgb HeatColor(double t) {
  t = std::isfinite(t) ? std::clamp(t, 0.0, 1.0) : 0.0;
  auto mix = [t](double from, double to) {
    return static_cast<uint8_t>(std::lround(from + (to - from) * t));
  };
  return {mix(255, 8), mix(255, 48), mix(255, 107)};
}

double NiceCeil(double value) {
  if (!std::isfinite(value) || value <= 0) return 1;
  const double p = std::pow(10.0, std::floor(std::log10(value)));
  for (const double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= value * (1 - 1e-12)) return m * p;
  }
  return 10 * p;
}

int Ticks(double axis) {
  if (!std::isfinite(axis) || axis <= 0) return 4;
  const double mantissa = axis / std::pow(10.0, std::floor(std::log10(axis)));
  return std::abs(mantissa - 2) < 1e-9 ? 4 : 5;
}

std::string Heatmap(const HeatmapSpec& spec) {
  const uint32_t n = std::max<uint32_t>({spec.rows, spec.cols, 1});
  const double cell = std::min(kHeatMaxCell, kHeatSide / n);
  auto value = [&](uint32_t i, uint32_t j) {
    const size_t k = static_cast<size_t>(i) * spec.cols + j;
    return k < spec.values.size() ? Clean(spec.values[k]) : 0.0;
  };
  auto name = [](const std::vector<std::string>& names, uint32_t i) {
    return i < names.size() ? names[i] : std::to_string(i);
  };
  auto row_name = [&](uint32_t i) { return name(spec.row_names, i); };
  auto col_name = [&](uint32_t j) { return name(spec.col_names, j); };
  double top = 0;
  for (uint32_t i = 0; i < spec.rows; ++i)
    for (uint32_t j = 0; j < spec.cols; ++j) top = std::max(top, value(i, j));
  const double w = cell * spec.cols, h = cell * spec.rows;
  const double legend_x = kHeatLeft + std::max(w, 120.0) + 40;
  std::string s = Open("heatmap", legend_x + 200, kHeatTop + std::max(h, 160.0) + 40, spec.title);
  for (uint32_t i = 0; i < spec.rows; ++i) {
    for (uint32_t j = 0; j < spec.cols; ++j) {
      const double v = value(i, j);
      s += fmt::format(
          "<rect class=\"cell\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>"
          "{} {} -&gt; {} {}: {}</title></rect>\n",
          Num(kHeatLeft + j * cell, 2), Num(kHeatTop + i * cell, 2), Num(cell, 2), Num(cell, 2),
          Hex(HeatColor(top > 0 ? v / top : 0)), Escape(spec.row_label), Escape(row_name(i)),
          Escape(spec.col_label), Escape(col_name(j)), Escape(spec.format(v)));
    }
  }
  s += fmt::format(
      "<rect class=\"frame\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" "
      "stroke=\"#333\"/>\n",
      Num(kHeatLeft, 2), Num(kHeatTop, 2), Num(w, 2), Num(h, 2));
  if (spec.group > 0) {
    for (uint32_t k = spec.group; k < spec.rows; k += spec.group)
      s += Line(kHeatLeft, kHeatTop + k * cell, kHeatLeft + w, kHeatTop + k * cell, "node",
                "#e6550d");
    for (uint32_t k = spec.group; k < spec.cols; k += spec.group)
      s += Line(kHeatLeft + k * cell, kHeatTop, kHeatLeft + k * cell, kHeatTop + h, "node",
                "#e6550d");
  }
  // Every index labelled while they fit (12 px apart), else every 2^k-th one.
  uint32_t step = 1;
  while (cell * step < 12) step *= 2;
  for (uint32_t i = 0; i < spec.rows; i += step)
    s += Text(kHeatLeft - 4, kHeatTop + (i + 0.5) * cell + 4, "end", row_name(i));
  for (uint32_t j = 0; j < spec.cols; j += step)
    s += Text(kHeatLeft + (j + 0.5) * cell, kHeatTop - 4, "middle", col_name(j));
  s += Text(kHeatLeft + w / 2, kHeatTop + h + 18, "middle", spec.col_label);
  s += fmt::format(
      "<text class=\"axis\" transform=\"translate({} {}) rotate(-90)\" "
      "text-anchor=\"middle\">{}</text>\n",
      Num(kHeatLeft - 40), Num(kHeatTop + h / 2), Escape(spec.row_label));
  // Colour scale: 5 swatches from 0 to the largest value.
  for (int k = 0; k <= 4; ++k) {
    const double t = (4 - k) / 4.0;
    s += fmt::format(
        "<rect class=\"scale\" x=\"{}\" y=\"{}\" width=\"16\" height=\"24\" fill=\"{}\"/>\n",
        Num(legend_x), Num(kHeatTop + 24.0 * k), Hex(HeatColor(t)));
    s += Text(legend_x + 22, kHeatTop + 24.0 * k + 16, "start", spec.format(top * t));
  }
  return s + "</svg>\n";
}

std::string BarChart(const BarChartSpec& spec) {
  double top = 0;
  for (const Bar& b : spec.bars) top = std::max(top, Clean(b.value));
  for (const RefLine& l : spec.lines) top = std::max(top, Clean(l.value));
  const double axis = NiceCeil(top);
  const double bottom = kBarTop + kBarPlotHeight;
  std::string s = Open("bars", kBarLeft + kBarPlotWidth + 100, bottom + 60, spec.title);
  s += YGrid(kBarLeft, bottom, kBarPlotWidth, kBarPlotHeight, axis, spec.format);
  const double slot = kBarPlotWidth / std::max<size_t>(spec.bars.size(), 1);
  for (size_t i = 0; i < spec.bars.size(); ++i) {
    const Bar& b = spec.bars[i];
    const double h = Clean(b.value) / axis * kBarPlotHeight;
    const double x = kBarLeft + i * slot;
    s += fmt::format(
        "<rect class=\"bar\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}: "
        "{}</title></rect>\n",
        Num(x + 0.1 * slot, 2), Num(bottom - h, 2), Num(0.8 * slot, 2), Num(h, 2), Escape(b.color),
        Escape(b.label), Escape(spec.format(b.value)));
    if (slot >= 24 || (slot >= 6 && i % static_cast<size_t>(std::ceil(24 / slot)) == 0))
      s += Text(x + slot / 2, bottom + 14, "middle", b.label);
  }
  for (const RefLine& l : spec.lines) {
    const double y = bottom - Clean(l.value) / axis * kBarPlotHeight;
    s += fmt::format(
        "<line class=\"ref\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" "
        "stroke-width=\"2\" stroke-dasharray=\"6 3\"><title>{}: {}</title></line>\n",
        Num(kBarLeft), Num(y, 2), Num(kBarLeft + kBarPlotWidth), Num(y, 2), Escape(l.color),
        Escape(l.label), Escape(spec.format(l.value)));
    s += fmt::format("<text class=\"reflabel\" x=\"{}\" y=\"{}\" fill=\"{}\">{} {}</text>\n",
                     Num(kBarLeft + kBarPlotWidth + 4), Num(y + 4), Escape(l.color),
                     Escape(l.label), Escape(spec.format(l.value)));
  }
  s += fmt::format(
      "<text class=\"axis\" transform=\"translate(16 {}) rotate(-90)\" "
      "text-anchor=\"middle\">{}</text>\n",
      Num(kBarTop + kBarPlotHeight / 2), Escape(spec.y_label));
  return s + "</svg>\n";
}

std::string HBarChart(const HBarChartSpec& spec) {
  double top = 0;
  for (const Bar& b : spec.bars) top = std::max(top, Clean(b.value));
  const double axis = NiceCeil(top);
  const double bottom = kHBarTop + kHBarRow * spec.bars.size();
  std::string s = Open("hbars", kHBarLeft + kHBarPlotWidth + 80, bottom + 60, spec.title);
  const int ticks = Ticks(axis);
  for (int k = 0; k <= ticks; ++k) {
    const double x = kHBarLeft + kHBarPlotWidth * k / ticks;
    s += Line(x, kHBarTop, x, bottom, "grid", "#ddd");
    s += Text(x, bottom + 14, "middle", spec.format(axis * k / ticks));
  }
  for (size_t i = 0; i < spec.bars.size(); ++i) {
    const Bar& b = spec.bars[i];
    const double y = kHBarTop + kHBarRow * i;
    const double len = Clean(b.value) / axis * kHBarPlotWidth;
    s += fmt::format(
        "<rect class=\"bar\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}: "
        "{}</title></rect>\n",
        Num(kHBarLeft, 2), Num(y + 3, 2), Num(len, 2), Num(kHBarRow - 6, 2), Escape(b.color),
        Escape(b.label), Escape(spec.format(b.value)));
    s += Text(kHBarLeft - 6, y + kHBarRow / 2 + 4, "end", b.label);
    s += Text(kHBarLeft + len + 4, y + kHBarRow / 2 + 4, "start", spec.format(b.value));
  }
  s += Text(kHBarLeft + kHBarPlotWidth / 2, bottom + 30, "middle", spec.x_label);
  s += Legend(kHBarLeft, bottom + 50, spec.legend);
  return s + "</svg>\n";
}

std::string Gantt(const GanttSpec& spec) {
  int64_t span = 1;
  for (const GanttBar& b : spec.bars) span = std::max(span, b.end);
  const double bottom = kGanttTop + kGanttLane * spec.lanes.size();
  std::string s = Open("gantt", kGanttLeft + kGanttPlotWidth + 30, bottom + 60, spec.title);
  auto x_of = [&](int64_t t) {
    return kGanttLeft +
           static_cast<double>(std::clamp<int64_t>(t, 0, span)) / span * kGanttPlotWidth;
  };
  for (int k = 0; k <= 4; ++k) {
    const double x = kGanttLeft + kGanttPlotWidth * k / 4;
    s += Line(x, kGanttTop, x, bottom, "grid", "#ddd");
    s += Text(x, bottom + 14, "middle", spec.format(static_cast<double>(span) * k / 4));
  }
  for (size_t k = 0; k < spec.lanes.size(); ++k)
    s +=
        Text(kGanttLeft - 6, kGanttTop + kGanttLane * k + kGanttLane / 2 + 4, "end", spec.lanes[k]);
  for (const GanttBar& b : spec.bars) {
    if (b.lane >= spec.lanes.size() || b.end <= b.start) continue;
    const double x = x_of(b.start);
    s += fmt::format(
        "<rect class=\"bar{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"{}><title>{}"
        "</title></rect>\n",
        b.critical ? " critical" : "", Num(x, 2), Num(kGanttTop + kGanttLane * b.lane + 2, 2),
        Num(x_of(b.end) - x, 2), Num(kGanttLane - 4, 2), Escape(b.color),
        b.critical ? " stroke=\"#d62728\" stroke-width=\"2\"" : "", Escape(b.label));
  }
  auto legend = spec.legend;
  legend.emplace_back("critical (red outline)", "#d62728");
  s += Legend(kGanttLeft, bottom + 40, legend);
  return s + "</svg>\n";
}

std::string Scatter(const ScatterSpec& spec) {
  double top_x = Clean(spec.x_limit), top_y = 0;
  for (const ScatterPoint& p : spec.points) {
    top_x = std::max(top_x, Clean(p.x));
    top_y = std::max(top_y, Clean(p.y));
  }
  const double ax = NiceCeil(top_x), ay = NiceCeil(top_y);
  const double bottom = kScatterTop + kScatterPlotHeight;
  auto px = [&](double x) { return kScatterLeft + Clean(x) / ax * kScatterPlotWidth; };
  auto py = [&](double y) { return bottom - Clean(y) / ay * kScatterPlotHeight; };
  std::string s = Open("scatter", kScatterLeft + kScatterPlotWidth + 100, bottom + 70, spec.title);
  const int tx = Ticks(ax);
  for (int k = 0; k <= tx; ++k) {
    const double x = kScatterLeft + kScatterPlotWidth * k / tx;
    s += Line(x, kScatterTop, x, bottom, "grid", "#ddd");
    s += Text(x, bottom + 14, "middle", spec.format_x(ax * k / tx));
  }
  s += YGrid(kScatterLeft, bottom, kScatterPlotWidth, kScatterPlotHeight, ay, spec.format_y);
  s += Text(kScatterLeft + kScatterPlotWidth / 2, bottom + 32, "middle", spec.x_label);
  s += YLabel(kScatterTop + kScatterPlotHeight / 2, spec.y_label);
  if (spec.x_limit > 0) {
    s += fmt::format(
        "<line class=\"limit\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#d62728\" "
        "stroke-dasharray=\"6 3\"/>\n",
        Num(px(spec.x_limit), 2), Num(kScatterTop), Num(bottom));
    s += Text(px(spec.x_limit) + 4, kScatterTop + 12, "start", spec.x_limit_label, "reflabel");
  }
  // The front as a line in x order, then every point.
  std::vector<const ScatterPoint*> front;
  for (const ScatterPoint& p : spec.points)
    if (p.front) front.push_back(&p);
  std::stable_sort(front.begin(), front.end(),
                   [](const ScatterPoint* a, const ScatterPoint* b) { return a->x < b->x; });
  if (front.size() > 1) {
    std::string points;
    for (const ScatterPoint* p : front) points += Num(px(p->x), 2) + "," + Num(py(p->y), 2) + " ";
    points.pop_back();
    s += fmt::format(
        "<polyline class=\"front\" points=\"{}\" fill=\"none\" stroke=\"#d62728\" "
        "stroke-width=\"1.5\"/>\n",
        points);
  }
  for (const ScatterPoint& p : spec.points) {
    const std::string color = p.ok ? "#2171b5" : "#999999";
    s += fmt::format(
        "<circle class=\"point{}\" cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\" "
        "stroke=\"{}\"><title>{}: "
        "{}, {}</title></circle>\n",
        p.front ? " front" : "", Num(px(p.x), 2), Num(py(p.y), 2), p.front ? "5" : "3.5",
        p.front ? "#d62728" : "none", p.front ? "#d62728" : color, Escape(p.label),
        Escape(spec.format_x(p.x)), Escape(spec.format_y(p.y)));
  }
  return s + "</svg>\n";
}

std::string SeriesColor(size_t i) {
  static const char* const kColors[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                        "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
  return kColors[i % 10];
}

std::string LineChart(const LineChartSpec& spec) {
  double top = 0;
  for (const LineSeries& line : spec.series)
    for (const double v : line.values) top = std::max(top, Clean(v));
  const double axis = NiceCeil(top);
  const double bottom = kLineTop + kLinePlotHeight;
  const double slot =
      kLinePlotWidth / static_cast<double>(std::max<size_t>(spec.categories.size(), 1));
  auto px = [&](size_t i) { return kLineLeft + (static_cast<double>(i) + 0.5) * slot; };
  auto py = [&](double v) { return bottom - Clean(v) / axis * kLinePlotHeight; };
  std::string s = Open("lines", kLineLeft + kLinePlotWidth + 100, bottom + 80, spec.title);
  s += YGrid(kLineLeft, bottom, kLinePlotWidth, kLinePlotHeight, axis, spec.format);
  // Every category named while the names fit (about 7 px a character), else every k-th.
  size_t longest = 1;
  for (const std::string& c : spec.categories) longest = std::max(longest, c.size());
  const size_t every = static_cast<size_t>(std::ceil(7.0 * static_cast<double>(longest) / slot));
  for (size_t i = 0; i < spec.categories.size(); i += std::max<size_t>(every, 1))
    s += Text(px(i), bottom + 14, "middle", spec.categories[i]);
  s += Text(kLineLeft + kLinePlotWidth / 2, bottom + 32, "middle", spec.x_label);
  s += YLabel(kLineTop + kLinePlotHeight / 2, spec.y_label);
  std::vector<std::pair<std::string, std::string>> legend;
  for (const LineSeries& line : spec.series) {
    // A polyline per run of values that are there (a NaN breaks the line).
    std::string points;
    size_t count = 0;
    auto flush = [&] {
      if (count >= 2) {
        points.pop_back();
        s += fmt::format(
            "<polyline class=\"line\" points=\"{}\" fill=\"none\" stroke=\"{}\" "
            "stroke-width=\"2\"/>\n",
            points, Escape(line.color));
      }
      points.clear();
      count = 0;
    };
    for (size_t i = 0; i < line.values.size() && i < spec.categories.size(); ++i) {
      if (!std::isfinite(line.values[i])) {
        flush();
        continue;
      }
      points += Num(px(i), 2) + "," + Num(py(line.values[i]), 2) + " ";
      ++count;
    }
    flush();
    for (size_t i = 0; i < line.values.size() && i < spec.categories.size(); ++i) {
      if (!std::isfinite(line.values[i])) continue;
      s += fmt::format(
          "<circle class=\"point\" cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"{}\"><title>{}{}: "
          "{}</title></circle>\n",
          Num(px(i), 2), Num(py(line.values[i]), 2), Escape(line.color),
          Escape(line.name.empty() ? "" : line.name + ", "), Escape(spec.categories[i]),
          Escape(spec.format(line.values[i])));
    }
    if (!line.name.empty()) legend.emplace_back(line.name, line.color);
  }
  s += Legend(kLineLeft, bottom + 56, legend);
  return s + "</svg>\n";
}

}  // namespace moesim::sim::html
