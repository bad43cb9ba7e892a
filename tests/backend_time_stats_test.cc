#include <catch2/catch.hpp>

#include "backend/bench/time_stats.h"

namespace moesim::backend {

TEST_CASE("time stats: median and nearest-rank p10 and p90 and min and max") {
  // Sorted: 10 20 30 40. Median (20 + 30) / 2 = 25; p10: ceil(0.1 * 4) = 1st = 10; p90:
  // ceil(0.9 * 4) = 4th = 40.
  TimeStats s = Summarize({30, 10, 40, 20});
  CHECK(s.median == 25);
  CHECK(s.p10 == 10);
  CHECK(s.p90 == 40);
  CHECK(s.min == 10);
  CHECK(s.max == 40);
  // 1..20: median (10 + 11) / 2 = 10 (rounded down); p10 = 2nd = 2; p90 = 18th = 18.
  std::vector<int64_t> ramp;
  for (int64_t i = 20; i >= 1; --i) ramp.push_back(i);
  s = Summarize(ramp);
  CHECK(s.median == 10);
  CHECK(s.p10 == 2);
  CHECK(s.p90 == 18);
  // One sample is every statistic.
  s = Summarize({7});
  CHECK((s.median == 7 && s.p10 == 7 && s.p90 == 7 && s.min == 7 && s.max == 7));
}

}  // namespace moesim::backend
