// The HTML report (sim/report/html_report.h) of the seed example through the command line:
// `moesim simulate --html`, `moesim report RESULT.json -o` and `moesim plan --html`, with the
// elements of each chart counted and the seed's figures worked out by hand.
//
// The seed (scenarios/seed_example.pbtxt): 4 GPUs of one DGX H100, 8 experts top-1, EP 4 with
// contiguous placement (gpu g holds experts 2g and 2g + 1), 4 tokens per GPU routed to
//   gpu0: 2 7 0 3   gpu1: 0 5 3 6   gpu2: 1 4 7 2   gpu3: 6 3 2 1
// Copies per expert: e0 2, e1 2, e2 3, e3 3, e4 1, e5 1, e6 2, e7 2 (16 in all, mean 2);
// per GPU (its two experts): 4, 6, 2, 4 (mean 4). Dispatch tokens, row = source:
//   [1 2 0 1] [1 1 1 1] [1 1 1 1] [1 2 0 1]; a token is 4096 x 2 B (BF16) = 8192 B.
#include "sim/report/html_report.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/moesim_runner.h"
#include "tests/test_helpers.h"
#include "tests/test_paths.h"

namespace moesim::testing {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The text of the <figure id="`id`"> ... </figure> of `page`, or "" when there is none.
std::string FigureOf(const std::string& page, const std::string& id) {
  const size_t at = page.find("<figure id=\"" + id + "\">");
  if (at == std::string::npos) return "";
  return page.substr(at, page.find("</figure>", at) - at);
}

TEST_CASE("simulate --html draws the seed's charts with its figures", "[html]") {
  const std::string html = TempPath("seed.html");
  const MoesimRun run =
      Moesim({"simulate", SourcePath("scenarios/seed_example.pbtxt"), "--html", html});
  REQUIRE(run.status == 0);
  const std::string page = Slurp(html);
  std::filesystem::remove(html);
  // Five charts: timeline, one dispatch heatmap, expert and GPU loads of layer 0, links.
  CHECK(Count(page, "<svg class=\"chart") == 5);
  CHECK(page.find("<script") == std::string::npos);                        // no JavaScript
  CHECK(page.find("http://") == page.find("http://www.w3.org/2000/svg"));  // nothing fetched

  const std::string heat = FigureOf(page, "dispatch-L0");
  // 4 x 4 cells of 48 px from (70, 40); the largest cell is 2 tokens = 16384 B (navy), a 1-token
  // cell is half of it (#8498b5, tests/html_svg_test.cc), a 0 white.
  CHECK(Count(heat, "<rect class=\"cell\"") == 16);
  CHECK(heat.find("x=\"118.00\" y=\"40.00\" width=\"48.00\" height=\"48.00\" fill=\"#08306b\">"
                  "<title>source GPU 0 -&gt; destination GPU 1: 16.4 kB") != std::string::npos);
  CHECK(heat.find("x=\"70.00\" y=\"40.00\" width=\"48.00\" height=\"48.00\" fill=\"#8498b5\"") !=
        std::string::npos);
  CHECK(heat.find("x=\"166.00\" y=\"40.00\" width=\"48.00\" height=\"48.00\" fill=\"#ffffff\"") !=
        std::string::npos);
  CHECK(Count(heat, "class=\"node\"") == 0);  // one node of 8 GPUs: no boundary

  const std::string experts = FigureOf(page, "experts-L0");
  CHECK(Count(experts, "<rect class=\"bar\"") == 8);
  // axis NiceCeil(3) = 5; slot 1100 / 8 = 137.5; e2's 3 copies: height 3 / 5 x 200 = 120, top
  // at 230 - 120 = 110, x = 80 + 2 x 137.5 + 13.75 = 368.75, width 110.
  CHECK(experts.find("x=\"368.75\" y=\"110.00\" width=\"110.00\" height=\"120.00\"") !=
        std::string::npos);
  // The mean, 2 copies: y = 230 - 2 / 5 x 200 = 150. No capacity factor: no capacity line.
  CHECK(experts.find("<line class=\"ref\" x1=\"80.0\" y1=\"150.00\"") != std::string::npos);
  CHECK(Count(experts, "<line class=\"ref\"") == 1);

  const std::string gpus = FigureOf(page, "gpus-L0");
  // axis NiceCeil(6) = 10; slot 1100 / 4 = 275; gpu1's 6 copies: height 120, top at 110, at
  // x = 80 + 275 + 0.1 x 275 = 382.5, width 0.8 x 275 = 220.
  CHECK(Count(gpus, "<rect class=\"bar\"") == 4);
  CHECK(gpus.find("x=\"382.50\" y=\"110.00\" width=\"220.00\" height=\"120.00\"") !=
        std::string::npos);

  // Gantt: 4 phases x 4 GPUs, each GPU busy in each, + the critical path's 4 steps (one layer:
  // router, dispatch, expert, combine); outlined: each phase's slowest GPU and the path.
  const std::string timeline = FigureOf(page, "timeline");
  CHECK(Count(timeline, "<rect class=\"bar") == 16 + 4);
  CHECK(Count(timeline, "<rect class=\"bar critical\"") == 4 + 4);
  CHECK(timeline.find(">critical path</text>") != std::string::npos);

  // Links: the busiest of dispatch and combine, every one a row of the table, at most 16 bars.
  const std::string links = FigureOf(page, "links");
  const size_t table_at = page.find("<table id=\"link-table\">");
  const std::string table = page.substr(table_at, page.find("</table>", table_at) - table_at);
  const size_t link_rows = Count(table, "<tr><td>0</td>");
  // Each all-to-all keeps its 5 busiest links (Phase.busiest_links): 2 x 5 rows and 10 bars.
  CHECK(link_rows == 10);
  CHECK(Count(links, "<rect class=\"bar\"") == 10);
  CHECK(links.find("nvlink") != std::string::npos);
}

TEST_CASE("moesim report draws the same page from the Result's JSON", "[html]") {
  const std::string direct = TempPath("direct.html"), json = TempPath("seed.json"),
                    again = TempPath("again.html");
  const MoesimRun sim =
      Moesim({"simulate", SourcePath("scenarios/seed_example.pbtxt"), "--json", "--html", direct});
  REQUIRE(sim.status == 0);
  std::ofstream(json) << sim.out;
  const MoesimRun report = Moesim({"report", json, "-o", again});
  CHECK(report.status == 0);
  CHECK(Slurp(again) == Slurp(direct));  // bit for bit
  CHECK(Slurp(again).size() > 10000);
  for (const std::string& p : {direct, json, again}) std::filesystem::remove(p);
}

TEST_CASE("moesim report refuses what is not a Result and writes nothing", "[html]") {
  const std::string out = TempPath("bad.html");
  const MoesimRun run =
      Moesim({"report", SourcePath("scenarios/seed_example.pbtxt") + "", "-o", out});
  CHECK(run.status == 1);
  CHECK(run.err.find("not a Result (proto/result.proto)") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(out));
  const MoesimRun missing = Moesim({"report", TempPath("none.json"), "-o", out});
  CHECK(missing.status == 1);
  CHECK_FALSE(std::filesystem::exists(out));
}

TEST_CASE("moesim report draws a ragged, overflowing Result without reading past it", "[html]") {
  // Phase times that overflow int64 when added, a send matrix whose rows are shorter than it is
  // tall, per-GPU times for more GPUs than the Result has, a negative cell: drawn, clamped.
  const std::string json = TempPath("odd.json"), out = TempPath("odd.html");
  std::ofstream(json) << R"({"scenario": "odd <b>", "gpus": 2, "totalNs": "9223372036854775807",
    "phases": [{"name": "dispatch", "timeNs": "9223372036854775000",
                "rankTimeNs": ["9223372036854775807", "5", "7"]},
               {"name": "combine", "timeNs": "9223372036854775807", "criticalRank": 9}],
    "sendMatrices": [{"phase": "dispatch", "bytes": [[1], [-4, 3, 99]]}]})";
  const MoesimRun run = Moesim({"report", json, "-o", out});
  CHECK(run.status == 0);
  const std::string page = Slurp(out);
  CHECK(page.find("odd &lt;b&gt;") != std::string::npos);  // the name escaped
  // No gpus_per_node, no expert_loads: said, not drawn as "0 per node" or empty charts.
  CHECK(page.find("per node") == std::string::npos);
  CHECK(page.find("Not in this Result") != std::string::npos);
  // 2 x 2 cells (rows define the size: [1, 0], [0, 3]: -4 counts as 0, 99 lies outside).
  CHECK(Count(FigureOf(page, "dispatch-L0"), "<rect class=\"cell\"") == 4);
  // Lanes gpu0 and gpu1 only: two dispatch bars (the third time has no GPU), and the combine,
  // without per-GPU times, on lane 0 (its critical rank 9 is not a GPU here), from 2^63 - 808 ns
  // to int64's largest (the sum held there).
  CHECK(Count(FigureOf(page, "timeline"), "<rect class=\"bar") == 3);
  for (const std::string& p : {json, out}) std::filesystem::remove(p);
}

