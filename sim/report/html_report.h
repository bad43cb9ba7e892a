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

#include "proto/plan.pb.h"
#include "proto/result.pb.h"

namespace moesim::sim {

// Above this many GPUs, the heatmap sums blocks of GPUs (ceil(gpus / this) per block) and the
// Gantt chart shows this many GPUs: every phase's slowest one, then the lowest ranks.
inline constexpr uint32_t kHtmlMaxRanks = 128;

std::string HtmlResultPage(const pb::Result& result);
std::string HtmlPlanPage(const pb::PlanTable& table);

}  // namespace moesim::sim
