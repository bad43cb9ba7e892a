// Small SVG charts for the HTML report (sim/report/html_report.h): a heatmap with a colour scale,
// a bar chart with reference lines, horizontal bars, Gantt lanes and a scatter with a marked
// front. Each returns one <svg> element as text; no JavaScript, tooltips are SVG <title>s.
//
//   HeatmapSpec h{.title = "layer 0 dispatch", .rows = 2, .cols = 2, .values = {0, 10, 5, 10}};
//   std::string svg = Heatmap(h);
//
// Invariants: every piece of text from the caller is XML-escaped; numbers are printed with a
// fixed number of decimals (Num), so the same input gives the same bytes. Values that are not
// finite or negative count as 0. Not thread-unsafe: plain functions of their arguments.
//
// Coordinates (pixels, SVG user units = CSS px at 100 % zoom) are laid out by the constants
// below so that a test can work them out by hand.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace moesim::sim::html {

// & < > " ' as entities; bytes that are not valid in XML 1.0 (controls other than \t \n \r)
// become U+FFFD, so the page always parses.
std::string Escape(std::string_view text);
// `value` with `decimals` digits after the point ("12.50"), "0" for non-finite values.
std::string Num(double value, int decimals = 1);

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};
std::string Hex(Rgb c);  // "#08306b"
// The heatmap's scale: t = 0 white (#ffffff), t = 1 navy (#08306b), each channel linear in t and
// rounded half away from zero; t is clamped to [0, 1].
Rgb HeatColor(double t);
// The smallest of 1, 2, 5 x 10^k at or above `value` (an axis maximum); 1 for value <= 0.
double NiceCeil(double value);
// How many equal steps an axis from 0 to NiceCeil's `axis` is cut into, so that every tick is a
// round number: 1 x 10^k and 5 x 10^k in 5 (0.2 or 1 x 10^k each), 2 x 10^k in 4 (0.5 x 10^k).
int Ticks(double axis);

// Heatmap: cell (i, j) at x = kHeatLeft + j * cell, y = kHeatTop + i * cell, where cell =
// min(kHeatMaxCell, kHeatSide / max(rows, cols)); colour HeatColor(value / largest value). With
// `group` > 0, a line after every `group` rows and columns (node boundaries).
inline constexpr double kHeatLeft = 70, kHeatTop = 40, kHeatSide = 480, kHeatMaxCell = 48;
struct HeatmapSpec {
  std::string title;
  uint32_t rows = 0, cols = 0;
  std::vector<double> values;  // row-major, rows x cols (missing cells count as 0)
  uint32_t group = 0;
  std::string row_label = "source GPU", col_label = "destination GPU";
  // Names of the rows and columns on the axes and in tooltips; empty: their indices.
  std::vector<std::string> row_names, col_names;
  // The text of a value in tooltips and the legend.
  std::function<std::string(double)> format = [](double v) { return Num(v, 0); };
};
std::string Heatmap(const HeatmapSpec& spec);

// Vertical bars: bar i at x = kBarLeft + i * slot (slot = kBarPlotWidth / bars), width 0.8 x
// slot, height value / axis x kBarPlotHeight where axis = NiceCeil(largest bar or line), bottom
// at kBarTop + kBarPlotHeight. Reference lines (mean, capacity) are horizontal across the plot.
inline constexpr double kBarLeft = 80, kBarTop = 30, kBarPlotWidth = 1100, kBarPlotHeight = 200;
struct Bar {
  std::string label;  // under the bar when there is room, and in its tooltip
  double value = 0;
  std::string color = "#4292c6";
};
struct RefLine {
  std::string label;
  double value = 0;
  std::string color = "#d62728";
};
struct BarChartSpec {
  std::string title;
  std::string y_label;
  std::vector<Bar> bars;
  std::vector<RefLine> lines;
  std::function<std::string(double)> format = [](double v) { return Num(v, 0); };
};
std::string BarChart(const BarChartSpec& spec);

// Horizontal bars (long labels, e.g. links): bar i at y = kHBarTop + i * kHBarRow, from x =
// kHBarLeft, length value / axis x kHBarPlotWidth, axis = NiceCeil(largest value).
inline constexpr double kHBarLeft = 420, kHBarTop = 30, kHBarRow = 22, kHBarPlotWidth = 700;
struct HBarChartSpec {
  std::string title;
  std::string x_label;
  std::vector<Bar> bars;
  std::vector<std::pair<std::string, std::string>> legend;  // (name, colour)
  std::function<std::string(double)> format = [](double v) { return Num(v, 0); };
};
std::string HBarChart(const HBarChartSpec& spec);

// Gantt lanes: lane k at y = kGanttTop + k * kGanttLane; a bar from start to end at x =
// kGanttLeft + start / span x kGanttPlotWidth (span = the largest end). Critical bars are drawn
// with a thick red outline (class "bar critical").
inline constexpr double kGanttLeft = 110, kGanttTop = 30, kGanttLane = 18, kGanttPlotWidth = 1040;
struct GanttBar {
  uint32_t lane = 0;
  int64_t start = 0, end = 0;  // any integer time unit; the axis shows format(value)
  std::string color;
  std::string label;  // tooltip
  bool critical = false;
};
struct GanttSpec {
  std::string title;
  std::vector<std::string> lanes;
  std::vector<GanttBar> bars;
  std::vector<std::pair<std::string, std::string>> legend;  // (name, colour)
  std::function<std::string(double)> format = [](double v) { return Num(v, 0); };
};
std::string Gantt(const GanttSpec& spec);

// Scatter: point at x = kScatterLeft + x / x_axis x kScatterPlotWidth, y = kScatterTop +
// kScatterPlotHeight x (1 - y / y_axis), axes NiceCeil of the largest x and y (and x_limit).
// Points on the front are filled and joined by a line in x order; the others are hollow.
inline constexpr double kScatterLeft = 80, kScatterTop = 30, kScatterPlotWidth = 1000,
                        kScatterPlotHeight = 360;
struct ScatterPoint {
  double x = 0, y = 0;
  std::string label;
  bool front = false;
  bool ok = true;  // false: drawn grey (e.g. does not fit in memory)
};
struct ScatterSpec {
  std::string title, x_label, y_label;
  std::vector<ScatterPoint> points;
  double x_limit = 0;  // > 0: a dashed vertical line (e.g. the GPU's memory)
  std::string x_limit_label;
  std::function<std::string(double)> format_x = [](double v) { return Num(v, 0); };
  std::function<std::string(double)> format_y = [](double v) { return Num(v, 0); };
};
std::string Scatter(const ScatterSpec& spec);

// Lines over categories (a swept field's values, equally spaced whatever they are): category i at
// x = kLineLeft + (i + 0.5) x kLinePlotWidth / categories, value y = kLineTop + kLinePlotHeight x
// (1 - value / axis), axis = NiceCeil(largest value). One polyline per series, a dot per value; a
// series' missing values (NaN) break its line.
inline constexpr double kLineLeft = 80, kLineTop = 30, kLinePlotWidth = 1000, kLinePlotHeight = 300;
struct LineSeries {
  std::string name;            // in the legend and the tooltips
  std::vector<double> values;  // one per category
  std::string color = "#2171b5";
};
struct LineChartSpec {
  std::string title, x_label, y_label;
  std::vector<std::string> categories;
  std::vector<LineSeries> series;
  std::function<std::string(double)> format = [](double v) { return Num(v, 0); };
};
std::string LineChart(const LineChartSpec& spec);
// The i-th of ten distinct colours (Tableau's), for series and legends.
std::string SeriesColor(size_t i);

}  // namespace moesim::sim::html