TEST_CASE("simulate --html draws a step: its pipeline, one micro-batch by op, the memory",
          "[html]") {
  // Mixtral-8x7B on 64 H100, PP 4, DP 16, global batch 256 of micro-batch 1: 16 micro-batches a
  // pipeline, 4 stages x 16 x (F + B) = 128 bars, and on each stage the exposed gradient
  // reduction and the optimizer when they take time (read from --json, as the page draws them).
  const std::string out = TempPath("step.html");
  const std::string scenario = SourcePath("scenarios/mixtral-8x7b-h100-64.pbtxt");
  const MoesimRun run = Moesim({"simulate", scenario, "--html", out});
  REQUIRE(run.status == 0);
  const MoesimRun printed = Moesim({"simulate", scenario, "--json"});
  REQUIRE(printed.status == 0);
  const nlohmann::json step = nlohmann::json::parse(printed.out);
  const uint32_t stages = static_cast<uint32_t>(step.at("stageForwardNs").size());
  const uint32_t m = step.at("microBatches").get<uint32_t>();
  const bool grad = std::stoll(step.value("gradSyncExposedNs", std::string("0"))) > 0;
  const bool opt = std::stoll(step.value("optimizerNs", std::string("0"))) > 0;
  const std::string page = Slurp(out);
  std::filesystem::remove(out);
  const std::string pipeline = FigureOf(page, "pipeline");
  CHECK(stages == 4);
  CHECK(Count(pipeline, "<rect class=\"bar") == stages * (2 * m + (grad ? 1 : 0) + (opt ? 1 : 0)));
  // The slowest stage's forwards and backwards are outlined: 2m of them.
  CHECK(Count(pipeline, "<rect class=\"bar critical\"") == 2 * m);
  // One bar per (pass, op) of the report's "by op" table, and the memory's parts.
  CHECK(Count(FigureOf(page, "ops"), "<rect class=\"bar") > 10);
  CHECK(Count(FigureOf(page, "memory"), "<rect class=\"bar") >= 6);
  CHECK(page.find("<table id=\"step-table\">") != std::string::npos);
  CHECK(m == 16);
  CHECK(page.find("pipeline: 4 stages x 16 micro-batches") != std::string::npos);
}

