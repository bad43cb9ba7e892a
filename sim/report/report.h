// sim/report/ owns what a person reads of a Result: the terminal table and the Perfetto timeline.
// It may include sim/moe/, sim/network/, sim/compute/ (and topology/, models/, proto/); it
// computes nothing of its own.
//
// The terminal view of a Result: a header saying what was simulated, the send matrix of each
// all-to-all, and the time of each phase. Everything printed comes from the Result, so the table
// and
// `--json` never disagree.
#pragma once

#include <ostream>

#include "proto/result.pb.h"
#include "sim/moe/scenario_loader.h"

namespace moesim::sim {

void PrintReport(const LoadedScenario& scenario, const pb::Result& result, std::ostream& out);
// What PrintReport prints below its header about the scenario: router figures, drops, placement,
// send matrices, phases, critical path, busiest links, replayed steps; from the Result alone
// (`moesim result show`). A token's bytes in dispatch and combine, 0: read off each matrix.
void PrintResultBody(const pb::Result& result, uint64_t dispatch_bytes, uint64_t combine_bytes,
                     std::ostream& out);

// The router's figures of routing from scores (pb::RouterFigures), one row per step and layer;
// nothing when the Result has none. Past 64 rows, the first and last 32 (all are in --json).
void PrintRouterFigures(const pb::Result& result, std::ostream& out);

// "91 ns", "1.09 us", "2.917 ms", "1.200 s": three significant decimals past the unit's integer.
std::string FormatNs(int64_t ns);
// "268.4 MFLOP", "2.93 TFLOP"; "-" for none.
std::string FormatFlops(uint64_t flops);
// "98.3 kB", "58.7 MB": bytes in decimal units (1 MB = 1e6 B), as bandwidths are quoted.
std::string FormatBytes(uint64_t bytes);

}  // namespace moesim::sim
