// A guard against host allocations that cannot succeed: moebench estimates what a rank will
// allocate before it allocates, and refuses with a message saying how much was needed, instead of
// dying in the allocator or the OOM killer.
//
//   HostMemoryNeed need = EstimateRunMemory(workload, rank, /*check=*/true);
//   MOESIM_RETURN_IF_ERROR(CheckHostMemory(need, comm.ranks_on_node(), AvailableHostBytes()));
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "models/workload.h"
#include "proto/host_memory.h"
#include "proto/status.h"

namespace moesim::backend {

// Bytes, as doubles so that absurd sizes (a hidden size of 10^6) do not overflow.
struct HostMemoryNeed {
  double buffers = 0;  // activations, permutations and communication buffers of every layer
  double weights = 0;  // expert and router weights (all experts when checking)
  double total() const { return buffers + weights; }
};

// What MoeLayerRank (and, with `check`, the reference) allocates on `rank`, in fp32:
//   per layer: x, y: T*h each; logits T*E; send and combine-receive S*h each (S = T*k slots);
//   receive, expert input, expert output and combine-send R*h each (R = rows the rank's experts
//   get); the SwiGLU's gate, up and activation R*f (an upper bound on what the kernel keeps);
//   weights: 3*h*f per local expert, h*E for the router; with `check`, the reference's T*h.
HostMemoryNeed EstimateRunMemory(const models::Workload& workload, uint32_t rank, bool check);

// Fails when `ranks_on_node` ranks needing `need` each exceed 90% of `available` (the rest for the
// system and what the estimate misses; nothing is checked when `available` is unknown). The message
// gives the need per rank, its parts, and what is available.
Status CheckHostMemory(const HostMemoryNeed& need, uint32_t ranks_on_node,
                       std::optional<double> available);

}  // namespace moesim::backend
