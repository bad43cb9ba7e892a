#include "backend/bench/time_stats.h"

#include <algorithm>

namespace moesim::backend {
namespace {

int64_t NearestRank(const std::vector<int64_t>& sorted, uint32_t percent) {
  // ceil(percent * n / 100), in integers, clamped to [1, n].
  const uint64_t n = sorted.size();
  uint64_t rank = (percent * n + 99) / 100;
  rank = std::clamp<uint64_t>(rank, 1, n);
  return sorted[rank - 1];
}

}  // namespace

TimeStats Summarize(std::vector<int64_t> samples) {
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  TimeStats s;
  s.min = samples.front();
  s.max = samples.back();
  s.median = n % 2 == 1 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
  s.p10 = NearestRank(samples, 10);
  s.p90 = NearestRank(samples, 90);
  return s;
}

}  // namespace moesim::backend
