#include <catch2/catch.hpp>

#include "backend/bench/time_stats.h"
#include "backend/run/run_report.h"

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

TEST_CASE("moebench warns of a phase whose p90 is more than twice its p10") {
  pb::Result r;
  // dispatch: p90 / p10 = 150 / 100 = 1.5, tight; combine: 412,000 / 100,000 = 4.12, wide;
  // expert: no spread recorded (one iteration), nothing to say.
  auto add = [&](const char* name, int64_t p10, int64_t p90) {
    pb::Phase* p = r.add_phases();
    p->set_name(name);
    p->set_layer(2);
    p->set_time_p10_ns(p10);
    p->set_time_p90_ns(p90);
  };
  add("dispatch", 100, 150);
  add("combine", 100'000, 412'000);
  add("expert", 0, 0);
  const std::vector<std::string> lines = SpreadWarnings(r);
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Catch::StartsWith("layer 2 combine: p90 412.0 us is 4.1x p10 100.0 us "
                                         "(wider than 2x)"));
  CHECK_THAT(lines[0], Catch::Contains("--iters") && Catch::Contains("--bind-to core"));
  // At exactly 2x: still tight (the bound is "more than").
  pb::Result edge;
  pb::Phase* p = edge.add_phases();
  p->set_time_p10_ns(1000);
  p->set_time_p90_ns(2000);
  CHECK(SpreadWarnings(edge).empty());
}

}  // namespace moesim::backend
