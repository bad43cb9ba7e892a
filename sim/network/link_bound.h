// The least time one link needs to carry a set of jobs that each arrive at a known time and leave
// a known amount of work behind them: the lower bound the analytical model
// (sim/network/collective_time.h) puts on every link of a schedule.
//
//   LinkDrain nvlink{Rate::GigaPerSecond(450), 1.0};
//   std::vector<LinkJob> jobs = {{Duration(), 450e6, Duration()},              // 1 ms of bytes
//                                {Duration::Nanoseconds(500'000), 450e6, Duration()}};
//   LinkMakespan(jobs, nvlink);   // 2 ms: the link is never idle once the first job is there
//
// Each job j: available at `release` r_j, `bytes` b_j to get through the link, and once they are
// through, at least `tail` q_j more before the whole run can end. However the link shares its
// bandwidth over time (max-min fair flows, any priority, any preemption), the run ends no earlier
// than
//
//   min over schedules of max_j (C_j + q_j),   C_j: when the last byte of j is through,
//
// and preemptive Jackson's rule (serve the waiting job with the largest tail; a newly released job
// may take over) reaches that minimum (Jackson 1955; Horn 1974, for 1 | r_j, pmtn | max C_j + q_j).
// Jobs with equal tails are served together: only the last of them matters to the maximum, so
// they drain as one pool of bytes and round once, as flows that share a link finish together.
//
// Rounding, as TransferTime and the flow model round: a drain of whole bytes is rounded up to a
// picosecond, a drain with a fraction of a byte (a route's share, a pool's rest after a preemption)
// too, from its exact bytes; at an efficiency below 1 the time is divided by it and rounded up
// again.
//
// Cost: O(n log n) for n jobs. Pure functions of their arguments; no shared state.
#pragma once

#include <vector>

#include "proto/units.h"

namespace moesim::sim {

// A link's bandwidth as data flows see it: `bandwidth` x `efficiency` (an NCCL protocol's share of
// the wire that is data, sim/network/nccl_model.h). Requires bandwidth > 0 and 0 < efficiency <= 1.
struct LinkDrain {
  Rate bandwidth;
  double efficiency = 1.0;

  // Time to drain `bytes` (rounded up to picoseconds, then / efficiency and up again).
  Duration Time(double bytes) const;
  // Bytes drained in `span` (no rounding: what the link moved while a drain was under way).
  double BytesIn(Duration span) const;
};

// `full`, a drain at a link's whole bandwidth, at `efficiency` of it: full / efficiency, rounded up
// to a picosecond (LinkDrain::Time's last rounding).
Duration AtEfficiency(Duration full, double efficiency);

struct LinkJob {
  Duration release;  // the earliest the job's first byte can enter the link
  double bytes = 0;  // what the job puts through this link (a transfer's bytes x its route share)
  Duration tail;     // at least this long after its last byte, before the run can end
};

// The least max_j (C_j + q_j) over every way the link can serve `jobs` (above); 0 for no jobs.
// Reorders `jobs`.
Duration LinkMakespan(std::vector<LinkJob>& jobs, const LinkDrain& drain);

}  // namespace moesim::sim
