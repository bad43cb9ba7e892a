// Predicted against measured, op by op: what `moesim validate` prints. Each case is a scenario
// and a measured Result of it (CheckSameScenario first); the prediction is the profile's
// (sim/compute/profile_predict.h) when one is given, and the datasheet model's
// (sim/moe/moe_layer.h, what `moesim simulate` prints) always, side by side. Relative error =
// (predicted - measured) / measured; summaries take the median and the largest absolute relative
// error per op, and over router, dispatch, expert and combine together ("all").
//
//   MOESIM_ASSIGN_OR_RETURN(pb::ValidationReport r, Validate({{&scenario, &measured}}, &profile));
//   PrintValidation(r, std::cout);
#pragma once

#include <ostream>
#include <vector>

#include "proto/hardware.pb.h"
#include "proto/status.h"
#include "sim/calibration/calibration_data.h"
#include "sim/moe/scenario_loader.h"

namespace moesim::sim {

struct ValidationCase {
  const LoadedScenario* scenario = nullptr;
  const MeasuredFile* measured = nullptr;
};

// `profile` may be null (datasheet only). Errors: no cases; a measurement of another scenario;
// a measured phase the prediction lacks; what PredictWithProfile reports.
StatusOr<pb::ValidationReport> Validate(const std::vector<ValidationCase>& cases,
                                        const pb::HardwareProfile* profile);

// The table and the summaries, for people.
void PrintValidation(const pb::ValidationReport& report, std::ostream& out);

}  // namespace moesim::sim