TEST_CASE("plan --html marks the Pareto front of step time and memory", "[html]") {
  const std::string html = TempPath("plan.html");
  const MoesimRun run = Moesim({"plan", "--model", "mixtral-8x7b", "--gpus", "16", "--global-batch",
                                "64", "--seq-len", "1024", "--html", html});
  REQUIRE(run.status == 0);
  const std::string page = Slurp(html);
  std::filesystem::remove(html);
  const std::string plans = FigureOf(page, "plans");
  // Every candidate is a point; the fastest fitting plan (row 1, ranked first) is always on the
  // front, so the front has at least one point and the table marks row 1.
  const size_t points = Count(plans, "<circle class=\"point");
  CHECK(points >= 2);
  CHECK(Count(plans, "<circle class=\"point front\"") >= 1);
  CHECK(page.find("<tr><td>1</td>") != std::string::npos);
  CHECK(page.find("<td>yes</td><td>yes</td></tr>") != std::string::npos);
}

TEST_CASE("plan --html lists the refused plans with their rule", "[html]") {
  // tiny-moe-4heads on 8 GPUs: the 32 tp8 plans are refused (plan_command_test.cc works the count).
  const std::string html = TempPath("plan-refused.html");
  const MoesimRun run =
      Moesim({"plan", "--model", SourcePath("tests/fixtures/models/tiny-moe-4heads.pbtxt"),
              "--gpus", "8", "--global-batch", "32", "--seq-len", "512", "--html", html});
  REQUIRE(run.status == 0);
  const std::string page = Slurp(html);
  std::filesystem::remove(html);
  const size_t table = page.find("<table id=\"refused-table\">");
  REQUIRE(table != std::string::npos);
  // One header row and one row per refused plan.
  CHECK(Count(page.substr(table, page.find("</table>", table) - table), "<tr>") == 33);
  CHECK(page.find("<tr><td class=\"l\">tp8 pp1 ep1 dp1 mb1</td><td class=\"l\">plan.tp = 8: "
                  "does not divide the model&#39;s 4 attention heads") != std::string::npos);
}

}  // namespace
}  // namespace moesim::testing

