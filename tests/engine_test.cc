#include "sim/engine/engine.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "sim/engine/event_heap.h"

namespace moesim::sim {
namespace {

Duration Ps(int64_t ps) { return Duration::Picoseconds(ps); }

// What ran, in order: (time in ps, label).
struct Run {
  int64_t time_ps;
  int label;
  bool operator==(const Run&) const = default;
};
using Trace = std::vector<Run>;

// An event that appends (now, label) to the trace when it runs.
EventFn Record(Trace* trace, int label) {
  return [trace, label](Simulation& sim) { trace->push_back({sim.now().picoseconds(), label}); };
}

std::vector<int> Labels(const Trace& trace) {
  std::vector<int> labels;
  for (const Run& run : trace) labels.push_back(run.label);
  return labels;
}

// No event is lost: every scheduled event has run, been cancelled, or is still pending.
void CheckCounts(const Simulation& sim) {
  CHECK(sim.scheduled_count() ==
        sim.executed_count() + sim.cancelled_count() + sim.pending_count());
}

}  // namespace

TEST_CASE("Events run in order of time whatever the order they were scheduled in", "[engine]") {
  Simulation sim;
  Trace trace;
  sim.ScheduleAt(Ps(30), Record(&trace, 3));
  sim.ScheduleAt(Ps(10), Record(&trace, 1));
  sim.ScheduleAt(Ps(20), Record(&trace, 2));
  sim.ScheduleAt(Ps(0), Record(&trace, 0));  // at now() itself: allowed
  sim.Run();
  // Sorted by time: 0, 10, 20, 30 ps, each event seeing its own time as now().
  CHECK(trace == Trace{{0, 0}, {10, 1}, {20, 2}, {30, 3}});
  // After Run, now() is the time of the last event.
  CHECK(sim.now() == Ps(30));
  CHECK(sim.executed_count() == 4);  // every event ran once
  CHECK(sim.pending_count() == 0);   // Run drains the queue
}

TEST_CASE("Events at equal times run in the order they were scheduled", "[engine]") {
  Simulation sim;
  Trace trace;
  for (int label = 0; label < 100; ++label) sim.ScheduleAt(Ps(7), Record(&trace, label));
  sim.ScheduleAt(Ps(5), Record(&trace, -1));
  sim.Run();
  // The 5 ps event first, then the hundred 7 ps events in insertion order 0..99 (a heap alone
  // would not keep that order; the sequence number does).
  std::vector<int> expected{-1};
  for (int label = 0; label < 100; ++label) expected.push_back(label);
  CHECK(Labels(trace) == expected);
}

TEST_CASE("Events scheduled from events run after what is already queued for their time",
          "[engine]") {
  Simulation sim;
  Trace trace;
  sim.ScheduleAt(Ps(10), [&trace](Simulation& s) {
    trace.push_back({s.now().picoseconds(), 1});
    s.ScheduleAfter(Ps(0), Record(&trace, 4));   // same time: after 2 and 3, already queued
    s.ScheduleAt(Ps(15), Record(&trace, 5));     // later, before the 20 ps event
    s.ScheduleAfter(Ps(10), Record(&trace, 7));  // 20 ps: after 6, which was queued first
  });
  sim.ScheduleAt(Ps(10), Record(&trace, 2));
  sim.ScheduleAt(Ps(10), Record(&trace, 3));
  sim.ScheduleAt(Ps(20), Record(&trace, 6));
  sim.Run();
  CHECK(trace == Trace{{10, 1}, {10, 2}, {10, 3}, {10, 4}, {15, 5}, {20, 6}, {20, 7}});
  CHECK(sim.scheduled_count() == 7);  // 4 from the test, 3 from the first event
  CHECK(sim.executed_count() == 7);   // all of them ran
}

TEST_CASE("Cancel before the run skips the event and cancel after the run or twice is a no-op",
          "[engine]") {
  Simulation sim;
  Trace trace;
  const EventId a = sim.ScheduleAt(Ps(10), Record(&trace, 1));
  const EventId b = sim.ScheduleAt(Ps(20), Record(&trace, 2));
  const EventId c = sim.ScheduleAt(Ps(30), Record(&trace, 3));
  CHECK(a != b);  // each event gets its own id

  SECTION("cancel before run") {
    CHECK(sim.Cancel(b));  // b was pending: cancelled
    CHECK(sim.pending_count() == 2);
    CHECK(sim.cancelled_count() == 1);
    sim.Run();
    CHECK(Labels(trace) == std::vector<int>{1, 3});  // b never runs
    CHECK(sim.executed_count() == 2);
    CHECK(sim.cancelled_count() == 1);
  }
  SECTION("cancel twice") {
    CHECK(sim.Cancel(b));               // pending: cancelled
    CHECK_FALSE(sim.Cancel(b));         // already cancelled: no-op
    CHECK(sim.cancelled_count() == 1);  // counted once
    sim.Run();
    CHECK(Labels(trace) == std::vector<int>{1, 3});  // b never runs
  }
  SECTION("cancel after run") {
    sim.RunUntil(Ps(10));
    CHECK_FALSE(sim.Cancel(a));  // a ran at 10 ps: nothing to cancel
    CHECK(sim.cancelled_count() == 0);
    sim.Run();
    CHECK(Labels(trace) == std::vector<int>{1, 2, 3});  // nothing was cancelled
  }
  SECTION("an event cancels a later one and cannot cancel itself") {
    Simulation s2;
    Trace t2;
    const EventId later = s2.ScheduleAt(Ps(5), Record(&t2, 9));
    EventId self;
    bool cancelled_later = false;
    bool cancelled_self = true;
    self = s2.ScheduleAt(Ps(1), [&](Simulation& s) {
      cancelled_later = s.Cancel(later);  // pending: true
      cancelled_self = s.Cancel(self);    // running, no longer pending: false
    });
    s2.Run();
    CHECK(cancelled_later);
    CHECK_FALSE(cancelled_self);
    CHECK(t2.empty());  // the 5 ps event was cancelled before its time
  }
  SECTION("ids that name no event of this simulation") {
    CHECK_FALSE(sim.Cancel(EventId()));  // a default id names no event
    Simulation other;
    other.ScheduleAt(Ps(1), [](Simulation&) {});
    other.ScheduleAt(Ps(1), [](Simulation&) {});
    // The third event of `other`: same sequence (3) and slot as c here, but not c.
    const EventId foreign = other.ScheduleAt(Ps(1), [](Simulation&) {});
    CHECK(foreign.sequence() == c.sequence());
    CHECK_FALSE(sim.Cancel(foreign));  // names no event of sim: no-op
    CHECK(other.Cancel(foreign));      // still pending in its own Simulation
    sim.Run();
    CHECK(Labels(trace) == std::vector<int>{1, 2, 3});  // c ran
  }
  CheckCounts(sim);
}

TEST_CASE("RunUntil runs events at t and keeps later ones pending", "[engine]") {
  Simulation sim;
  Trace trace;
  sim.ScheduleAt(Ps(99), Record(&trace, 1));
  sim.ScheduleAt(Ps(100), Record(&trace, 2));
  sim.ScheduleAt(Ps(101), Record(&trace, 3));
  sim.RunUntil(Ps(100));
  // 99 and exactly 100 run (time <= t); 101 stays.
  CHECK(Labels(trace) == std::vector<int>{1, 2});
  CHECK(sim.pending_count() == 1);  // the 101 ps event
  CHECK(sim.now() == Ps(100));      // now == t after RunUntil(t)

  sim.RunUntil(Ps(100));  // t == now: allowed; nothing is due, so nothing runs
  CHECK(sim.executed_count() == 2);
  CHECK(sim.now() == Ps(100));

  // An event that schedules another within the window: both run.
  sim.ScheduleAt(Ps(100), [&trace](Simulation& s) {
    trace.push_back({s.now().picoseconds(), 4});
    s.ScheduleAt(Ps(150), Record(&trace, 5));
  });
  sim.RunUntil(Ps(200));
  // 100 (4), 101 (3), 150 (5) in time order.
  CHECK(trace == Trace{{99, 1}, {100, 2}, {100, 4}, {101, 3}, {150, 5}});
  CHECK(sim.now() == Ps(200));  // the clock moves to t although the last event ran at 150

  // Relative scheduling counts from the new now(): 200 + 5 = 205 ps.
  sim.ScheduleAfter(Ps(5), Record(&trace, 6));
  CHECK(sim.Step());  // one event ran
  CHECK(trace.back() == Run{205, 6});
  CHECK_FALSE(sim.Step());  // queue empty: nothing ran
  CheckCounts(sim);
}

TEST_CASE("Scheduling in the past and moving time back throw logic_error", "[engine]") {
  Simulation sim;
  sim.RunUntil(Ps(1000));
  // 999 ps < now = 1000 ps: a programming error, never silently reordered.
  CHECK_THROWS_AS(sim.ScheduleAt(Ps(999), [](Simulation&) {}), std::logic_error);
  CHECK_THROWS_WITH(sim.ScheduleAt(Ps(999), [](Simulation&) {}),
                    Catch::Contains("before now") && Catch::Contains("999 ps"));
  CHECK_THROWS_AS(sim.ScheduleAfter(Ps(-1), [](Simulation&) {}), std::logic_error);
  CHECK_THROWS_AS(sim.RunUntil(Ps(999)), std::logic_error);
  // int64 max ps minus 1000 fits in no delay after now = 1000 ps.
  CHECK_THROWS_AS(sim.ScheduleAfter(Duration::Picoseconds(INT64_MAX - 999), [](Simulation&) {}),
                  std::logic_error);
  CHECK_THROWS_AS(sim.ScheduleAt(Ps(2000), EventFn()), std::invalid_argument);
  // Nothing was scheduled by the failed calls.
  CHECK(sim.scheduled_count() == 0);
  CHECK(sim.now() == Ps(1000));
}

TEST_CASE("The run loop is not reentrant and survives an event that throws", "[engine]") {
  Simulation sim;
  sim.ScheduleAt(Ps(1), [](Simulation& s) { s.Run(); });
  CHECK_THROWS_AS(sim.Run(), std::logic_error);  // Run from inside an event
  sim.ScheduleAt(Ps(2), [](Simulation&) { throw std::runtime_error("model failed"); });
  CHECK_THROWS_AS(sim.Run(), std::runtime_error);  // propagates to the caller
  Trace trace;
  sim.ScheduleAt(Ps(3), Record(&trace, 3));
  sim.Run();  // the engine is usable again: the running flag was reset
  CHECK(trace == Trace{{3, 3}});
  CHECK(sim.executed_count() == 3);  // both failing events count as executed (they ran)
  CheckCounts(sim);
}

TEST_CASE("Two simulations side by side do not interfere", "[engine]") {
  Simulation a;
  Simulation b;
  Trace ta;
  Trace tb;
  a.ScheduleAt(Ps(10), Record(&ta, 1));
  b.ScheduleAt(Ps(5), Record(&tb, 1));
  const EventId a2 = a.ScheduleAt(Ps(20), Record(&ta, 2));
  b.ScheduleAt(Ps(50), Record(&tb, 2));
  // a2 and b's second event have the same sequence (2) and slot, but a2 names an event of a only.
  a.RunUntil(Ps(15));
  CHECK(b.now() == Ps(0));  // b's clock did not move
  CHECK(b.pending_count() == 2);
  CHECK(a.Cancel(a2));
  b.Run();
  a.Run();
  CHECK(ta == Trace{{10, 1}});          // a2 cancelled
  CHECK(tb == Trace{{5, 1}, {50, 2}});  // b untouched by a's cancel
  CHECK(a.now() == Ps(15));             // a's last RunUntil; its only remaining event was cancelled
  CHECK(b.now() == Ps(50));
  CheckCounts(a);
  CheckCounts(b);
}

TEST_CASE("A simulation owns its models and events can hold move-only state", "[engine]") {
  int destroyed = 0;
  struct Counter {
    explicit Counter(int* destroyed_count) : destroyed(destroyed_count) {}
    ~Counter() { ++*destroyed; }
    int* destroyed;
    int hits = 0;
  };
  {
    Simulation sim;
    Counter& counter = sim.Emplace<Counter>(&destroyed);
    auto payload = std::make_unique<int>(41);
    sim.ScheduleAt(Ps(1), [&counter, p = std::move(payload)](Simulation&) {
      counter.hits += *p + 1;  // 41 + 1
    });
    sim.ScheduleAt(Ps(2), [&counter, n = 0](Simulation&) mutable { counter.hits += ++n; });
    sim.Run();
    CHECK(counter.hits == 43);  // 42 from the first event, 1 from the second
    // A pending event's callable that refers to the model is destroyed before the model.
    sim.ScheduleAt(Ps(3), [&counter](Simulation&) { ++counter.hits; });
    CHECK(destroyed == 0);
  }
  CHECK(destroyed == 1);  // the model died with its Simulation
}

TEST_CASE("MoveOnlyFunction wraps move-only callables and is empty when moved from", "[engine]") {
  MoveOnlyFunction<int(int)> add = [bias = std::make_unique<int>(2)](int x) { return x + *bias; };
  REQUIRE(add);
  CHECK(add(40) == 42);  // 40 + 2
  MoveOnlyFunction<int(int)> moved = std::move(add);
  CHECK(moved(1) == 3);  // the callable moved along with its state
  CHECK_FALSE(add);      // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  CHECK_THROWS_AS(add(1), std::bad_function_call);
  int (*null_fn)(int) = nullptr;
  CHECK_FALSE(MoveOnlyFunction<int(int)>(null_fn));            // a null function pointer is empty
  MoveOnlyFunction<void(int)> drop = [](int x) { return x; };  // the result is dropped for void
  drop(1);
  static_assert(!std::is_copy_constructible_v<MoveOnlyFunction<void()>>);
}

namespace {

// Random pushes, pops and erasures on a DAryHeap of the given arity, checked against a std::set
// (ordered, so its begin() is the least element) after every operation.
template <size_t Arity>
void CheckHeapAgainstSet(uint64_t seed) {
  using Key = std::pair<int, int>;  // (value with many ties, unique id): a total order
  DAryHeap<Key, std::less<Key>, Arity> heap;
  std::set<Key> reference;
  std::mt19937_64 rng(seed);
  int next_id = 0;
  for (int op = 0; op < 20000; ++op) {
    const uint64_t kind = rng() % 100;
    if (kind < 55) {
      const Key key{static_cast<int>(rng() % 100), next_id++};
      heap.Push(key);
      reference.insert(key);
    } else if (kind < 99) {
      if (reference.empty()) continue;
      REQUIRE(heap.top() == *reference.begin());  // the least element is on top
      heap.Pop();
      reference.erase(reference.begin());
    } else {  // drop every key with an odd value, then the heap must still be a heap
      const auto odd = [](const Key& k) { return k.first % 2 == 1; };
      heap.EraseIf(odd);
      std::erase_if(reference, odd);
    }
    REQUIRE(heap.size() == reference.size());
    if (!reference.empty()) REQUIRE(heap.top() == *reference.begin());
  }
  // Draining gives the reference's sorted order exactly.
  std::vector<Key> drained;
  while (!heap.empty()) {
    drained.push_back(heap.top());
    heap.Pop();
  }
  CHECK(drained == std::vector<Key>(reference.begin(), reference.end()));
}

}  // namespace

TEST_CASE("DAryHeap pops in order for every arity against a std::set", "[engine]") {
  // The engine uses one arity; the same checks run over several, as ns-3 runs one suite over every
  // scheduler, so changing kHeapArity cannot break ordering unnoticed.
  for (uint64_t seed : {1u, 2u}) {
    CheckHeapAgainstSet<2>(seed);
    CheckHeapAgainstSet<3>(seed);
    CheckHeapAgainstSet<4>(seed);
    CheckHeapAgainstSet<8>(seed);
  }
}

namespace {

// A random workload: events that record themselves, and some that schedule further events or
// cancel earlier ones. Uses raw mt19937_64 output (its sequence is fixed by the standard), not
// std::uniform_*_distribution (whose output varies between standard libraries).
Trace RandomWorkload(uint64_t seed) {
  Simulation sim;
  Trace trace;
  std::mt19937_64 rng(seed);
  std::vector<EventId> ids;
  for (int label = 0; label < 5000; ++label) {
    const int64_t time = static_cast<int64_t>(rng() % 1000);  // many ties on purpose
    if (rng() % 4 == 0) {
      const int64_t delay = static_cast<int64_t>(rng() % 50);
      ids.push_back(sim.ScheduleAt(Ps(time), [&trace, &ids, label, delay](Simulation& s) {
        trace.push_back({s.now().picoseconds(), label});
        s.ScheduleAfter(Ps(delay), Record(&trace, 100000 + label));
        if (label % 2 == 0 && !ids.empty()) s.Cancel(ids[static_cast<size_t>(label) % ids.size()]);
      }));
    } else {
      ids.push_back(sim.ScheduleAt(Ps(time), Record(&trace, label)));
    }
    if (rng() % 10 == 0) sim.Cancel(ids[rng() % ids.size()]);
  }
  sim.Run();
  CheckCounts(sim);
  return trace;
}

}  // namespace

TEST_CASE("Determinism: the same random workload twice gives the identical trace", "[engine]") {
  const Trace first = RandomWorkload(42);
  const Trace second = RandomWorkload(42);
  REQUIRE(first.size() > 4000);        // most of the 5000 events and their children ran
  CHECK(first == second);              // bit-identical: same times, same order
  CHECK(RandomWorkload(43) != first);  // and the check is not vacuous: another seed differs
}

TEST_CASE("Randomized schedule and cancel and run against a stable-sorted reference", "[engine]") {
  // The reference: pending events in a vector in insertion order; running up to t stable-sorts
  // them by time and takes those <= t, which is exactly the (time, insertion) order.
  struct Pending {
    int64_t time;
    int label;
    EventId id;
  };
  for (uint64_t seed : {1u, 2u, 3u}) {
    Simulation sim;
    Trace actual;
    Trace expected;
    std::vector<Pending> reference;
    std::vector<EventId> all_ids;  // every id ever issued, to cancel at random (pending or not)
    std::mt19937_64 rng(seed);
    int next_label = 0;
    for (int op = 0; op < 4000; ++op) {
      const uint64_t kind = rng() % 10;
      if (kind < 6) {  // schedule, absolute or relative, with ties likely
        const int64_t delay = static_cast<int64_t>(rng() % 64);
        const int label = next_label++;
        const EventId id = rng() % 2 == 0
                               ? sim.ScheduleAfter(Ps(delay), Record(&actual, label))
                               : sim.ScheduleAt(sim.now() + Ps(delay), Record(&actual, label));
        reference.push_back({sim.now().picoseconds() + delay, label, id});
        all_ids.push_back(id);
      } else if (kind < 8) {  // cancel any id ever issued
        if (all_ids.empty()) continue;
        const EventId id = all_ids[rng() % all_ids.size()];
        const auto it = std::find_if(reference.begin(), reference.end(),
                                     [&](const Pending& p) { return p.id == id; });
        const bool was_pending = it != reference.end();
        if (was_pending) reference.erase(it);
        // True exactly when the reference still held the event.
        CHECK(sim.Cancel(id) == was_pending);
      } else {  // run up to a random time ahead
        const int64_t until = sim.now().picoseconds() + static_cast<int64_t>(rng() % 48);
        std::stable_sort(reference.begin(), reference.end(),
                         [](const Pending& a, const Pending& b) { return a.time < b.time; });
        auto split = std::find_if(reference.begin(), reference.end(),
                                  [&](const Pending& p) { return p.time > until; });
        for (auto it = reference.begin(); it != split; ++it) {
          expected.push_back({it->time, it->label});
        }
        reference.erase(reference.begin(), split);
        sim.RunUntil(Ps(until));
        CHECK(sim.now() == Ps(until));
      }
      // Pending agrees with the reference after every operation, and nothing is lost.
      REQUIRE(sim.pending_count() == reference.size());
      REQUIRE(sim.scheduled_count() ==
              sim.executed_count() + sim.cancelled_count() + sim.pending_count());
    }
    std::stable_sort(reference.begin(), reference.end(),
                     [](const Pending& a, const Pending& b) { return a.time < b.time; });
    for (const Pending& p : reference) expected.push_back({p.time, p.label});
    sim.Run();
    CHECK(actual == expected);                       // same events, same times, same order
    CHECK(sim.executed_count() == expected.size());  // each counted once
    CHECK(sim.pending_count() == 0);                 // Run drains the queue
  }
}

TEST_CASE("Counting invariant holds through mass cancellation and heap compaction", "[engine]") {
  Simulation sim;
  Trace trace;
  std::vector<EventId> ids;
  // 10,000 events at times 9999..0 (reverse order), then cancel all but every tenth: 9,000
  // tombstones, enough to trigger compaction (>= 1024 and more than half the heap).
  for (int i = 0; i < 10000; ++i) ids.push_back(sim.ScheduleAt(Ps(9999 - i), Record(&trace, i)));
  for (int i = 0; i < 10000; ++i) {
    if (i % 10 != 0) CHECK(sim.Cancel(ids[static_cast<size_t>(i)]));
  }
  // 10,000 scheduled = 0 executed + 9,000 cancelled + 1,000 pending.
  CHECK(sim.scheduled_count() == 10000);
  CHECK(sim.cancelled_count() == 9000);
  CHECK(sim.pending_count() == 1000);
  // Slots freed by cancellation are reused (last in, first out): `fresh` takes the slot of
  // ids[9999], the last one cancelled, and that old id must not cancel the new event.
  const EventId fresh = sim.ScheduleAt(Ps(5), Record(&trace, -1));
  CHECK_FALSE(sim.Cancel(ids[9999]));  // cancelled before: no-op although its slot is reused
  sim.RunUntil(Ps(5000));
  CheckCounts(sim);
  sim.Run();
  CHECK_FALSE(sim.Cancel(fresh));  // ran at 5 ps
  // Survivors are i = 9990, 9980, ..., 0 at times 9, 19, ..., 9999, plus the fresh one at 5 ps.
  REQUIRE(trace.size() == 1001);
  CHECK(trace.front() == Run{5, -1});
  for (size_t k = 1; k < trace.size(); ++k) {
    const int i = 10000 - 10 * static_cast<int>(k);
    CHECK(trace[k] == Run{9999 - i, i});
  }
  // Every event accounted for: 10,001 scheduled = 1,001 executed + 9,000 cancelled + 0 pending.
  CHECK(sim.executed_count() == 1001);
  CheckCounts(sim);
}

}  // namespace moesim::sim
