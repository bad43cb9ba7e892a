// The HTML report: one self-contained page (inline CSS and SVG, no JavaScript, nothing fetched
// from the network) with pictures of a Result, drawn from the Result alone so that `moesim
// simulate --html` and `moesim report RESULT -o` write the same page:
//   - the dispatch matrix of each layer as a heatmap (GPU x GPU, bytes), node boundaries drawn;
//   - expert loads of each layer as bars with the mean and the capacity line, and tokens per GPU;
//   - the busiest links as bars coloured by link class, and a per-link utilization table;
//   - the phases per GPU as a Gantt chart, the slowest GPU of each phase outlined, and the
//     critical path without barriers (Result.critical_path) as a lane of its own.
// And for `moesim plan --html`, step time against memory per GPU for every candidate with the
// Pareto front marked, and the top rows as a table.
//
//   std::string page = HtmlResultPage(result);
//   MOESIM_RETURN_IF_ERROR(WriteFileAtomically(path, page, "the HTML report"));
//
// The page is laid out for 1280 px and prints (each chart kept on one page). Same Result, same
// bytes. Any Result is drawn without reading out of bounds: cells missing from a ragged matrix
// count as 0, and a phase's per-GPU times past `gpus` are not drawn.
#pragma once

#include <string>

#include "proto/hardware.pb.h"
#include "proto/plan.pb.h"
#include "proto/result.pb.h"
#include "proto/sweep.pb.h"

namespace moesim::sim {

// Above this many GPUs, the heatmap sums blocks of GPUs (ceil(gpus / this) per block) and the
// Gantt chart shows this many GPUs: every phase's slowest one, then the lowest ranks.
inline constexpr uint32_t kHtmlMaxRanks = 128;

std::string HtmlResultPage(const pb::Result& result);
std::string HtmlPlanPage(const pb::PlanTable& table);
// `moesim simulate --html` for a scenario with a step block (html_step.cc): the step's figures,
// the pipeline as 1F1B lays it out (stages x micro-batches), one micro-batch by op, the memory of
// the fullest GPU.
std::string HtmlStepPage(const pb::StepResult& result);
// `moesim validate --html` (html_validation.cc): the summary, per op a chart of each row's measured
// time beside its prediction (and with a profile the datasheet's), each labelled with its error,
// and every row in a table.
std::string HtmlValidationPage(const pb::ValidationReport& report);
// `moesim sweep --html`: the total against the swept field and its components as lines (one field);
// for two, a heatmap and, while the second has at most 10 values, a line per value of it; every
// row.
std::string HtmlSweepPage(const pb::SweepTable& table);

namespace html {
// What every page is made of (html_report.cc): the document up to <body> with the report's style,
// and one chart in a <figure> with an id (what the browser test looks for).
std::string PageHead(const std::string& title);
std::string PageFigure(const std::string& id, const std::string& svg);
}  // namespace html

}  // namespace moesim::sim
