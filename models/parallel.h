// Loops over ranks spread over the machine's cores, for the parts of loading a scenario that grow
// with the GPU count (drawing each rank's routing, expanding it into per-rank work): at 16,384
// GPUs of 4,096 tokens they were most of the time `moesim simulate` took.
//
//   ParallelChunks(ranks, ranks * tokens_per_rank, [&](uint32_t first, uint32_t last, uint32_t) {
//     for (uint32_t r = first; r < last; ++r) out[r] = Draw(r);   // each r writes only its own
//   });
//
// The body gets contiguous chunks [first, last) of [0, count) and the chunk's index (0 ..
// ParallelChunkCount - 1, for per-chunk partial results), one chunk per thread, and must make its
// results independent of the split (each index writes only its own outputs, or each chunk keeps
// its own partial sums and the caller adds them in chunk order): then the output is the same bit
// for bit on any number of cores. Below 2^20 units of `work` everything runs in one call on the
// calling thread, so small scenarios and tests start no threads. The body must not throw.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace moesim::models {

// How many chunks ParallelChunks splits `count` items of `work` into.
inline uint32_t ParallelChunkCount(uint32_t count, uint64_t work) {
  if (work < (uint64_t{1} << 20) || count < 2) return 1;
  return std::min(std::max(1u, std::thread::hardware_concurrency()), count);
}

template <typename Body>
void ParallelChunks(uint32_t count, uint64_t work, const Body& body) {
  const uint32_t chunks = ParallelChunkCount(count, work);
  if (chunks == 1) {
    body(0u, count, 0u);
    return;
  }
  std::vector<std::thread> pool;
  for (uint32_t i = 0; i < chunks; ++i) {
    const auto first = static_cast<uint32_t>(uint64_t{count} * i / chunks);
    const auto last = static_cast<uint32_t>(uint64_t{count} * (i + 1) / chunks);
    pool.emplace_back([&body, first, last, i] { body(first, last, i); });
  }
  for (std::thread& t : pool) t.join();
}

}  // namespace moesim::models
