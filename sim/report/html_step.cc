// `moesim simulate --html` for a scenario with a step block (html_report.h): the step's figures,
// the pipeline as 1F1B lays it out, one micro-batch of the slowest stage by op, and the memory of
// the fullest GPU. Drawn from the StepResult alone, as `--json` prints it.
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "sim/report/html_report.h"
#include "sim/report/html_svg.h"
#include "sim/report/report.h"
#include "sim/step/step_report.h"

namespace moesim::sim {
namespace {

using html::Escape;
using html::Num;

// Forward blue, backward orange (ColorBrewer's Paired), the step's tail grey and purple.
constexpr const char* kForwardColor = "#4292c6";
constexpr const char* kBackwardColor = "#fd8d3c";
constexpr const char* kGradColor = "#969696";
constexpr const char* kOptimizerColor = "#756bb1";
constexpr const char* kCommColor = "#e6550d";
constexpr const char* kComputeColor = "#31a354";

std::string StepFormatNs(double v) { return FormatNs(static_cast<int64_t>(v)); }

std::string StepSummary(const pb::StepResult& r) {
  std::string s = "<h2>Step</h2>\n<table id=\"step-table\">\n";
  auto row = [&](const std::string& name, const std::string& value, const std::string& note) {
    s += fmt::format("<tr><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td></tr>\n",
                     Escape(name), Escape(value), Escape(note));
  };
  row("step", FormatNs(r.step_ns()),
      fmt::format("MFU {} % ({} peak), {} tokens/s", Num(100 * r.mfu(), 1), r.mfu_dtype(),
                  Num(r.tokens_per_second(), 0)));
  row("pipeline", FormatNs(r.pipeline_ns()),
      fmt::format("{}, {} micro-batches, bubble {} = {}", r.schedule(), r.micro_batches(),
                  FormatNs(r.bubble_ns()), r.bubble_formula()));
  row("one micro-batch", FormatNs(r.forward_ns()),
      fmt::format("forward on stage {}; backward {}", r.slowest_stage(),
                  FormatNs(r.backward_ns())));
  row("EP all-to-all", FormatNs(r.alltoall_ns()),
      fmt::format("{} % of the step, {} per micro-batch", Num(100 * r.alltoall_share(), 1),
                  r.alltoalls_per_micro_batch()));
  if (r.mode() == "training") {
    row("gradient reduction", FormatNs(r.grad_sync_ns()),
        "exposed " + FormatNs(r.grad_sync_exposed_ns()));
    row("optimizer", FormatNs(r.optimizer_ns()), "");
  }
  row("exposed communication", FormatNs(r.exposed_comm_ns()),
      "the step less the same step with free communication");
  const pb::MemoryUse& m = r.memory();
  row("memory, fullest GPU", FormatBytes(m.total()),
      fmt::format("of {} on stage {}: {}", FormatBytes(m.capacity()), m.stage(),
                  m.fits() ? "fits" : "DOES NOT FIT"));
  return s + "</table>\n";
}

std::string PipelineSection(const pb::StepResult& r) {
  const std::vector<PipelineSlice> slices = PipelineSlices(r);
  if (slices.empty()) return "";
  html::GanttSpec g;
  g.title = fmt::format("1F1B pipeline: {} stages x {} micro-batches", r.stage_forward_ns_size(),
                        r.micro_batches());
  for (int s = 0; s < r.stage_forward_ns_size(); ++s) g.lanes.push_back(fmt::format("stage {}", s));
  g.format = StepFormatNs;
  int64_t end = 0;
  for (const PipelineSlice& x : slices) {
    g.bars.push_back({x.stage, x.start_ns, x.end_ns, x.forward ? kForwardColor : kBackwardColor,
                      fmt::format("stage {} {}{}: {} to {}", x.stage, x.forward ? "F" : "B",
                                  x.micro_batch, FormatNs(x.start_ns), FormatNs(x.end_ns)),
                      x.stage == r.slowest_stage()});
    end = std::max(end, x.end_ns);
  }
  g.legend = {{"forward", kForwardColor}, {"backward", kBackwardColor}};
  if (r.mode() == "training") {
    const int64_t grad_end = end + r.grad_sync_exposed_ns();
    for (uint32_t s = 0; s < g.lanes.size(); ++s) {
      if (r.grad_sync_exposed_ns() > 0)
        g.bars.push_back({s, end, grad_end, kGradColor, "gradient reduction (exposed)", false});
      if (r.optimizer_ns() > 0)
        g.bars.push_back(
            {s, grad_end, grad_end + r.optimizer_ns(), kOptimizerColor, "optimizer", false});
    }
    if (r.grad_sync_exposed_ns() > 0)
      g.legend.emplace_back("gradient reduction (exposed)", kGradColor);
    if (r.optimizer_ns() > 0) g.legend.emplace_back("optimizer", kOptimizerColor);
  }
  return fmt::format(
             "<h2>Pipeline</h2>\n<p class=\"note\">Each stage's forwards (F) and backwards (B) "
             "as 1F1B runs them: a stage starts a micro-batch's forward when the stage before has "
             "finished it, its backward when the stage after has. Stage {}, the slowest, is "
             "outlined in red. Laid out from each stage's own forward and backward time, the "
             "pipeline ends at {}; the step report's, m steady pairs of the slowest stage and "
             "the bubble ({}), is {}.</p>\n",
             r.slowest_stage(), FormatNs(end), Escape(r.bubble_formula()),
             FormatNs(r.pipeline_ns())) +
         (r.schedule() == "1f1b"
              ? ""
              : "<p class=\"note\">The step runs the " + Escape(r.schedule()) +
                    " schedule, whose figures the table gives; its lanes are drawn as 1F1B would "
                    "run the same stages.</p>\n") +
         html::PageFigure("pipeline", html::Gantt(g));
}

std::string OpsSection(const pb::StepResult& r) {
  html::HBarChartSpec h;
  h.title =
      fmt::format("One micro-batch on stage {}, by op (summed over its layers)", r.slowest_stage());
  h.x_label = "time";
  h.format = StepFormatNs;
  for (const OpSum& sum : SumOps(r)) {
    h.bars.push_back({fmt::format("{} {} (x{})", sum.pass, sum.name, sum.count),
                      static_cast<double>(sum.ns), sum.communication ? kCommColor : kComputeColor});
  }
  if (h.bars.empty()) return "";
  h.legend = {{"compute", kComputeColor}, {"communication", kCommColor}};
  return "<h2>One micro-batch</h2>\n" + html::PageFigure("ops", html::HBarChart(h));
}

std::string MemorySection(const pb::StepResult& r) {
  const pb::MemoryUse& m = r.memory();
  html::HBarChartSpec h;
  h.title = fmt::format("Memory of the fullest GPU (stage {}), of {}", m.stage(),
                        FormatBytes(m.capacity()));
  h.x_label = "bytes";
  h.format = [](double v) { return FormatBytes(static_cast<uint64_t>(v)); };
  auto part = [&](const char* name, uint64_t bytes) {
    if (bytes > 0) h.bars.push_back({name, static_cast<double>(bytes), "#6baed6"});
  };
  part("weights", m.weights());
  part("gradients", m.gradients());
  part("optimizer states", m.optimizer());
  part("activations", m.activations());
  part("KV cache", m.kv_cache());
  part("all-to-all buffers", m.all_to_all());
  h.bars.push_back({"total", static_cast<double>(m.total()), m.fits() ? "#31a354" : "#d62728"});
  h.bars.push_back({"GPU memory", static_cast<double>(m.capacity()), "#bdbdbd"});
  std::string note =
      m.in_flight_rule().empty()
          ? ""
          : "<p class=\"note\">Activations in flight: " + Escape(m.in_flight_rule()) + ".</p>\n";
  return "<h2>Memory</h2>\n" + note + html::PageFigure("memory", html::HBarChart(h));
}

}  // namespace

std::string HtmlStepPage(const pb::StepResult& r) {
  std::string s = html::PageHead("moesim: " + r.scenario());
  s += "<h1>moesim: " + Escape(r.scenario()) + "</h1>\n";
  s += fmt::format("<p class=\"note\">{} on {} GPUs, plan {}, {}, {} model; {}</p>\n",
                   Escape(r.model()), r.gpus(), Escape(r.plan()), Escape(r.mode()),
                   Escape(r.fidelity()), Escape(r.hardware()));
  s += StepSummary(r);
  s += PipelineSection(r);
  s += OpsSection(r);
  s += MemorySection(r);
  return s + "</body>\n</html>\n";
}

}  // namespace moesim::sim
