// The SVG pieces of the HTML report (sim/report/html_svg.h), with coordinates and colours worked
// out by hand from the layout constants.
#include "sim/report/html_svg.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <string>

#include "test_helpers.h"

namespace moesim::sim::html {
namespace {

using moesim::testing::Count;

TEST_CASE("Escape makes caller text safe in XML", "[html]") {
  CHECK(Escape("a<b & \"c\" 'd'>") == "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
  // A control byte (0x01) is not allowed in XML 1.0: U+FFFD; tab and newline stay.
  CHECK(Escape(std::string("x\x01y\tz\n")) == "x\xEF\xBF\xBDy\tz\n");
}

TEST_CASE("Num prints a fixed number of decimals and never -0", "[html]") {
  CHECK(Num(12.5, 2) == "12.50");
  CHECK(Num(2.26, 1) == "2.3");
  CHECK(Num(-0.01, 1) == "0.0");
  CHECK(Num(1.0 / 0.0, 1) == "0");
}

TEST_CASE("HeatColor runs from white to navy, each channel linear", "[html]") {
  CHECK(HeatColor(0) == Rgb{255, 255, 255});
  CHECK(HeatColor(1) == Rgb{8, 48, 107});
  // t = 0.5: 255 + (8 - 255) / 2 = 131.5 -> 132 (0x84); 255 - 207 / 2 = 151.5 -> 152 (0x98);
  // 255 - 148 / 2 = 181 (0xb5).
  CHECK(Hex(HeatColor(0.5)) == "#8498b5");
  CHECK(HeatColor(7) == HeatColor(1));  // clamped
}

TEST_CASE("NiceCeil rounds an axis up to 1, 2 or 5 x 10^k", "[html]") {
  CHECK(NiceCeil(3) == 5);
  CHECK(NiceCeil(6) == 10);
  CHECK(NiceCeil(16384) == 20000);
  CHECK(NiceCeil(0.3) == Approx(0.5));
  CHECK(NiceCeil(200) == 200);
  CHECK(NiceCeil(0) == 1);
  // Round ticks: 5 -> 1 2 3 4 5; 20 -> 5 10 15 20; 100 -> 20 40 60 80 100.
  CHECK(Ticks(5) == 5);
  CHECK(Ticks(20) == 4);
  CHECK(Ticks(100) == 5);
}

TEST_CASE("A 2x2 heatmap's cells: positions, sizes and colours", "[html]") {
  HeatmapSpec h;
  h.title = "t";
  h.rows = h.cols = 2;
  h.values = {0, 10, 5, 10};
  h.group = 1;
  const std::string svg = Heatmap(h);
  // cell = min(48, 480 / 2) = 48; cell (i, j) at (70 + 48 j, 40 + 48 i); largest value 10.
  CHECK(Count(svg, "<rect class=\"cell\"") == 4);
  CHECK(svg.find("x=\"70.00\" y=\"40.00\" width=\"48.00\" height=\"48.00\" fill=\"#ffffff\"") !=
        std::string::npos);  // (0, 0) = 0
  CHECK(svg.find("x=\"118.00\" y=\"40.00\" width=\"48.00\" height=\"48.00\" fill=\"#08306b\"") !=
        std::string::npos);  // (0, 1) = 10, the largest
  CHECK(svg.find("x=\"70.00\" y=\"88.00\" width=\"48.00\" height=\"48.00\" fill=\"#8498b5\"") !=
        std::string::npos);  // (1, 0) = 5: t = 0.5
  // group 1: one boundary after row 0 (y = 88) and one after column 0 (x = 118), across the 96 px.
  CHECK(Count(svg, "class=\"node\"") == 2);
  CHECK(svg.find("<line class=\"node\" x1=\"70.0\" y1=\"88.0\" x2=\"166.0\" y2=\"88.0\"") !=
        std::string::npos);
}

TEST_CASE("A heatmap tolerates missing and bad values", "[html]") {
  HeatmapSpec h;
  h.rows = h.cols = 2;
  h.values = {-3, 1.0 / 0.0};  // two of four cells, both bad: every cell white
  const std::string svg = Heatmap(h);
  CHECK(Count(svg, "fill=\"#ffffff\"><title>") == 4);
}

TEST_CASE("Bar heights follow value over the axis maximum", "[html]") {
  BarChartSpec b;
  b.bars = {{"a", 30}, {"b", 60}};
  b.lines = {{"mean", 45}};
  const std::string svg = BarChart(b);
  // axis = NiceCeil(60) = 100; slot = 1100 / 2 = 550, bar width 0.8 x 550 = 440 at x = 80 + 55.
  // a: height 30 / 100 x 200 = 60, top at 30 + 200 - 60 = 170. b: height 120, top at 110.
  CHECK(svg.find("x=\"135.00\" y=\"170.00\" width=\"440.00\" height=\"60.00\"") !=
        std::string::npos);
  CHECK(svg.find("x=\"685.00\" y=\"110.00\" width=\"440.00\" height=\"120.00\"") !=
        std::string::npos);
  // mean 45: y = 230 - 45 / 100 x 200 = 140, across the plot from x = 80 to 1180.
  CHECK(svg.find("<line class=\"ref\" x1=\"80.0\" y1=\"140.00\" x2=\"1180.0\" y2=\"140.00\"") !=
        std::string::npos);
}

TEST_CASE("Horizontal bars and their axis", "[html]") {
  HBarChartSpec h;
  h.bars = {{"l0", 80}, {"l1", 40}};
  const std::string svg = HBarChart(h);
  // axis = NiceCeil(80) = 100; l0: 80 / 100 x 700 = 560 long at y = 30 + 3; l1: 280 at y = 55.
  CHECK(svg.find("x=\"420.00\" y=\"33.00\" width=\"560.00\" height=\"16.00\"") !=
        std::string::npos);
  CHECK(svg.find("x=\"420.00\" y=\"55.00\" width=\"280.00\" height=\"16.00\"") !=
        std::string::npos);
}

TEST_CASE("Gantt bars: position from start over the span, critical ones outlined", "[html]") {
  GanttSpec g;
  g.lanes = {"gpu0", "gpu1"};
  g.bars = {{0, 0, 250, "#111111", "a", false},
            {1, 250, 1000, "#222222", "b", true},
            {5, 0, 10, "#333333", "no such lane", false}};
  const std::string svg = Gantt(g);
  // span 1000: a from x = 110 to 110 + 0.25 x 1040 = 370 (width 260) on lane 0 (y = 30 + 2);
  // b from 370 to 1150 (width 780) on lane 1 (y = 48 + 2); the bar of lane 5 is not drawn.
  CHECK(
      svg.find("<rect class=\"bar\" x=\"110.00\" y=\"32.00\" width=\"260.00\" height=\"14.00\"") !=
      std::string::npos);
  CHECK(svg.find("<rect class=\"bar critical\" x=\"370.00\" y=\"50.00\" width=\"780.00\"") !=
        std::string::npos);
  CHECK(Count(svg, "<rect class=\"bar") == 2);
}

TEST_CASE("Scatter: points placed on nice axes, the front joined in x order", "[html]") {
  ScatterSpec s;
  s.points = {{40, 100, "b", true}, {20, 200, "a", true}, {60, 150, "c", false}};
  const std::string svg = Scatter(s);
  // x axis NiceCeil(60) = 100, y axis NiceCeil(200) = 200: (20, 200) at (80 + 200, 30) ...
  CHECK(svg.find("<polyline class=\"front\" points=\"280.00,30.00 480.00,210.00\"") !=
        std::string::npos);
  // ... (60, 150) hollow at (680, 30 + 360 x 0.25 = 120).
  CHECK(svg.find("<circle class=\"point\" cx=\"680.00\" cy=\"120.00\" r=\"3.5\" fill=\"none\"") !=
        std::string::npos);
  CHECK(Count(svg, "<circle class=\"point front\"") == 2);
}

TEST_CASE("Chart titles are escaped", "[html]") {
  BarChartSpec b;
  b.title = "<script>";
  CHECK(BarChart(b).find("<script>") == std::string::npos);
  CHECK(BarChart(b).find("&lt;script&gt;") != std::string::npos);
}

}  // namespace
}  // namespace moesim::sim::html

namespace moesim::sim::html {

TEST_CASE("A heatmap names its rows and columns when given names", "[html]") {
  HeatmapSpec h;
  h.rows = 1;
  h.cols = 2;
  h.values = {1, 2};
  h.row_label = "ep";
  h.col_label = "NIC";
  h.row_names = {"8"};
  h.col_names = {"200", "400"};
  const std::string svg = Heatmap(h);
  // Cell (0, 1) at x = 70 + 48: its tooltip and the column's label say "400", not "1".
  CHECK(svg.find("<title>ep 8 -&gt; NIC 400: 2</title>") != std::string::npos);
  CHECK(svg.find("text-anchor=\"middle\">400</text>") != std::string::npos);
}

TEST_CASE("A line chart over categories: positions worked out by hand", "[html]") {
  LineChartSpec c;
  c.title = "t";
  c.categories = {"a", "b", "c"};
  c.series = {{"s", {10, 20, 5}, "#123456"}, {"gap", {4, std::nan(""), 8}, "#654321"}};
  const std::string svg = LineChart(c);
  // slot = 1000 / 3 = 333.33; category i at x = 80 + (i + 0.5) x slot = 246.67, 580.00, 913.33.
  // axis = NiceCeil(20) = 20, bottom = 30 + 300 = 330: y(v) = 330 - v / 20 x 300, so y(10) =
  // 180, y(20) = 30, y(5) = 255.
  CHECK(svg.find("<polyline class=\"line\" points=\"246.67,180.00 580.00,30.00 913.33,255.00\" "
                 "fill=\"none\" stroke=\"#123456\"") != std::string::npos);
  // The NaN breaks the second series into two single points: dots, no line.
  CHECK(Count(svg, "<polyline") == 1);
  CHECK(Count(svg, "<circle class=\"point\"") == 5);
  CHECK(svg.find("<title>gap, c: 8</title>") != std::string::npos);
  // 20 = 2 x 10^1: 4 ticks of 5 (Ticks), the top one at y = 30.
  CHECK(Count(svg, "class=\"grid\"") == 5);
  CHECK(svg.find(">s</text>") != std::string::npos);  // the legend
}

}  // namespace moesim::sim::html
