// Measured Results as calibration and validation read them: moebench's files (`moebench run
// --out`, `moebench gemm --out`: binary protobuf; a name ending in .json is read as the JSON of
// --json), checked, and turned into the observations sim/calibrate.h fits.
//
//   MOESIM_ASSIGN_OR_RETURN(MeasuredFile m, ReadMeasured("results/calibration/fit-t256.pb"));
//   MOESIM_RETURN_IF_ERROR(CheckSameScenario(m, scenario));
//   MOESIM_ASSIGN_OR_RETURN(std::vector<Observation> obs, ObservationsOf(m, &scenario));
#pragma once

#include <string>
#include <vector>

#include "proto/result.pb.h"
#include "proto/status.h"
#include "sim/calibrate.h"
#include "sim/scenario_loader.h"

namespace moesim::sim {

struct MeasuredFile {
  std::string path;
  pb::Result result;
};

// Errors name the file and, for a bad phase, its index, name and layer: unreadable; not a
// measurement (executor other than "measured"); no phases; a phase time, or a rank's, <= 0.
StatusOr<MeasuredFile> ReadMeasured(const std::string& path);

// Whether a `moebench gemm` sweep (phases "gemm" with their shapes) rather than a scenario run.
bool IsGemmSweep(const pb::Result& result);

// Error unless `measured` is a run of `scenario`: the same name, GPUs, layers, and every layer's
// dispatch send matrix (tokens) the scenario's. The message names both files and what differs.
Status CheckSameScenario(const MeasuredFile& measured, const LoadedScenario& scenario);

// One observation per rank for router and expert phases (that rank's median), one per dispatch
// and combine phase (the phase time: the all-to-all synchronises the ranks), one per gemm shape.
// A scenario run needs its `scenario` (CheckSameScenario first); a gemm sweep takes nullptr.
StatusOr<std::vector<Observation>> ObservationsOf(const MeasuredFile& measured,
                                                  const LoadedScenario* scenario);

}  // namespace moesim::sim
