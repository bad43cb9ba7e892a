// A scenario's MoE layers predicted with a HardwareProfile (proto/hardware.proto): the cost model
// of sim/compute/profile_model.h, phase by phase, as `moesim validate --hardware FILE` compares
// with a measurement. GPU figures the profile leaves out keep the cluster's datasheet ones (peak
// rate for the model's dtype, HBM bandwidth; no launch overhead, gemm_n_half 0). The all-to-alls
// need a profile entry (link class, "dispatch" / "combine") for the class their ranks talk over: a
// topology's link figures are not an alpha-beta fit of what an executor's all-to-all achieves.
//
// Kept apart from sim/moe/moe_layer.cc (the datasheet model of `moesim simulate`) for now; both
// give phases "router", "dispatch", "expert", "combine" per layer, so reports treat them alike.
//
//   MOESIM_ASSIGN_OR_RETURN(pb::Result r, PredictWithProfile(s.cluster, s.workload, profile));
#pragma once

#include "models/workload.h"
#include "proto/hardware.pb.h"
#include "proto/result.pb.h"
#include "proto/status.h"
#include "topology/cluster.h"

namespace moesim::sim {

// Error when the profile lacks the link entry an all-to-all needs (names the class, the
// collective and the entries it has) or the workload's all-to-all spans several link classes.
StatusOr<pb::Result> PredictWithProfile(const topology::Cluster& cluster,
                                        const models::Workload& workload,
                                        const pb::HardwareProfile& profile);

// Reads a profile written by `moesim calibrate` (text format), with line:column errors; checks
// that rates and bandwidths are > 0 and times >= 0 (naming the field and value).
StatusOr<pb::HardwareProfile> LoadHardwareProfile(const std::string& path);

}  // namespace moesim::sim
