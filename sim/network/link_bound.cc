#include "sim/network/link_bound.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

namespace moesim::sim {

Duration LinkDrain::Time(double bytes) const {
  return AtEfficiency(
      TransferTime(Bytes{static_cast<uint64_t>(std::ceil(std::max(0.0, bytes)))}, bandwidth),
      efficiency);
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
