// The terminal table of `moebench run` (rank 0 prints it): one line per layer and phase with the
// median time of the slowest rank and its spread, the critical rank, bytes and FLOPs, then each
// layer's measured dispatch matrix and the outcome of --check.
#pragma once

#include <ostream>
#include <string>

#include "backend/run/moe_run.h"
#include "proto/result.pb.h"

namespace moesim::backend {

void PrintRunReport(const std::string& path, const RunReport& report, std::ostream& out);

}  // namespace moesim::backend
