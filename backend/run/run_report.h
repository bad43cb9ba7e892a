// The terminal table of `moebench run` (rank 0 prints it): one line per layer and phase with the
// median time of the slowest rank and its spread, the critical rank, bytes and FLOPs, then each
// layer's measured dispatch matrix and the outcome of --check.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "backend/run/moe_run.h"
#include "proto/result.pb.h"

namespace moesim::backend {

void PrintRunReport(const std::string& path, const RunReport& report, std::ostream& out);

// A phase whose p90 is more than this many times its p10 was measured on a busy machine or in too
// few iterations: its median is not a figure to calibrate from (an idle machine gives 1.0-1.3).
inline constexpr double kWideSpread = 2.0;

// One line per phase of `result` whose p90 / p10 exceeds kWideSpread, naming it, its spread and
// how to measure more quietly; empty when every phase is tight (or has no spread: one iteration).
std::vector<std::string> SpreadWarnings(const pb::Result& result);

}  // namespace moesim::backend
