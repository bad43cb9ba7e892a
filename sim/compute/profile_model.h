// The cost model a HardwareProfile (proto/hardware.proto) parameterises, written once so that
// `moesim calibrate` (sim/calibration/calibrate.h) fits exactly what `moesim validate`
// (sim/compute/profile_predict.h) predicts. Every phase time is linear in the parameters, given the
// phase's work:
//
//   expert  (one rank)  L + sum over its experts with n_e > 0 of 6*h*f*(n_e + n_half) / R
//                     = L + flops / R + active * (n_half / R)
//           flops = sum 6*h*f*n_e (models::ExpertFfnCost), active = sum over experts with tokens
//           of 6*h*f; R = gemm rate (FLOP/ns), n_half = tokens per expert at half that rate.
//           A phase of at least the profile's gpu.large_gemms.min_flops takes that band's L, R
//           and n_half instead (ComputeRates::ForGemm in sim/compute/compute_model.h).
//   router  (one rank)  L + bytes / M, bytes = models::RouterCost(...).bytes: a memory-bound
//           kernel (its logits are num_experts wide, far too narrow for the GEMM rate).
//   dispatch, combine   per (link class, collective), each rank r that takes part:
//           alpha + link_r / beta + local_r / gamma, and the phase its slowest rank's time;
//           link_r = max(sent_r, received_r) off-rank bytes (full duplex) or their sum (half),
//           local_r = all bytes r sends plus all it receives, its own rows included (the copies
//           around the exchange: packing, regroup, weighted sum). See LinkProfile.
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
#include "proto/hardware.pb.h"
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

// One rank's part in an all-to-all(v) of `tokens` rows, in bytes (see the top of this file).
struct AllToAllWork {
  double sent_off = 0, received_off = 0;
  double local = 0;
  // link_r under `duplex`: the larger of sent_off and received_off (FULL) or their sum (HALF).
  double LinkBytes(pb::LinkProfile::Duplex duplex) const;
};
AllToAllWork AllToAllWorkOf(const models::TrafficMatrix& tokens, uint64_t token_bytes,
                            uint32_t rank);
// alpha + link / beta + local / gamma under `link` (its large_messages band where the rank's link
// bytes reach it); 0 for a rank that moves no row at all.
double AllToAllRankNs(const pb::LinkProfile& link, const AllToAllWork& work);

// An all-to-all in which no row leaves its rank (one rank; or every token's experts on its own
// GPU): no link is crossed, and its time is alpha + local / gamma, the copies around the exchange
// (a one-GPU `moebench run`). A profile's entry for it has no link bandwidth.
inline constexpr char kLocalLinkClass[] = "local";

// The link class every off-rank pair of `tokens` crosses ("nvlink", ...), or kLocalLinkClass when
// no row leaves its rank. Error when the pairs cross several classes (the alpha-beta model here
// has one class per all-to-all).
StatusOr<std::string> AllToAllLinkClass(const topology::Cluster& cluster,
                                        const models::TrafficMatrix& tokens);
// The same for an all-to-all among `group`'s GPUs: cell (i, j) of `tokens` goes from cluster
// rank group[i] to group[j].
StatusOr<std::string> GroupLinkClass(const topology::Cluster& cluster,
                                     const models::TrafficMatrix& tokens,
                                     const std::vector<uint32_t>& group);
// `profile`'s entry for (link class, collective); for "dispatch" and "combine" without one, the
// class's "alltoall" entry (a `moebench a2a` sweep's); else nullptr.
const pb::LinkProfile* FindLinkProfile(const pb::HardwareProfile& profile,
                                       const std::string& link_class,
                                       const std::string& collective);

// The model as a measured Result computed it: moebench's CPU path works in fp32 whatever the
// scenario says ("fp32" -> FP32, "bf16" -> BF16, "fp8" -> FP8, `moebench run --dtype fp8`'s
// experts; anything else keeps the scenario's dtype).
pb::ModelSpec ModelAsMeasured(const pb::ModelSpec& model, const pb::Result& measured);

}  // namespace moesim::sim
