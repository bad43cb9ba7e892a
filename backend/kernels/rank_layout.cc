#include "backend/kernels/rank_layout.h"

namespace moesim::backend {

SendLayout BuildSendLayout(std::span<const int32_t> bucket_of_slot, uint32_t world,
                           uint32_t local_experts) {
  SendLayout out;
  out.world = world;
  out.local_experts = local_experts;
  out.permutation = BuildPermutation(bucket_of_slot, world * local_experts);
  out.peer_rows.assign(world, 0);
  const std::vector<uint64_t>& counts = out.permutation.bucket_counts;
  for (uint64_t b = 0; b < counts.size(); ++b) out.peer_rows[b / local_experts] += counts[b];
  return out;
}

ReceiveLayout BuildReceiveLayout(std::span<const uint64_t> counts, uint32_t world,
                                 uint32_t local_experts) {
  ReceiveLayout out;
  out.world = world;
  out.local_experts = local_experts;
  out.counts.assign(counts.begin(), counts.end());
  out.peer_rows.assign(world, 0);
  out.expert_rows.assign(local_experts, 0);
  out.expert_offsets.assign(uint64_t{local_experts} + 1, 0);
  for (uint32_t src = 0; src < world; ++src) {
    for (uint32_t e = 0; e < local_experts; ++e) {
      const uint64_t n = counts[uint64_t{src} * local_experts + e];
      out.peer_rows[src] += n;
      out.expert_rows[e] += n;
      out.rows += n;
    }
  }
  for (uint32_t e = 0; e < local_experts; ++e) {
    out.expert_offsets[e + 1] = out.expert_offsets[e] + out.expert_rows[e];
  }
  return out;
}

std::vector<RowBlock> RegroupBlocks(const ReceiveLayout& l) {
  // Expert-major: expert e's rows start at expert_offsets[e], sources in rank order within it.
  std::vector<uint64_t> next(l.expert_offsets.begin(), l.expert_offsets.end() - 1);
  std::vector<RowBlock> blocks;
  uint64_t source_major = 0;
  for (uint32_t src = 0; src < l.world; ++src) {
    for (uint32_t e = 0; e < l.local_experts; ++e) {
      const uint64_t n = l.counts[uint64_t{src} * l.local_experts + e];
      if (n > 0) blocks.push_back(RowBlock{src, e, source_major, next[e], n});
      source_major += n;
      next[e] += n;
    }
  }
  return blocks;
}

}  // namespace moesim::backend
