#include "proto/units.h"

#include <catch2/catch.hpp>

namespace moesim {

TEST_CASE("TransferTime rounds bytes over bandwidth up to whole picoseconds") {
  // 8192 B / 450e9 B/s = 18204.44 ps -> 18205 ps.
  CHECK(TransferTime(Bytes{8192}, Rate::GigaPerSecond(450)).picoseconds() == 18205);
  // 450 B / 450e9 B/s = exactly 1000 ps: no rounding.
  CHECK(TransferTime(Bytes{450}, Rate::GigaPerSecond(450)).picoseconds() == 1000);
  CHECK(TransferTime(Bytes{0}, Rate::GigaPerSecond(450)).picoseconds() == 0);
  // 1 TB over 1 GB/s = 1000 s = 1e15 ps: needs the 128-bit intermediate (1e12 * 1e12 overflows 64).
  CHECK(TransferTime(Bytes{1'000'000'000'000}, Rate::GigaPerSecond(1)).picoseconds() ==
        1'000'000'000'000'000);
}

TEST_CASE("TimeFor divides FLOPs by a FLOP rate the same way") {
  // 2 * 989.5e12 FLOPs at 989.5 TFLOP/s = exactly 2 s.
  CHECK(TimeFor(1'979'000'000'000'000, Rate::TeraPerSecond(989.5)) ==
        Duration::Nanoseconds(2'000'000'000));
}

TEST_CASE("Duration reports whole nanoseconds rounded up") {
  CHECK(Duration::Picoseconds(1).nanoseconds_ceil() == 1);
  CHECK(Duration::Picoseconds(1000).nanoseconds_ceil() == 1);
  CHECK(Duration::Picoseconds(1001).nanoseconds_ceil() == 2);
  CHECK(Duration::Picoseconds(0).nanoseconds_ceil() == 0);
  CHECK((Duration::Nanoseconds(2) + Duration::Picoseconds(5)).picoseconds() == 2005);
}

TEST_CASE("Rate converts datasheet units exactly") {
  CHECK(Rate::GigaPerSecond(450).per_second() == 450'000'000'000ULL);
  CHECK(Rate::TeraPerSecond(989.5).per_second() == 989'500'000'000'000ULL);
  CHECK(Rate::GigaPerSecond(3350).giga() == 3350.0);
}

}  // namespace moesim
