// What every benchmark binary measures the same way: wall time and peak resident memory.
#pragma once

#include <sys/resource.h>

#include <chrono>

namespace moesim::bench {

using Clock = std::chrono::steady_clock;

// Seconds since `since`.
inline double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Peak resident set size of this process so far, MiB (Linux reports ru_maxrss in KiB).
inline double PeakRssMiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

}  // namespace moesim::bench
