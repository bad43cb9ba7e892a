#include "backend/run/measured_result.h"

#include "backend/bench/time_stats.h"

namespace moesim::backend {

int64_t AddMeasuredPhase(pb::Result& result, const PhaseSamples& s) {
  pb::Phase* phase = result.add_phases();
  phase->set_name(s.name);
  phase->set_layer(s.layer);
  const TimeStats stats = Summarize(s.slowest_ns);
  phase->set_time_ns(stats.median);
  phase->set_time_p10_ns(stats.p10);
  phase->set_time_p90_ns(stats.p90);
  phase->set_time_min_ns(stats.min);
  phase->set_time_max_ns(stats.max);
  uint32_t critical = 0;
  for (uint32_t r = 0; r < s.rank_median_ns.size(); ++r) {
    phase->add_rank_time_ns(s.rank_median_ns[r]);
    if (s.rank_median_ns[r] > s.rank_median_ns[critical]) critical = r;
  }
  phase->set_critical_rank(critical);
  if (s.link_bytes) {
    phase->set_bytes(*s.link_bytes);
  } else if (critical < s.rank_bytes.size()) {
    phase->set_bytes(s.rank_bytes[critical]);
  }
  if (critical < s.rank_flops.size()) phase->set_flops(s.rank_flops[critical]);
  return stats.median;
}

}  // namespace moesim::backend
