// Correctness of a distributed MoE layer, checked on every rank:
//
//  * after dispatch, the rank holds exactly the token rows routed to its experts: for each local
//    expert, one row per (source rank, token) that chose it, in source-rank then token order, each
//    row's stamp naming that token and its payload equal to the token's row, bit for bit (a copy);
//  * after combine, every token is back with the weighted sum of its experts' outputs, compared
//    with a single-process reference of the whole layer (ReferenceOutput: the scenario's routing,
//    the router's softmax over the chosen experts and each chosen expert's SwiGLU, in double
//    precision, through the weights' factors (backend/run/layer_inputs.h), with no kernel, no Eigen
//    and no communication: an independent oracle that needs no other rank's weights).
//
// Error bound: the run computes in fp32 (u = 2^-24): dot products of length hidden (router, gate,
// up) and ffn (down). Higham's bound for a sum of n terms is n * u * sum |terms|: 4096 * 6e-8 =
// 2.4e-4 of sum |terms| for Mixtral's hidden size in the worst case; errors of random sign grow
// like sqrt(n) * u instead (~4e-6). We assert kRelativeErrorBound = 1e-4 of each token's largest
// |value|, above what fp32 produces and far below any misrouted or mis-weighted row, which is off
// by order one.
//
//   MOESIM_RETURN_IF_ERROR(CheckDispatched(layer_rank, workload, layer, seed));
//   std::vector<float> ref = ReferenceOutput(workload, layer, rank, seed, router);
//   MOESIM_ASSIGN_OR_RETURN(double err, CheckCombined(layer_rank.output(), ref, hidden, rank));
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/run/moe_layer_rank.h"
#include "models/workload.h"

namespace moesim::backend {

inline constexpr double kRelativeErrorBound = 1e-4;

// Rows checked (the rank's received rows) or the first misrouted or corrupted row.
StatusOr<uint64_t> CheckDispatched(const MoeLayerRank& rank_layer, const models::Workload& workload,
                                   uint32_t layer, uint64_t seed);

// `rank`'s tokens through the whole layer in one process, in double: router weights, every chosen
// expert's SwiGLU, weighted sum; rounded to fp32 at the end. `router` is RouterMatrix(seed, ...).
std::vector<float> ReferenceOutput(const models::Workload& workload, uint32_t layer, uint32_t rank,
                                   uint64_t seed, const std::vector<float>& router);

// What a token's largest error is divided by: its own largest |value| (the fp32 and bf16 paths),
// or the largest |value| of the layer on the rank (FP8 experts, whose error follows the terms a
// GEMM sums, not their sum: backend/run/gpu_run.h, kGpuFp8RelativeErrorBound).
enum class ErrorScale { kToken, kLayer };

// The largest per-token relative error max_i |y_i - ref_i| / scale, or an error naming the first
// token beyond `bound`.
StatusOr<double> CheckCombined(std::span<const float> output, std::span<const float> reference,
                               uint32_t hidden, uint32_t rank, uint32_t layer,
                               double bound = kRelativeErrorBound,
                               ErrorScale per = ErrorScale::kToken);

}  // namespace moesim::backend
