// sim/engine/ owns the discrete-event engine: the clock, the event heap, the completion queue and
// the move-only callable events carry. It may include proto/ only, and nothing of the models that
// run on it. (This header is the part's main one.)
//
// The discrete-event engine: one Simulation owns the clock, the event queue and the models.
//
//   Simulation sim;
//   sim.ScheduleAfter(Duration::Nanoseconds(5), [](Simulation& s) {
//     s.ScheduleAfter(Duration::Nanoseconds(1), [](Simulation&) { /* runs at 6 ns */ });
//   });
//   EventId late = sim.ScheduleAt(Duration::Nanoseconds(9), [](Simulation&) { /* never runs */ });
//   sim.Cancel(late);                        // lazy: marked now, skipped when its time comes
//   sim.RunUntil(Duration::Nanoseconds(5));  // runs the 5 ns event; now() == 5 ns
//   sim.Run();                               // runs the 6 ns event; now() == 6 ns
//
// Invariants (ns-3's scheduler contract, default-simulator-impl.cc):
//   - Time is Duration, integer picoseconds; nothing here touches floating point.
//   - Events run in order of (time, insertion sequence). Events at the same time run in the order
//     they were scheduled, including events scheduled *by* an event for the current time: they run
//     after everything already queued for that time. The same schedule calls give the same run,
//     bit for bit.
//   - now() never decreases. Scheduling before now() is a programming error and throws
//     std::logic_error; the engine never reorders or clamps such an event.
//   - No event is lost: scheduled_count() == executed_count() + cancelled_count() + pending_count()
//     at every point between events.
//
// Thread-safety: a Simulation is used by one thread at a time (events run on the thread that calls
// Run/RunUntil/Step). There is no shared or global state, so different Simulations may run on
// different threads at once.
//
// Costs: O(log n) per schedule and per executed event (a d-ary heap keyed on (time, sequence),
// sim/engine/event_heap.h), with one heap allocation for the callable. Cancel is O(1); the
// cancelled entry stays in the heap until its time comes, or until cancelled entries outnumber live
// ones and the heap is compacted.
#pragma once

#include <compare>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "proto/units.h"
#include "sim/engine/event_heap.h"
#include "sim/engine/move_only_function.h"

namespace moesim::sim {

class Simulation;

// What an event does when its time comes. Any callable `void(Simulation&)`, move-only allowed.
using EventFn = MoveOnlyFunction<void(Simulation&)>;

// Names one scheduled event of one Simulation, to cancel it. A default-constructed EventId names no
// event. An id is only meaningful while its Simulation lives.
class EventId {
 public:
  constexpr EventId() = default;

  // The event's insertion number: 1 for the first event a Simulation schedules, then 2, 3, ...;
  // 0 for a default-constructed id. Events at equal times run in increasing sequence.
  constexpr uint64_t sequence() const { return sequence_; }

  constexpr bool operator==(const EventId&) const = default;

 private:
  friend class Simulation;
  constexpr EventId(const Simulation* owner, uint64_t sequence, uint32_t slot)
      : owner_(owner), sequence_(sequence), slot_(slot) {}

  const Simulation* owner_ = nullptr;  // which Simulation issued it (compared, never dereferenced)
  uint64_t sequence_ = 0;
  uint32_t slot_ = 0;  // where the engine keeps the event's callable while it is pending
};

class Simulation {
 public:
  Simulation() = default;
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  // The current simulated time: the time of the event running, or of the last one run, or the t of
  // the last RunUntil(t), whichever is latest. Starts at zero.
  Duration now() const { return now_; }

  // Schedules `fn` to run at absolute time `time`. Requires time >= now() (else std::logic_error)
  // and a non-empty fn (else std::invalid_argument).
  EventId ScheduleAt(Duration time, EventFn fn);
  // Schedules `fn` to run `delay` after now(). Requires delay >= 0 and now() + delay to fit in
  // int64 picoseconds (else std::logic_error).
  EventId ScheduleAfter(Duration delay, EventFn fn);

  // Cancels a pending event: it will not run, and its callable is destroyed now. Returns true if
  // the event was pending; false (and does nothing) if it already ran, was already cancelled, or
  // `id` names no event of this Simulation.
  bool Cancel(EventId id);

  // Runs events in order until none is pending.
  void Run();
  // Runs every event with time <= t (including those that these schedule up to t), then sets
  // now() = t. Requires t >= now() (else std::logic_error).
  void RunUntil(Duration t);
  // Runs the next pending event, if any. Returns whether one ran.
  bool Step();

  // Counts since construction. scheduled == executed + cancelled + pending (see the invariants).
  uint64_t scheduled_count() const { return next_sequence_ - 1; }
  uint64_t executed_count() const { return executed_; }
  uint64_t cancelled_count() const { return cancelled_; }
  // Events scheduled that have neither run nor been cancelled.
  uint64_t pending_count() const { return heap_.size() - tombstones_; }

  // Constructs a model that the Simulation owns until it is destroyed, and returns it. Models are
  // destroyed after every pending event's callable, so a callable may hold a plain reference to a
  // model; a model's destructor must not call into the Simulation.
  template <typename Model, typename... Args>
  Model& Emplace(Args&&... args) {
    auto box = std::make_unique<ModelBox<Model>>(std::forward<Args>(args)...);
    Model& model = box->model;
    models_.push_back(std::move(box));
    return model;
  }

 private:
  // One entry of the heap. (time, sequence) is unique, so the order of events is total and does not
  // depend on how the heap breaks ties.
  struct Entry {
    Duration time;
    uint64_t sequence = 0;
    uint32_t slot = 0;
  };
  struct Earlier {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.time != b.time ? a.time < b.time : a.sequence < b.sequence;
    }
  };
  // Children per heap node: 8 measured fastest with millions pending (see sim/engine/event_heap.h).
  static constexpr size_t kHeapArity = 8;
  // Where a pending event's callable waits. A slot is free when fn is empty; a heap entry whose
  // slot is free or holds another sequence is a cancelled event (a tombstone).
  struct Slot {
    EventFn fn;
    uint64_t sequence = 0;
  };
  struct ModelBase {
    virtual ~ModelBase() = default;
  };
  template <typename Model>
  struct ModelBox final : ModelBase {
    template <typename... Args>
    explicit ModelBox(Args&&... args) : model(std::forward<Args>(args)...) {}
    Model model;
  };

  // Removes the earliest entry that is not a tombstone and returns it with its callable, if there
  // is one with time <= limit. Tombstones met on the way are dropped.
  bool PopNext(Duration limit, Entry* entry, EventFn* fn);
  // Runs one popped event: advances the clock (checking it never goes back) and calls fn.
  void Execute(const Entry& entry, EventFn fn);
  void FreeSlot(uint32_t slot);
  // Drops every tombstone from the heap and rebuilds it: O(n), done when tombstones outnumber live
  // events, so amortised O(1) per cancel.
  void Compact();
  // Throws std::logic_error if an event is running: the run loop is not reentrant.
  void CheckNotRunning(const char* what) const;

  // Declared first so that it is destroyed last: pending callables may refer to models.
  std::vector<std::unique_ptr<ModelBase>> models_;

  Duration now_;
  uint64_t next_sequence_ = 1;  // sequence 0 is the default EventId's, which names no event
  uint64_t executed_ = 0;
  uint64_t cancelled_ = 0;
  uint64_t tombstones_ = 0;  // cancelled entries still in heap_
  bool running_ = false;     // an event's callable is on the stack

  DAryHeap<Entry, Earlier, kHeapArity> heap_;  // earliest (time, sequence) on top
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
};

}  // namespace moesim::sim