namespace moesim::testing {

TEST_CASE("HtmlValidationPage: per op, measured beside predicted, each with its error", "[html]") {
  // Two expert rows and one dispatch row, with a profile: per row three bars (measured, profile,
  // datasheet), so 6 in the expert chart and 3 in the dispatch one. Errors: (110 - 100) / 100 =
  // +10.0 %, (45 - 50) / 50 = -10.0 %.
  pb::ValidationReport v;
  v.set_hardware("cpu <2 ranks>");
  auto row = [&](const char* op, uint32_t layer, int64_t measured, int64_t predicted) {
    pb::ValidationRow* r = v.add_rows();
    r->set_scenario("s.pbtxt");
    r->set_op(op);
    r->set_layer(layer);
    r->set_measured_ns(measured);
    r->set_predicted_ns(predicted);
    r->set_relative_error(static_cast<double>(predicted - measured) / measured);
    r->set_datasheet_ns(1);
    r->set_datasheet_relative_error(1.0 / measured - 1);
  };
  row("expert", 0, 100, 110);
  row("dispatch", 0, 50, 45);
  row("expert", 1, 100, 100);
  pb::ValidationSummary* all = v.add_summaries();
  all->set_op("all");
  all->set_rows(3);
  all->set_median_abs_error(0.1);
  const std::string page = sim::HtmlValidationPage(v);
  CHECK(Count(FigureOf(page, "op-expert"), "<rect class=\"bar\"") == 6);
  CHECK(Count(FigureOf(page, "op-dispatch"), "<rect class=\"bar\"") == 3);
  CHECK(page.find("s.pbtxt L0 profile +10.0 %") != std::string::npos);
  CHECK(page.find("s.pbtxt L0 profile -10.0 %") != std::string::npos);
  CHECK(page.find("profile cpu &lt;2 ranks&gt;") != std::string::npos);  // escaped
  // The summary and the rows as tables: 1 summary row, 3 rows.
  CHECK(Count(page, "<td class=\"l\">all</td>") == 1);
  CHECK(Count(page, "<td class=\"l\">s.pbtxt</td>") == 3);
  // Without a profile: two bars a row, the prediction labelled as the datasheet's.
  v.clear_hardware();
  const std::string datasheet = sim::HtmlValidationPage(v);
  CHECK(Count(FigureOf(datasheet, "op-expert"), "<rect class=\"bar\"") == 4);
  CHECK(datasheet.find("predicted (datasheet)") != std::string::npos);
}

TEST_CASE("moesim validate --html writes the page of the held-out Zipf run", "[html]") {
  const std::string out = TempPath("validate.html");
  const MoesimRun run =
      Moesim({"validate", SourcePath("scenarios/calibration/heldout/zipf1.2-t384.pbtxt"),
              "--measured", SourcePath("results/calibration/heldout/zipf1.2-t384.pb"), "--hardware",
              SourcePath("results/calibration/cpu-profile.pbtxt"), "--html", out});
  REQUIRE(run.status == 0);
  const std::string page = Slurp(out);
  std::filesystem::remove(out);
  // One layer, six ops (router, dispatch, expert, combine, collectives, step): six charts of 3
  // bars.
  for (const char* op : {"router", "dispatch", "expert", "combine", "collectives", "step"}) {
    INFO(op);
    CHECK(Count(FigureOf(page, std::string("op-") + op), "<rect class=\"bar\"") == 3);
  }
}

}  // namespace moesim::testing
