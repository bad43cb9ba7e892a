// Summaries of measured times, in integer nanoseconds (never floating-point seconds).
//
//   TimeStats s = Summarize({30, 10, 20, 40});
//   s.median == 25;  s.min == 10;  s.max == 40;  s.p10 == 10;  s.p90 == 40;
//
// Median: the middle sample, or the mean of the two middle ones (rounded down). p10 and p90 are
// nearest-rank percentiles: the ceil(p * n)-th smallest sample (at least the first).
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace moesim::backend {

struct TimeStats {
  int64_t median = 0, p10 = 0, p90 = 0, min = 0, max = 0;
};

// Requires at least one sample.
TimeStats Summarize(std::vector<int64_t> samples);

// Nanoseconds on the steady clock since an arbitrary epoch.
inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace moesim::backend
