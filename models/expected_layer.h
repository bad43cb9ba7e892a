// The expected MoE layer of a routing distribution, for plan search: instead of drawing every
// token's experts for each candidate plan (seconds at thousands of GPUs), each expert receives its
// share of the layer's selections, spread evenly over the EP ranks that send.
//
//   per expert e:  L_e = ScaleCounts(loads, ep x tokens_per_rank x top_k)[e]
//   each sender gets floor(L_e / ep) of them, and the L_e mod ep left over go one each to the
//   senders e, e+1, ... (mod ep), so no rank is favoured across experts.
//   dispatch[src][EP rank of e] += the sender's share; expert_tokens of e's rank = L_e.
//
// Conservation holds exactly (the matrix adds up to ep x tokens x top_k); rows differ by at most
// the number of experts. The hottest expert's rank still computes its whole L_e, so imbalance
// costs what it costs; what is lost is only the sampling noise of a finite batch.
//
//   LayerWork w = ExpectedLayer(loads, /*ep=*/8, /*tokens_per_rank=*/4096, /*top_k=*/2,
//                               ExpertPlacement::Contiguous(8, 8));
#pragma once

#include <cstdint>
#include <span>

#include "models/dispatch.h"
#include "models/placement.h"

namespace moesim::models {

// `loads`: relative selections per expert (any scale, sum > 0), one per expert of `placement`.
// An expert with replicas has each sender's share split evenly over them. `capacity` > 0: each
// sender's share of an expert is cut to it and the rest counted as dropped (ExpandLayer's rule).
LayerWork ExpectedLayer(std::span<const uint64_t> loads, uint32_t ep, uint64_t tokens_per_rank,
                        uint32_t top_k, const ExpertPlacement& placement, uint64_t capacity = 0);

}  // namespace moesim::models
