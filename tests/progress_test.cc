// proto/progress.h: the progress line of long runs.
#include "proto/progress.h"

#include <catch2/catch.hpp>

namespace moesim {

TEST_CASE("Progress: done of total, elapsed, and the time left at the pace so far") {
  // 96 of 192 in 3.1 s: half done, so as long again: 3.1 x 96 / 96 = 3.1 s.
  CHECK(ProgressText(96, 192, 3.1) == "96/192 (50 %), 3.1 s elapsed, about 3.1 s left");
  // 10 of 30 in 2.0 s: 2.0 x 20 / 10 = 4.0 s; 33.3 % rounds down to 33.
  CHECK(ProgressText(10, 30, 2.0) == "10/30 (33 %), 2.0 s elapsed, about 4.0 s left");
  // Nothing done: no estimate; all done: none needed.
  CHECK(ProgressText(0, 192, 0.2) == "0/192 (0 %), 0.2 s elapsed");
  CHECK(ProgressText(192, 192, 6.0) == "192/192 (100 %), 6.0 s elapsed, done");
  // From 100 s on, minutes: 1 of 4 in 60 s leaves 180 s = 3.0 min.
  CHECK(ProgressText(1, 4, 60.0) == "1/4 (25 %), 60.0 s elapsed, about 3.0 min left");
  CHECK(ProgressText(3, 4, 150.0) == "3/4 (75 %), 2.5 min elapsed, about 50.0 s left");
}

}  // namespace moesim
