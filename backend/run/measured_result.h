// Turning measured samples into the simulator's Result schema (proto/result.proto), so that
// `moesim validate` can put a prediction and a measurement side by side, phase by phase.
//
//   PhaseSamples p{"dispatch", /*layer=*/0, slowest_per_iteration, median_per_rank};
//   p.link_bytes = off_diagonal_bytes;
//   AddMeasuredPhase(result, p);
//   models::AddSendMatrices(result, /*layer=*/0, dispatch_tokens, hidden * 4);  // send_matrices.h
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/dispatch.h"
#include "proto/result.pb.h"

namespace moesim::backend {

struct PhaseSamples {
  std::string name;
  uint32_t layer = 0;
  // Per timed iteration: the slowest rank's time (the phase's time in that iteration).
  std::vector<int64_t> slowest_ns;
  // Per rank: its own median time.
  std::vector<int64_t> rank_median_ns;
  // Compute phases: per rank, the work of the op (the critical rank's goes into the phase).
  std::vector<uint64_t> rank_flops, rank_bytes;
  // Communication phases: bytes that crossed between ranks (what a rank keeps is not counted).
  std::optional<uint64_t> link_bytes;
};

// Appends the phase: time_ns = median of slowest_ns, its p10/p90/min/max; critical_rank = the rank
// with the largest median (ties: the lowest); bytes and flops as PhaseSamples says. Returns
// time_ns. `bound` stays empty: a measurement does not say what limited it.
int64_t AddMeasuredPhase(pb::Result& result, const PhaseSamples& samples);

}  // namespace moesim::backend
