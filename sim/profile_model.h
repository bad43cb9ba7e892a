// The cost model a HardwareProfile (proto/hardware.proto) parameterises, written once so that
// `moesim calibrate` (sim/calibrate.h) fits exactly what `moesim validate` (sim/profile_predict.h)
// predicts. Every phase time is linear in the parameters, given the phase's work:
//
//   expert  (one rank)  L + sum over its experts with n_e > 0 of 6*h*f*(n_e + n_half) / R
//                     = L + flops / R + active * (n_half / R)
//           flops = sum 6*h*f*n_e (models::ExpertFfnCost), active = sum over experts with tokens
//           of 6*h*f; R = gemm rate (FLOP/ns), n_half = tokens per expert at half that rate.
//   router  (one rank)  L + bytes / M, bytes = models::RouterCost(...).bytes: a memory-bound
//           kernel (its logits are num_experts wide, far too narrow for the GEMM rate).
//   dispatch, combine   alpha + busiest / beta per (link class, collective), busiest = the
//           largest off-rank bytes any rank sends or receives (ranks wait for each other).
//
// Units: time in ns, bytes, FLOPs; so R is FLOP/ns (= 1e-3 TFLOP/s), M and beta bytes/ns (= GB/s).
//
//   ExpertWork w = ExpertWorkOf(model, layer.expert_tokens[rank]);
//   double t_ns = launch_ns + w.flops / rate + w.active * n_half / rate;
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/dispatch.h"
#include "proto/model.pb.h"
#include "proto/result.pb.h"
#include "proto/status.h"
#include "topology/cluster.h"

namespace moesim::sim {

struct ExpertWork {
  double flops = 0;   // sum over experts of 6*h*f*n_e
  double active = 0;  // sum over experts with n_e > 0 of 6*h*f (the n_half term's weight)
};
ExpertWork ExpertWorkOf(const pb::ModelSpec& model, const std::vector<uint64_t>& expert_tokens);
// `experts` experts with `tokens_per_expert` each (a `moebench gemm` shape).
ExpertWork ExpertWorkOf(const pb::GemmShape& shape);

// The largest off-rank bytes any rank sends or receives in the all-to-all `tokens`.
double BusiestRankBytes(const models::TrafficMatrix& tokens, uint64_t token_bytes);

// The link class every off-rank pair of `tokens` crosses ("nvlink", ...). Error when the pairs
// cross several classes (the alpha-beta model here has one class per all-to-all) or none.
StatusOr<std::string> AllToAllLinkClass(const topology::Cluster& cluster,
                                        const models::TrafficMatrix& tokens);

// The model as a measured Result computed it: moebench's CPU path works in fp32 whatever the
// scenario says ("fp32" -> FP32, "bf16" -> BF16; anything else keeps the scenario's dtype).
pb::ModelSpec ModelAsMeasured(const pb::ModelSpec& model, const pb::Result& measured);

}  // namespace moesim::sim
