// sim/moe/ owns the MoE layer: scenario loading, the layer phase by phase, its critical path and
// trace replay. It may include sim/network/ and sim/compute/ (and topology/, models/, proto/);
// never sim/step/ or above.
//
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
// The all-to-alls are asked of a NetworkModel (sim/network/network_model.h): closed forms as above
// at the analytical fidelity, the flow model at the flow fidelity.
//
// With the workload's alltoall_algo "hierarchical" (models::AllToAllAlgo::kHierarchical), dispatch
// runs DeepEP's schedule (sim/network/alltoall_hierarchical.h): in-node copies straight over
// NVLink; what a GPU has for another node crosses once, to the GPU of its own local index there
// (each token once per node, LayerWork::node_tokens), which forwards the copies over NVLink.
// Combine runs it backwards (gather and reduce on that GPU, send back once). Analytical: every
// transfer's bytes on its links at once (the relay forwards as bytes arrive, as DeepEP pipelines
// chunks); a rank waits for the busiest link its transfers cross plus its longest chain of route
// latencies (crossing, then forward). Flow: the forward starts when the whole crossing is through.
// A communication phase's bytes are then what the GPUs sent, the forwards included.
//
// With "deepep_normal" (models::AllToAllAlgo::kDeepEpNormal, DeepEP's internode normal kernels)
// the same relay crosses in chunks of the workload's chunk_tokens (alltoall_hierarchical.h): the
// analytical time is the same, the flow model forwards chunk k while chunk k + 1 crosses. On one
// node it runs as "per_rank" (DeepEP's intranode kernels). With "deepep_low_latency" (DeepEP's
// low-latency kernels) every copy is one message of the token plus a 16-byte header (combine: the
// token), sent straight to its expert's GPU (sim/network/alltoall_low_latency.h): the direct
// exchange, each GPU then at least its NIC's messages over ConnectX-7's message rate.
//
// With alltoall_algo "per_rank" (models::AllToAllAlgo::kPerRank, DeepEP's intranode kernels) both
// all-to-alls run direct with one copy per destination GPU (LayerWork::rank_tokens): a token
// whose two experts share a GPU crosses once, and combine sends that GPU's reduced output back
// once; the Result's send matrices are then those distinct tokens. A token weighs
// models::WireTokenBytes of the workload's dispatch_dtype in dispatch and of its combine_dtype in
// combine (the model's dtype when absent; FP8 adds its per-128-channel scales). A phase takes
// its slowest rank's time (the all-to-alls synchronise the ranks); the layer is the sum of its
// phases, and the run the sum of its layers. The kernels' own rates (workload.dispatch_kernel_gbps,
// dispatch_rdma_kernel_gbps and their combine twins) floor each rank's all-to-all at the bytes
// their benchmarks count: the copies it receives, its own included, and (relays by node, several
// nodes) its tokens times the nodes each reaches, its own included; the phase's bound is then
// "kernel". Tokens a rank keeps cost no link time. Peaks are datasheet figures
// (topology/gpu_specs.cc) until calibration replaces them.
#pragma once

#include "models/workload.h"
#include "proto/result.pb.h"
#include "sim/network/network_model.h"
#include "topology/cluster.h"

namespace moesim::sim {

// Requires a plan the model covers; CheckMoeLayerSupport says why not otherwise. At the flow
// fidelity a rank finishes an all-to-all when its own flows are through, plus their route latency.
pb::Result SimulateMoeLayers(const NetworkModel& net, const models::Workload& workload);
// The same on MakeNetworkModel(cluster, fidelity).
pb::Result SimulateMoeLayers(const topology::Cluster& cluster, const models::Workload& workload,
                             Fidelity fidelity = Fidelity::kAnalytical, FlowOptions flow = {});

// Parts of a plan this version does not simulate yet (etp > 1, pp > 1), as a located error.
Status CheckMoeLayerSupport(const models::Workload& workload, const TextFile& file);

}  // namespace moesim::sim
