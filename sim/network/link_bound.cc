#include "sim/network/link_bound.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>

namespace moesim::sim {

Duration LinkDrain::Time(double bytes) const {
  bytes = std::max(0.0, bytes);
  if (bytes == std::floor(bytes) && bytes < 0x1p63) {
    return AtEfficiency(TransferTime(Bytes{static_cast<uint64_t>(bytes)}, bandwidth), efficiency);
  }
  // A fraction of a byte (a route's share of a transfer; a pool's rest after a preemption in
  // LinkMakespan): its own time to the picosecond, as the flow model drains it. Rounded up to whole
  // bytes, a pool preempted k times would pay up to k bytes more than its bytes take, which on a
  // slow link put the bound above the flow time it bounds.
  const long double per_second = static_cast<long double>(bandwidth.per_second());
  if (per_second == 0) return Duration::Infinite();
  const long double ps = std::ceil(static_cast<long double>(bytes) * 1e12L / per_second);
  if (ps >= static_cast<long double>(INT64_MAX)) return Duration::Infinite();
  return AtEfficiency(Duration::Picoseconds(static_cast<int64_t>(ps)), efficiency);
}

Duration AtEfficiency(Duration full, double efficiency) {
  if (efficiency == 1.0) return full;
  return Duration::Picoseconds(
      static_cast<int64_t>(std::ceil(static_cast<double>(full.picoseconds()) / efficiency)));
}

double LinkDrain::BytesIn(Duration span) const {
  return static_cast<double>(span.picoseconds()) * static_cast<double>(bandwidth.per_second()) *
         efficiency / 1e12;
}

Duration LinkMakespan(std::vector<LinkJob>& jobs, const LinkDrain& drain) {
  std::sort(jobs.begin(), jobs.end(),
            [](const LinkJob& a, const LinkJob& b) { return a.release < b.release; });
  // Bytes waiting, pooled by tail, the largest tail first: Jackson's rule serves that pool.
  std::map<Duration, double, std::greater<>> waiting;
  Duration now, end;
  size_t next = 0;
  while (next < jobs.size() || !waiting.empty()) {
    if (waiting.empty()) now = std::max(now, jobs[next].release);
    for (; next < jobs.size() && jobs[next].release <= now; ++next)
      waiting[jobs[next].tail] += jobs[next].bytes;
    const auto served = waiting.begin();
    const Duration done = now + drain.Time(served->second);
    if (next < jobs.size() && jobs[next].release < done) {
      // A job arrives before the pool is through: drain until then, and choose again.
      served->second = std::max(0.0, served->second - drain.BytesIn(jobs[next].release - now));
      now = jobs[next].release;
      continue;
    }
    end = std::max(end, done + served->first);
    now = done;
    waiting.erase(served);
  }
  return end;
}

}  // namespace moesim::sim
