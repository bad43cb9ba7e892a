// Where one rank's rows go and come from in an expert-parallel MoE layer: the pure host
// bookkeeping behind dispatch and combine, shared by the CPU path (backend/run/moe_layer_rank.h,
// over MPI) and the GPU path (backend/run/gpu_run.h, over NCCL), so that both move rows in the same
// order. No communication and no device here: tests/backend_rank_layout_test.cc runs the whole
// exchange of many ranks in one process against a std::map oracle.
//
// A rank's slot s = t * top_k + k (token t's k-th choice) goes to bucket
//   b = destination rank * local_experts + local expert index there.
//
//   SendLayout send = BuildSendLayout(bucket_of_slot, world, local_experts);
//   // send.permutation: slots in send order (destination-major, then expert, then slot order);
//   // send.permutation.bucket_counts is what the notify step sends: block j goes to rank j.
//   ReceiveLayout recv = BuildReceiveLayout(counts_from_notify, world, local_experts);
//   // rows arrive source-major, (source, expert) blocks in that order (recv.peer_rows[i] from
//   // rank i); RegroupBlocks(recv) moves them expert-major (expert, then source) for the grouped
//   // GEMM, and the same blocks read the other way round put the outputs back source-major for
//   // the combine's all-to-all(v), the dispatch's transpose. Rows then land at the send
//   // permutation's rows, and permutation.row_of_slot finds each slot's output (the unpermute).
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/kernels/cpu_kernels.h"

namespace moesim::backend {

struct SendLayout {
  uint32_t world = 0, local_experts = 0;
  // Slots grouped stably by bucket (world * local_experts buckets). bucket_counts[j * local + e]:
  // rows for rank j's local expert e; empty when a bucket id was out of range.
  Permutation permutation;
  std::vector<uint64_t> peer_rows;  // [world]: rows sent to each rank (its send-matrix row)
};

// bucket_of_slot[s] in [0, world * local_experts); otherwise the layout is empty (no rows).
SendLayout BuildSendLayout(std::span<const int32_t> bucket_of_slot, uint32_t world,
                           uint32_t local_experts);

// One contiguous block of received rows: `rows` rows from `source` for local expert `expert`, at
// row `source_major` as received and at row `expert_major` as the grouped GEMM reads them.
struct RowBlock {
  uint32_t source = 0, expert = 0;
  uint64_t source_major = 0, expert_major = 0, rows = 0;
};

struct ReceiveLayout {
  uint32_t world = 0, local_experts = 0;
  std::vector<uint64_t> counts;          // [world x local_experts]: from rank i for expert e
  std::vector<uint64_t> peer_rows;       // [world]: rows received from each rank
  std::vector<uint64_t> expert_rows;     // [local_experts]
  std::vector<uint64_t> expert_offsets;  // [local_experts + 1]: expert-major row where each starts
  uint64_t rows = 0;                     // all received rows
};

// counts: [world x local_experts] as the notify step delivers them (block i from rank i).
// Requires counts.size() == world * local_experts.
ReceiveLayout BuildReceiveLayout(std::span<const uint64_t> counts, uint32_t world,
                                 uint32_t local_experts);

// The non-empty (source, expert) blocks, in source-major order. Copying each block's rows from
// source_major to expert_major regroups the received rows; the other way round restores them.
std::vector<RowBlock> RegroupBlocks(const ReceiveLayout& layout);

}  // namespace moesim::backend
