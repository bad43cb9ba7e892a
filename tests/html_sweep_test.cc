// The sweep page (sim/report/html_sweep.cc): which charts a sweep of one or two fields gets, their
// points worked out by hand from html_svg.h's layout, and failed points in the table.
#include <catch2/catch.hpp>
#include <string>

#include "sim/report/html_report.h"

namespace moesim::sim {
namespace {

size_t SweepPageCount(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

pb::SweepTable SweepPageTable(const std::vector<std::vector<std::string>>& fields) {
  pb::SweepTable t;
  t.set_name("n");
  t.set_kind("layers");
  for (size_t k = 0; k < fields.size(); ++k) {
    pb::SweepField* f = t.add_fields();
    f->set_path(std::string(1, static_cast<char>('a' + k)));
    for (const std::string& v : fields[k]) f->add_values(v);
  }
  t.add_components("dispatch");
  return t;
}

void AddSweepPageRow(pb::SweepTable& t, std::vector<std::string> values, int64_t total_ns,
                     const std::string& error = "") {
  pb::SweepRow* r = t.add_rows();
  r->set_index(static_cast<uint32_t>(t.rows_size() - 1));
  for (std::string& v : values) r->add_values(std::move(v));
  r->set_error(error);
  if (!error.empty()) return;
  r->set_total_ns(total_ns);
  pb::SweepComponent* c = r->add_components();
  c->set_name("dispatch");
  c->set_time_ns(total_ns / 2);
}

}  // namespace

TEST_CASE("A sweep of one field: the total and the components as lines, failures in the table",
          "[html]") {
  pb::SweepTable t = SweepPageTable({{"1", "2", "3"}});
  AddSweepPageRow(t, {"1"}, 1'000'000);  // 1 ms
  AddSweepPageRow(t, {"2"}, 2'000'000);  // 2 ms
  AddSweepPageRow(t, {"3"}, 0, "--set a=3: bad");
  t.set_failed(1);
  const std::string page = HtmlSweepPage(t);
  CHECK(page.find("<figure id=\"sweep-total\">") != std::string::npos);
  CHECK(page.find("<figure id=\"sweep-components\">") != std::string::npos);
  CHECK(page.find("<figure id=\"sweep-heatmap\">") == std::string::npos);
  // 3 categories: x = 80 + (i + 0.5) x 1000 / 3 = 246.67, 580.00; axis NiceCeil(2 ms) = 2, so
  // y(1 ms) = 330 - 1 / 2 x 300 = 180 and y(2 ms) = 30. The failed point is no dot and ends the
  // line.
  CHECK(page.find("points=\"246.67,180.00 580.00,30.00\"") != std::string::npos);
  // Components: dispatch 0.5 and 1 ms on an axis of 1: y = 330 - 0.5 x 300 = 180, and 30.
  CHECK(SweepPageCount(page, "<polyline class=\"line\"") == 2);
  CHECK(SweepPageCount(page, "<circle class=\"point\"") == 4);
  // The failed row: its values, then its error across the other columns (total, change, the one
  // component, bottleneck).
  CHECK(page.find("<td class=\"l\">3</td><td class=\"l\" colspan=\"4\">--set a=3: bad</td>") !=
        std::string::npos);
}

TEST_CASE("A sweep of two fields: a heatmap, and lines while the second has at most 10 values",
          "[html]") {
  pb::SweepTable small = SweepPageTable({{"x", "y"}, {"p", "q"}});
  for (const auto& [a, b] : {std::pair{"x", "p"}, {"x", "q"}, {"y", "p"}, {"y", "q"}})
    AddSweepPageRow(small, {a, b}, 1'000'000);
  const std::string page = HtmlSweepPage(small);
  CHECK(SweepPageCount(page, "<rect class=\"cell\"") == 4);
  // Tooltips name the values, the first field down and the second across.
  CHECK(page.find("<title>a y -&gt; b q: 1.000</title>") != std::string::npos);
  CHECK(page.find("<figure id=\"sweep-lines\">") != std::string::npos);
  CHECK(page.find(">b = q</text>") != std::string::npos);  // a legend entry per value of b
  // 11 values across: the heatmap only.
  std::vector<std::string> eleven;
  for (int i = 0; i < 11; ++i) eleven.push_back(std::to_string(i));
  pb::SweepTable wide = SweepPageTable({{"x"}, eleven});
  for (const std::string& v : eleven) AddSweepPageRow(wide, {"x", v}, 1'000'000);
  const std::string wide_page = HtmlSweepPage(wide);
  CHECK(SweepPageCount(wide_page, "<rect class=\"cell\"") == 11);
  CHECK(wide_page.find("<figure id=\"sweep-lines\">") == std::string::npos);
}

}  // namespace moesim::sim
