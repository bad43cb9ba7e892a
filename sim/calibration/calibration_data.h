// Measured Results as calibration and validation read them: moebench's files (`moebench run
// --out`, `moebench gemm --out`: binary protobuf; a name ending in .json is read as the JSON of
// --json), checked, and turned into the observations sim/calibration/calibrate.h fits.
//
//   MOESIM_ASSIGN_OR_RETURN(MeasuredFile m, ReadMeasured("results/calibration/fit-t256.pb"));
//   MOESIM_RETURN_IF_ERROR(CheckSameScenario(m, scenario));
//   MOESIM_ASSIGN_OR_RETURN(std::vector<Observation> obs, ObservationsOf(m, &scenario));
#pragma once

#include <string>
#include <vector>

#include "proto/result.pb.h"
#include "proto/status.h"
#include "sim/calibration/calibrate.h"
#include "sim/moe/scenario_loader.h"

namespace moesim::sim {

struct MeasuredFile {
  std::string path;
  pb::Result result;
};

// Errors name the file and, for a bad phase, its index, name and layer: unreadable; not a
// measurement (executor other than "measured"); no phases; a phase time, or a rank's, <= 0; a
// send matrix cell that is not a whole number 0..2^53.
StatusOr<MeasuredFile> ReadMeasured(const std::string& path);

// Whether a `moebench gemm` sweep (phases "gemm" with their shapes) rather than a scenario run.
bool IsGemmSweep(const pb::Result& result);

// Error unless `measured` is a run of `scenario`: the same name, GPUs, layers, and every layer's
// dispatch send matrix (tokens) the scenario's. The message names both files and what differs.
Status CheckSameScenario(const MeasuredFile& measured, const LoadedScenario& scenario);

// One observation per rank for every phase (that rank's median; dispatch and combine with the
// rank's own AllToAllWork), one per gemm shape. A scenario run needs its `scenario`
// (CheckSameScenario first); a gemm sweep takes nullptr.
StatusOr<std::vector<Observation>> ObservationsOf(const MeasuredFile& measured,
                                                  const LoadedScenario* scenario);

// Whether `path` holds a `moebench a2a --json` sweep (a CollectiveSweep) rather than a Result.
bool IsA2aSweepFile(const std::string& path);
// A `moebench a2a --json` sweep of the equal all-to-all (nccl-tests sizes: S per rank, S / n to
// each rank, its own included), one observation per size for LinkProfile (link_class, "alltoall"):
// every rank sends and receives S (n - 1) / n off-rank, and its local bytes are 2 S. Errors name
// the file: not a sweep, a prediction (fidelity other than "measured"), an alltoallv sweep (a
// matrix, not sizes), fewer than 2 ranks, no rows, a time <= 0.
StatusOr<std::vector<Observation>> A2aSweepObservations(const std::string& path,
                                                        const std::string& link_class);

}  // namespace moesim::sim
