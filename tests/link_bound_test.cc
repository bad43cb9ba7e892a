// LinkMakespan (sim/network/link_bound.h), one link and a few jobs, against times worked by hand.
// A 450 GB/s link drains 450e6 B in exactly 1 ms (1e9 ps).
#include "sim/network/link_bound.h"

#include <catch2/catch.hpp>
#include <cstdlib>

namespace moesim::sim {
namespace {

constexpr LinkDrain kLink{Rate::GigaPerSecond(450), 1.0};
constexpr double kMs = 450e6;  // bytes the link drains in 1 ms

Duration Ms(double ms) { return Duration::Picoseconds(static_cast<int64_t>(ms * 1e9)); }

}  // namespace

TEST_CASE("LinkMakespan: jobs that queue keep the link busy, a late one leaves it idle") {
  std::vector<LinkJob> none;
  CHECK(LinkMakespan(none, kLink) == Duration());
  // 1 ms of bytes at 0 and at 0.5 ms: the second waits, 2 ms.
  std::vector<LinkJob> queued = {{Ms(0.5), kMs, Duration()}, {Ms(0), kMs, Duration()}};
  CHECK(LinkMakespan(queued, kLink) == Ms(2));
  // At 0 and at 3 ms: idle from 1 to 3 ms, 4 ms.
  std::vector<LinkJob> late = {{Ms(0), kMs, Duration()}, {Ms(3), kMs, Duration()}};
  CHECK(LinkMakespan(late, kLink) == Ms(4));
}

TEST_CASE("LinkMakespan: the job with the longest tail goes first, taking the link over") {
  // A: 1 ms at 0, nothing after it. B: 1 ms at 0.5 ms, then 5 ms more. B takes over at 0.5 ms and
  // is through at 1.5 ms, +5 = 6.5 ms; A's last half runs 1.5-2 ms. In arrival order B would end at
  // 2 + 5 = 7 ms; 6.5 ms is the least.
  std::vector<LinkJob> jobs = {{Ms(0), kMs, Duration()}, {Ms(0.5), kMs, Ms(5)}};
  CHECK(LinkMakespan(jobs, kLink) == Ms(6.5));
  // A long tail that arrives late cannot start early: C, 1 ms at 4 ms with 2 ms after it, ends at
  // 7 ms whatever else the link carries before it.
  jobs = {{Ms(0), 3 * kMs, Duration()}, {Ms(4), kMs, Ms(2)}};
  CHECK(LinkMakespan(jobs, kLink) == Ms(7));
}

TEST_CASE("LinkMakespan: equal tails drain as one, rounded once; efficiency stretches time") {
  // 7 x 8 MiB at once, as a uniform all-to-all loads a GPU's link: 58,720,256 B / 450e9 s =
  // 130,489,457.8 ps, rounded up once: 130,489,458 (7 rounded drains would be 130,489,464).
  std::vector<LinkJob> jobs(7, LinkJob{Duration(), 8 << 20, Duration()});
  CHECK(LinkMakespan(jobs, kLink) == TransferTime(Bytes{7 << 23}, Rate::GigaPerSecond(450)));
  CHECK(LinkMakespan(jobs, kLink) == Duration::Picoseconds(130'489'458));
  // LL delivers half the bandwidth as data: the same bytes take twice as long.
  std::vector<LinkJob> one = {{Duration(), kMs, Duration()}};
  CHECK(LinkMakespan(one, LinkDrain{Rate::GigaPerSecond(450), 0.5}) == Ms(2));
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("LinkMakespan: a pool taken over mid-way drains its exact rest, not a whole byte more") {
  // A link of 1 MB/s (0.001 GB/s, the least a cluster file takes) drains a byte in 1 us. A: 2 B at
  // 0 with 10 us after it; B: nothing to carry, at 1.9 us, 5 us after it. Jackson's rule serves A,
  // looks again when B arrives (1.9 B through), and finishes A's last 0.1 B by 2.0 us: 2 + 10 =
  // 12 us. Rounded up to a whole byte, A's rest took until 2.9 us (12.9 us), above the 12 us a flow
  // alone on the link takes; with a chain of such steps the analytical ring all-reduce below came
  // out 0.86 us above its flow time.
  const LinkDrain slow{Rate::GigaPerSecond(0.001), 1.0};
  std::vector<LinkJob> jobs = {{Duration(), 2.0, Duration::Nanoseconds(10'000)},
                               {Duration::Nanoseconds(1'900), 0.0, Duration::Nanoseconds(5'000)}};
  // (To a picosecond: 1.9 us x 1 MB/s is 1.9 B in floating point, the rest 0.1 B and a hair.)
  const Duration end = LinkMakespan(jobs, slow);
  INFO(end.picoseconds() << " ps");
  CHECK(std::llabs(end.picoseconds() - 12'000'000) <= 1);
  // A fraction of a byte alone (a route's share): its own time, 0.25 B in 0.25 us.
  CHECK(slow.Time(0.25) == Duration::Nanoseconds(250));
  // Whole bytes as before: TransferTime's.
  CHECK(slow.Time(3.0) == TransferTime(Bytes{3}, Rate::GigaPerSecond(0.001)));
}

}  // namespace moesim::sim
