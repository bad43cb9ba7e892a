// What every benchmark binary measures the same way: wall time, CPU time and peak resident memory.
#pragma once

#include <sys/resource.h>

#include <chrono>

namespace moesim::bench {

using Clock = std::chrono::steady_clock;

// Seconds since `since`.
inline double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// User plus system CPU time of this process so far, seconds: steadier than wall time when other
// work shares the machine.
inline double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// Peak resident set size of this process so far, MiB (Linux reports ru_maxrss in KiB).
inline double PeakRssMiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

}  // namespace moesim::bench
