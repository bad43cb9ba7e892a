// One progress line for long runs (moesim plan's candidates; shared so that moebench can say the
// same): how far, how long so far, and the time left if the rest goes at the same pace.
//
//   ProgressText(96, 192, 3.1)  == "96/192 (50 %), 3.1 s elapsed, about 3.1 s left"
//   ProgressText(0, 192, 0.2)   == "0/192 (0 %), 0.2 s elapsed"
//   ProgressText(192, 192, 6.0) == "192/192 (100 %), 6.0 s elapsed, done"
#pragma once

#include <cstddef>
#include <string>

namespace moesim {

// `done` of `total` units after `elapsed_s` seconds. The estimate left is elapsed x (total - done)
// / done: nothing when nothing is done yet. Percent rounded down; times with one decimal, in
// minutes ("2.5 min") from 100 s on.
std::string ProgressText(size_t done, size_t total, double elapsed_s);

}  // namespace moesim
