#include "sim/engine/engine.h"

#include <limits>
#include <stdexcept>
#include <string>

namespace moesim::sim {
namespace {

// Below this many tombstones the heap is never compacted: rebuilding a small heap saves nothing.
constexpr uint64_t kMinTombstonesToCompact = 1024;

constexpr Duration kEndOfTime = Duration::Picoseconds(std::numeric_limits<int64_t>::max());

std::string Ps(Duration t) { return std::to_string(t.picoseconds()) + " ps"; }

// Sets running to true for the lifetime of the guard, and back to false even if an event throws.
class RunningGuard {
 public:
  explicit RunningGuard(bool* running) : running_(running) { *running_ = true; }
  RunningGuard(const RunningGuard&) = delete;
  RunningGuard& operator=(const RunningGuard&) = delete;
  ~RunningGuard() { *running_ = false; }

 private:
  bool* running_;
};

}  // namespace

EventId Simulation::ScheduleAt(Duration time, EventFn fn) {
  if (time < now_) {
    throw std::logic_error("Simulation::ScheduleAt: time " + Ps(time) + " is before now (" +
                           Ps(now_) + "); an event cannot be scheduled in the past");
  }
  if (!fn) throw std::invalid_argument("Simulation::ScheduleAt: the event's callable is empty");

  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    if (slots_.size() > std::numeric_limits<uint32_t>::max()) {
      throw std::length_error("Simulation::ScheduleAt: more than 2^32 events pending");
    }
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  const uint64_t sequence = next_sequence_++;
  slots_[slot].fn = std::move(fn);
  slots_[slot].sequence = sequence;
  heap_.Push(Entry{time, sequence, slot});
  return EventId(this, sequence, slot);
}

EventId Simulation::ScheduleAfter(Duration delay, EventFn fn) {
  if (delay < Duration()) {
    throw std::logic_error("Simulation::ScheduleAfter: delay " + Ps(delay) +
                           " is negative; an event cannot be scheduled in the past");
  }
  int64_t time;
  if (__builtin_add_overflow(now_.picoseconds(), delay.picoseconds(), &time)) {
    throw std::logic_error("Simulation::ScheduleAfter: now (" + Ps(now_) + ") + delay (" +
                           Ps(delay) + ") overflows int64 picoseconds");
  }
  return ScheduleAt(Duration::Picoseconds(time), std::move(fn));
}

bool Simulation::Cancel(EventId id) {
  if (id.owner_ != this || id.slot_ >= slots_.size()) return false;
  Slot& slot = slots_[id.slot_];
  if (!slot.fn || slot.sequence != id.sequence_) return false;  // ran, cancelled, or not ours
  FreeSlot(id.slot_);
  ++cancelled_;
  ++tombstones_;
  if (tombstones_ >= kMinTombstonesToCompact && tombstones_ * 2 > heap_.size()) Compact();
  return true;
}

void Simulation::Run() {
  CheckNotRunning("Run");
  Entry entry{};
  EventFn fn;
  while (PopNext(kEndOfTime, &entry, &fn)) Execute(entry, std::move(fn));
  // Every event ever scheduled has now run or been cancelled: none was lost on the way.
  if (executed_ + cancelled_ != scheduled_count() || tombstones_ != 0) {
    throw std::logic_error(
        "Simulation::Run: event count mismatch: " + std::to_string(scheduled_count()) +
        " scheduled, " + std::to_string(executed_) + " executed, " + std::to_string(cancelled_) +
        " cancelled");
  }
}

void Simulation::RunUntil(Duration t) {
  CheckNotRunning("RunUntil");
  if (t < now_) {
    throw std::logic_error("Simulation::RunUntil: time " + Ps(t) + " is before now (" + Ps(now_) +
                           "); time cannot go backwards");
  }
  Entry entry{};
  EventFn fn;
  while (PopNext(t, &entry, &fn)) Execute(entry, std::move(fn));
  now_ = t;
}

bool Simulation::Step() {
  CheckNotRunning("Step");
  Entry entry{};
  EventFn fn;
  if (!PopNext(kEndOfTime, &entry, &fn)) return false;
  Execute(entry, std::move(fn));
  return true;
}

bool Simulation::PopNext(Duration limit, Entry* entry, EventFn* fn) {
  while (!heap_.empty()) {
    const Entry& top = heap_.top();
    if (top.time > limit) return false;
    Slot& slot = slots_[top.slot];
    const bool live = slot.fn && slot.sequence == top.sequence;
    *entry = top;
    heap_.Pop();
    // The next event's slot is a likely cache miss (slots are reused in no particular order):
    // start loading it now, while this event runs.
    if (!heap_.empty()) __builtin_prefetch(&slots_[heap_.top().slot]);
    if (!live) {
      --tombstones_;
      continue;
    }
    // Free the slot before the event runs, so the event may schedule into it and Cancel(own id)
    // from inside the event answers false (the event is no longer pending).
    *fn = std::move(slot.fn);
    FreeSlot(entry->slot);
    return true;
  }
  return false;
}

void Simulation::Execute(const Entry& entry, EventFn fn) {
  if (entry.time < now_) {
    throw std::logic_error("Simulation: event " + std::to_string(entry.sequence) + " at " +
                           Ps(entry.time) + " would move time back from " + Ps(now_));
  }
  now_ = entry.time;
  ++executed_;
  RunningGuard guard(&running_);
  fn(*this);
}

void Simulation::FreeSlot(uint32_t slot) {
  slots_[slot].fn = EventFn();
  free_slots_.push_back(slot);
}

void Simulation::Compact() {
  heap_.EraseIf([this](const Entry& e) {
    const Slot& slot = slots_[e.slot];
    return !slot.fn || slot.sequence != e.sequence;
  });
  tombstones_ = 0;
}

void Simulation::CheckNotRunning(const char* what) const {
  if (running_) {
    throw std::logic_error(std::string("Simulation::") + what +
                           " called from inside an event; the run loop is not reentrant");
  }
}

}  // namespace moesim::sim
