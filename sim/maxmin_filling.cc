// Progressive filling over the components a Solve() collected (see the maths in maxmin.h).
//
// Each step takes the earliest event: the resource with the smallest saturation level t_r (an
// indexed binary heap ordered by (t_r, resource id)) or the bounded variable with the smallest
// b_v / w_v (a sorted list); a bound wins a tie. Freezing a variable at x_v updates, on each of
// its resources, remaining -= a_rv x_v and pending_weight -= a_rv w_v; each resource touched in a
// step then gets its new t_r and moves in the heap once. In exact arithmetic t_r only grows as
// other variables freeze below it (t_r >= t implies (R - a w t) / (W - a w) >= R / W), so the heap
// only ever sifts down; rounding may nudge a key either way, so HeapUpdate sifts both ways.
//
// Every order here is fixed by ids and by each resource's entry list, never by the order in which
// components were collected: a component's rates come out the same whether it is solved alone or
// with others.
#include <algorithm>
#include <cassert>
#include <limits>

#include "sim/maxmin.h"

namespace moesim::sim {

void MaxMinSolver::Fill() {
  for (const uint32_t r : component_resources_) {
    Resource& resource = resources_[r];
    resource.remaining = resource.capacity;
    resource.pending_weight = 0;
    for (const Entry& entry : resource.entries) resource.pending_weight += entry.load;
    resource.unfrozen = static_cast<uint32_t>(resource.entries.size());
  }
  bound_order_.clear();
  for (const uint32_t v : component_variables_) {
    Variable& var = variables_[v];
    frozen_[v] = 0;
    if (var.count == 0) {
      var.rate = var.bound;  // nothing limits it but its bound (+infinity without one)
      frozen_[v] = 1;
    } else if (var.bound < std::numeric_limits<double>::infinity()) {
      bound_order_.emplace_back(var.bound / var.weight, v);
    }
  }
  std::sort(bound_order_.begin(), bound_order_.end());

  heap_.clear();
  for (const uint32_t r : component_resources_) {
    Resource& resource = resources_[r];
    if (resource.unfrozen == 0) continue;
    resource.level = Level(r);
    HeapPush(r);
  }

  size_t next_bound = 0;
  while (true) {
    while (next_bound < bound_order_.size() && frozen_[bound_order_[next_bound].second]) {
      ++next_bound;
    }
    const bool have_bound = next_bound < bound_order_.size();
    if (!have_bound && heap_.empty()) break;
    ++stats_.steps;
    if (have_bound &&
        (heap_.empty() || bound_order_[next_bound].first <= resources_[heap_[0]].level)) {
      const uint32_t v = bound_order_[next_bound++].second;
      Freeze(v, variables_[v].bound);
    } else {
      const uint32_t r = HeapPop();
      // Clamped at 0: rounding in `remaining` must not make a rate negative.
      const double level = std::max(resources_[r].level, 0.0);
      for (const Entry& entry : resources_[r].entries) {
        if (frozen_[entry.variable]) continue;
        const Variable& var = variables_[entry.variable];
        Freeze(entry.variable, std::min(var.weight * level, var.bound));
      }
    }
    RekeyBatch();
  }
}

void MaxMinSolver::Freeze(uint32_t variable, double rate) {
  Variable& var = variables_[variable];
  var.rate = rate;
  frozen_[variable] = 1;
  for (uint32_t k = 0; k < var.count; ++k) {
    const Use& use = uses_[var.first + k];
    Resource& resource = resources_[use.resource];
    resource.remaining -= use.coefficient * rate;
    resource.pending_weight -= use.coefficient * var.weight;
    if (--resource.unfrozen == 0) {
      if (resource.heap_pos != kNotInHeap) HeapRemove(use.resource);
    } else if (!resource.batched) {
      resource.batched = true;
      batch_.push_back(use.resource);
    }
  }
}

void MaxMinSolver::RekeyBatch() {
  for (const uint32_t r : batch_) {
    Resource& resource = resources_[r];
    resource.batched = false;
    if (resource.heap_pos == kNotInHeap) continue;  // saturated this step, or all frozen
    resource.level = Level(r);
    HeapUpdate(r);
  }
  batch_.clear();
}

// t_r for a resource with unfrozen variables. Subtracting weights as variables freeze can leave
// pending_weight at or below zero by rounding while a variable remains; then it is summed afresh.
double MaxMinSolver::Level(uint32_t r) {
  Resource& resource = resources_[r];
  if (resource.pending_weight <= 0) {
    resource.pending_weight = 0;
    for (const Entry& entry : resource.entries) {
      if (!frozen_[entry.variable]) resource.pending_weight += entry.load;
    }
  }
  return std::max(resource.remaining, 0.0) / resource.pending_weight;
}

bool MaxMinSolver::HeapLess(uint32_t a, uint32_t b) const {
  const double la = resources_[a].level;
  const double lb = resources_[b].level;
  return la < lb || (la == lb && a < b);
}

void MaxMinSolver::HeapPlace(size_t pos, uint32_t resource) {
  heap_[pos] = resource;
  resources_[resource].heap_pos = static_cast<uint32_t>(pos);
}

void MaxMinSolver::HeapPush(uint32_t resource) {
  heap_.push_back(resource);
  resources_[resource].heap_pos = static_cast<uint32_t>(heap_.size() - 1);
  SiftUp(heap_.size() - 1);
}

uint32_t MaxMinSolver::HeapPop() {
  const uint32_t top = heap_[0];
  HeapRemove(top);
  return top;
}

void MaxMinSolver::HeapRemove(uint32_t resource) {
  const size_t pos = resources_[resource].heap_pos;
  assert(pos != kNotInHeap);
  resources_[resource].heap_pos = kNotInHeap;
  const uint32_t last = heap_.back();
  heap_.pop_back();
  if (pos == heap_.size()) return;  // it was the last one
  HeapPlace(pos, last);
  HeapUpdate(last);
}

void MaxMinSolver::HeapUpdate(uint32_t resource) {
  const size_t pos = resources_[resource].heap_pos;
  if (pos > 0 && HeapLess(resource, heap_[(pos - 1) / 2])) {
    SiftUp(pos);
  } else {
    SiftDown(pos);
  }
}

void MaxMinSolver::SiftUp(size_t pos) {
  const uint32_t moving = heap_[pos];
  while (pos > 0) {
    const size_t parent = (pos - 1) / 2;
    if (!HeapLess(moving, heap_[parent])) break;
    HeapPlace(pos, heap_[parent]);
    pos = parent;
  }
  HeapPlace(pos, moving);
}

void MaxMinSolver::SiftDown(size_t pos) {
  const uint32_t moving = heap_[pos];
  const size_t size = heap_.size();
  while (true) {
    size_t child = 2 * pos + 1;
    if (child >= size) break;
    if (child + 1 < size && HeapLess(heap_[child + 1], heap_[child])) ++child;
    if (!HeapLess(heap_[child], moving)) break;
    HeapPlace(pos, heap_[child]);
    pos = child;
  }
  HeapPlace(pos, moving);
}

}  // namespace moesim::sim
