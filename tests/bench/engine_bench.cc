// Event-engine benchmark (not a test): how many events per second the Simulation schedules and
// runs, and its peak memory, on three workloads. Prints a table; run a Release build:
//
//   cmake --build build --target moesim_bench_engine && build/tests/moesim_bench_engine [events]
//
//   bulk     schedule `events` events at uniformly random times in [0, 1 s), then Run():
//            the queue holds all of them at once (the worst case for heap depth and memory).
//   hold     the classic "hold" model: 1M events pending; each one, when it runs, schedules one
//            more at a random delay in [0, 1 us), until `events` have run. The queue size stays
//            fixed, as in a flow model where each running flow has one completion event pending.
//   cancel   as hold, but each event also cancels a random pending event and schedules a
//            replacement (a flow model re-solving rates reschedules completions): half the heap
//            entries become tombstones, exercising lazy cancel and compaction.
//   floor    bulk's times pushed into and popped from a bare std::priority_queue of (time,
//   sequence)
//            pairs: no callables, no cancel. What any binary-heap engine pays at best on this
//            machine at this moment; compare bulk against it when the machine is shared or noisy.
//
// Each workload runs in its own child process, so each row's peak RSS (getrusage ru_maxrss) is its
// own. Times are wall clock (steady_clock); the random times come from a fixed-seed mt19937_64.
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "sim/engine/engine.h"

namespace {

using moesim::bench::Clock;
using moesim::bench::PeakRssMiB;
using moesim::bench::Seconds;

using moesim::Duration;
using moesim::sim::EventId;
using moesim::sim::Simulation;
struct Row {
  const char* name;
  uint64_t scheduled = 0;
  uint64_t executed = 0;
  uint64_t cancelled = 0;
  double schedule_s = 0;  // time spent in the initial scheduling loop
  double run_s = 0;       // time spent in Run()
};

void Print(const Row& row) {
  const double total = row.schedule_s + row.run_s;
  fmt::print("{:<8} {:12} {:12} {:10} {:>10.3f} {:>10.3f} {:>14.0f} {:>10.0f}\n", row.name,
             row.scheduled, row.executed, row.cancelled, row.schedule_s, row.run_s,
             static_cast<double>(row.executed) / total, PeakRssMiB());
  std::fflush(stdout);
}

// A small payload per event, as a real event carries (a flow id, a pointer to its model).
struct Sink {
  uint64_t checksum = 0;
};

Row Bulk(uint64_t events) {
  Simulation sim;
  Sink& sink = sim.Emplace<Sink>();
  std::mt19937_64 rng(1);
  const auto start = Clock::now();
  for (uint64_t i = 0; i < events; ++i) {
    const auto time = Duration::Picoseconds(static_cast<int64_t>(rng() % 1'000'000'000'000));
    sim.ScheduleAt(time, [&sink, i](Simulation& s) {
      sink.checksum += i ^ static_cast<uint64_t>(s.now().picoseconds());
    });
  }
  Row row{"bulk"};
  row.schedule_s = Seconds(start);
  const auto run_start = Clock::now();
  sim.Run();
  row.run_s = Seconds(run_start);
  row.scheduled = sim.scheduled_count();
  row.executed = sim.executed_count();
  fmt::print(stderr, "(bulk checksum {})\n", sink.checksum);
  return row;
}

Row Floor(uint64_t events) {
  using Key = std::pair<int64_t, uint64_t>;  // (time ps, sequence)
  std::priority_queue<Key, std::vector<Key>, std::greater<Key>> queue;
  std::mt19937_64 rng(1);
  const auto start = Clock::now();
  for (uint64_t i = 0; i < events; ++i) {
    queue.emplace(static_cast<int64_t>(rng() % 1'000'000'000'000), i);
  }
  Row row{"floor"};
  row.schedule_s = Seconds(start);
  const auto run_start = Clock::now();
  uint64_t checksum = 0;
  while (!queue.empty()) {
    checksum += queue.top().second ^ static_cast<uint64_t>(queue.top().first);
    queue.pop();
  }
  row.run_s = Seconds(run_start);
  row.scheduled = events;
  row.executed = events;
  fmt::print(stderr, "(floor checksum {})\n", checksum);
  return row;
}

// Shared by hold and cancel: `pending` events in flight, `events` executed in total.
struct Hold {
  std::mt19937_64 rng{2};
  uint64_t budget = 0;  // events still to schedule
  bool cancel = false;
  std::vector<EventId> ids;  // a window of recent ids to cancel from

  Duration Delay() { return Duration::Picoseconds(static_cast<int64_t>(rng() % 1'000'000)); }

  void Next(Simulation& sim) {
    if (budget == 0) return;
    --budget;
    const EventId id = sim.ScheduleAfter(Delay(), [this](Simulation& s) { OnEvent(s); });
    if (cancel) ids[id.sequence() % ids.size()] = id;
  }

  void OnEvent(Simulation& sim) {
    if (cancel && sim.Cancel(ids[rng() % ids.size()])) Next(sim);  // replace the cancelled one
    Next(sim);
  }
};

Row RunHold(const char* name, uint64_t events, uint64_t pending, bool cancel) {
  Simulation sim;
  Hold& hold = sim.Emplace<Hold>();
  hold.budget = events;
  hold.cancel = cancel;
  hold.ids.resize(pending);
  const auto start = Clock::now();
  for (uint64_t i = 0; i < pending; ++i) hold.Next(sim);
  Row row{name};
  row.schedule_s = Seconds(start);
  const auto run_start = Clock::now();
  sim.Run();
  row.run_s = Seconds(run_start);
  row.scheduled = sim.scheduled_count();
  row.executed = sim.executed_count();
  row.cancelled = sim.cancelled_count();
  return row;
}

// Runs `work` in a child process so its peak RSS is its own; the child prints its row.
template <typename Work>
bool InChild(Work work) {
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    Print(work());
    std::_Exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t events = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 10'000'000;
  if (events == 0) {
    fmt::print(stderr, "usage: {} [events > 0, default 10000000]\n", argv[0]);
    return 2;
  }
  const uint64_t pending = std::min<uint64_t>(events, 1'000'000);
  fmt::print("{:<8} {:>12} {:>12} {:>10} {:>10} {:>10} {:>14} {:>10}\n", "workload", "scheduled",
             "executed", "cancelled", "sched s", "run s", "events/s", "RSS MiB");
  std::fflush(stdout);
  bool ok = InChild([&] { return Bulk(events); });
  ok = InChild([&] { return RunHold("hold", events, pending, false); }) && ok;
  ok = InChild([&] { return RunHold("cancel", events, pending, true); }) && ok;
  ok = InChild([&] { return Floor(events); }) && ok;
  fmt::print(stderr, "(events/s = executed / (sched s + run s); hold and cancel keep {} pending)\n",
             pending);
  return ok ? 0 : 1;
}
