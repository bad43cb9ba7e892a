// The flow model's completion queue (sim/network/flow_model.cc): the flows in flight, by
// (completion time, transfer), with one entry per solver step (the flows a solve froze together;
// see STEPS in sim/network/maxmin.h) holding its earliest flow, not one per flow. A solve
// recomputes whole steps, so the flow model retires the entries of the steps it recomputed and
// queues one for each new step: on the 1,024-GPU MoE benchmark a hundred or so heap moves a solve,
// where one per changed flow took a thousand. Entries are named by group ids, reused once retired
// and released.
//
//   CompletionQueue queue;
//   const uint32_t g = queue.NewGroup();
//   queue.Queue(g, Duration::Nanoseconds(5), /*transfer=*/3, /*variable=*/7);
//   queue.top_group() == g;  queue.top_time() == 5 ns;
//   queue.Retire(g);         // its step was recomputed (or is due): out of the queue
//   queue.Release();         // after the solve: g may be handed out again
//
// Invariants: the top is the least (time, transfer) among queued groups; a group is queued at most
// once; a retired id is not reused before Release(), so that flows still naming it (their step is
// being recomputed) are told apart from a new group. Thread-safety: none.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "proto/units.h"

namespace moesim::sim {

class CompletionQueue {
 public:
  bool empty() const { return heap_.empty(); }
  Duration top_time() const { return heap_[0].when; }
  uint32_t top_group() const { return heap_[0].group; }
  uint32_t top_variable() const { return heap_[0].variable; }

  // A new group, not queued until Queue().
  uint32_t NewGroup() {
    if (free_.empty()) {
      pos_.push_back(kNone);
      live_.push_back(0);
      free_.push_back(static_cast<uint32_t>(pos_.size() - 1));
    }
    const uint32_t g = free_.back();
    free_.pop_back();
    live_[g] = 1;
    return g;
  }
  // Queues group g at its earliest flow: variable `v` of transfer `t`, due `when`.
  void Queue(uint32_t g, Duration when, uint32_t t, uint32_t v) {
    heap_.push_back(Item{when, t, g, v});
    Fix(heap_.size() - 1);
  }
  // Takes group g out (if it still is in); its id is reused only after Release(), so that flows
  // still naming it are told apart from a new group until then.
  void Retire(uint32_t g) {
    if (!live_[g]) return;
    live_[g] = 0;
    retired_.push_back(g);
    const uint32_t i = pos_[g];
    if (i == kNone) return;  // nothing in it can complete (stalled)
    pos_[g] = kNone;
    const Item last = heap_.back();
    heap_.pop_back();
    if (i == heap_.size()) return;
    Place(i, last);
    Fix(i);
  }
  void Release() {
    free_.insert(free_.end(), retired_.begin(), retired_.end());
    retired_.clear();
  }

 private:
  struct Item {
    Duration when;
    uint32_t transfer = 0;
    uint32_t group = 0;
    uint32_t variable = 0;
  };
  static bool Less(const Item& a, const Item& b) {
    return a.when != b.when ? a.when < b.when : a.transfer < b.transfer;
  }
  void Place(size_t i, const Item& item) {
    heap_[i] = item;
    pos_[item.group] = static_cast<uint32_t>(i);
  }
  // Sifts the entry at i up or down to where it belongs. Four children per node: half the depth of
  // a binary heap, and a node's children share a cache line.
  void Fix(size_t i) {
    const Item item = heap_[i];
    while (i > 0 && Less(item, heap_[(i - 1) / kArity])) {
      Place(i, heap_[(i - 1) / kArity]);
      i = (i - 1) / kArity;
    }
    while (true) {
      const size_t first = kArity * i + 1;
      if (first >= heap_.size()) break;
      size_t best = first;
      const size_t last = std::min(first + kArity, heap_.size());
      for (size_t c = first + 1; c < last; ++c) {
        if (Less(heap_[c], heap_[best])) best = c;
      }
      if (!Less(heap_[best], item)) break;
      Place(i, heap_[best]);
      i = best;
    }
    Place(i, item);
  }

  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr size_t kArity = 4;
  std::vector<Item> heap_;
  std::vector<uint32_t> pos_;   // per group: index in heap_, or kNone
  std::vector<uint8_t> live_;   // per group: made and not retired
  std::vector<uint32_t> free_;  // ids to reuse
  std::vector<uint32_t> retired_;
};

}  // namespace moesim::sim
