// One MoE layer's forward pass, phase by phase, on a cluster (the MoE layers of a scenario, one
// after another). Compute phases and, at the analytical fidelity, the all-to-alls are closed forms:
//
//   router    each rank: max(FLOPs / peak, bytes / HBM bandwidth)
//   dispatch  every pair's bytes laid on the links of its route (topology/routes.h); each link
//   drains
//             its load over its bandwidth; each rank: the busiest link its transfers cross + the
//             longest route latency among the GPUs it exchanges bytes with. (On one NVSwitch: the
//             larger of a GPU's sent and received bytes over its NVLink bandwidth, + 2 hops.)
//   expert    each rank: max(FLOPs of its experts' SwiGLU / peak, their bytes / HBM bandwidth)
//   combine   as dispatch, with the transposed matrix
//
// At the flow fidelity the all-to-alls run on the flow model instead (see Fidelity below).
// A phase takes its slowest rank's time (the all-to-alls synchronise the ranks); the layer is the
// sum of its phases, and the run the sum of its layers. Tokens a rank keeps cost no link time.
// Peaks are datasheet figures (topology/gpu_specs.cc) until calibration replaces them.
#pragma once

#include "models/workload.h"
#include "proto/result.pb.h"
#include "topology/cluster.h"

namespace moesim::sim {

// How the all-to-alls are timed: `kAnalytical` as above; `kFlow` runs every pair's transfer as a
// flow sharing link bandwidth by max-min fairness (sim/flow_model.h), so a rank finishes when its
// own flows are through, plus their route latency. Compute phases are the same in both.
enum class Fidelity { kAnalytical, kFlow };

// Requires a plan the model covers; CheckMoeLayerSupport says why not otherwise.
pb::Result SimulateMoeLayers(const topology::Cluster& cluster, const models::Workload& workload,
                             Fidelity fidelity = Fidelity::kAnalytical);

// Parts of a plan this version does not simulate yet (etp > 1, pp > 1), as a located error.
Status CheckMoeLayerSupport(const models::Workload& workload, const TextFile& file);

}  // namespace moesim::sim
