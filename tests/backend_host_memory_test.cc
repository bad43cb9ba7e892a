#include <catch2/catch.hpp>

#include "backend/run/bench_scenario.h"
#include "backend/run/host_memory.h"
#include "test_paths.h"

namespace moesim::backend {

TEST_CASE("host memory: the seed example's estimate and the guard's message") {
  auto s = LoadBenchScenario(testing::SourcePath("scenarios/seed_example.pbtxt"));
  REQUIRE(s.ok());
  // Weights on each rank: 2 local experts x 3 x 4096 x 14336 fp32 + the router's 4096 x 8.
  const HostMemoryNeed need = EstimateRunMemory(s->workload, /*rank=*/1, /*check=*/false);
  CHECK(need.weights == 4.0 * (3.0 * 4096 * 14336 * 2 + 4096 * 8));
  // Rank 1: T = 4 tokens, k = 1, R = 6 received rows (experts E2, E3: 3 + 3), h = 4096,
  // f = 14336, E = 8: 4 * (2*T*h + T*E + T*k + 2*T*k*h + 4*R*h + 3*R*f).
  const double h = 4096, f = 14336;
  CHECK(need.buffers == 4.0 * (2 * 4 * h + 4 * 8 + 4 + 2 * 4 * h + 4 * 6 * h + 3 * 6 * f));
  CHECK(EstimateRunMemory(s->workload, 1, true).buffers == need.buffers + 4.0 * 4 * h);

  CHECK(CheckHostMemory(need, 4, std::nullopt).ok());  // unknown: not checked
  CHECK(CheckHostMemory(need, 4, 100e9).ok());
  const Status low = CheckHostMemory(need, 4, 4e9);
  REQUIRE_FALSE(low.ok());
  // Per rank: weights 4 x (3 x 4096 x 14336 x 2 + 32768) = 1,409,417,216 B; buffers
  // 4 x 421,924 = 1,687,696 B (1.61 MiB); in all 1.31 GiB, x 4 ranks = 5.26 GiB > 90% of 4e9 B
  // (3.73 GiB).
  CHECK(low.error().message() ==
        "out of host memory: each rank needs 1.31 GiB (buffers 1.61 MiB, weights 1.31 GiB), "
        "5.26 GiB for the 4 ranks on this node, but only 3.73 GiB is available (MemAvailable, "
        "/proc/meminfo; moebench uses at most 90% of it); use fewer tokens, a smaller model or "
        "more nodes");
  CHECK(FormatBytes(1536) == "1.50 KiB");
  CHECK(FormatBytes(3.0 * (1ull << 40)) == "3.00 TiB");
  CHECK(AvailableHostBytes().has_value());  // Linux: /proc/meminfo
}

}  // namespace moesim::backend
