// Progressive filling over the local problem a Solve() laid out: whole components, from level 0,
// and the suffixes of restarted freeze orders, from their resources' remaining capacities (see the
// maths in maxmin.h). Everything here indexes local_variables_ and local_resources_, dense and
// small, so that a filling runs in cache.
//
// Each step takes the earliest event: the resource with the smallest saturation level t_r (an
// indexed binary heap ordered by (t_r, resource id)) or the bounded variable with the smallest
// b_v / w_v (a sorted list); a bound wins a tie. Freezing a variable at x_v updates, on each of
// its resources, remaining -= a_rv x_v and pending_weight -= a_rv w_v; each resource touched in a
// step then gets its new t_r. In exact arithmetic t_r only grows as other variables freeze below it
// (t_r >= t implies (R - a w t) / (W - a w) >= R / W), so a key that rose waits, stale, until it
// reaches the top (see RekeyBatch); rounding may nudge a key down, and that one moves at once.
//
// Every order here is fixed by variable and resource ids, by each resource's list (its entries
// for a whole component, the suffix order for a restart), never by the order in which things were
// collected: a component's rates come out the same whether it is solved alone or with others. What
// is frozen is appended to its freeze order, step by step, as it freezes.
#include <algorithm>
#include <cassert>
#include <limits>

#include "sim/maxmin.h"

namespace moesim::sim {

void MaxMinSolver::Fill() {
  for (LocalResource& resource : local_resources_) {
    resource.pending_weight = 0;
    for (uint32_t k = 0; k < resource.list_count; ++k) {
      resource.pending_weight += local_lists_[resource.list_first + k].load;
    }
    resource.unfrozen = resource.list_count;
    resource.heap_pos = kNone;
    resource.batched = false;
    resource.stale = false;
  }
  bound_order_.clear();
  local_frozen_.assign(local_variables_.size(), 0);
  for (uint32_t i = 0; i < local_variables_.size(); ++i) {
    LocalVariable& var = local_variables_[i];
    if (var.use_count == 0) {
      var.rate = var.bound;  // nothing limits it but its bound (+infinity without one)
      local_frozen_[i] = 1;
    } else if (var.bound < std::numeric_limits<double>::infinity()) {
      bound_order_.emplace_back(var.bound / var.weight, uint64_t{var.id} << 32 | i);
    }
  }
  std::sort(bound_order_.begin(), bound_order_.end());

  heap_.clear();
  for (uint32_t r = 0; r < local_resources_.size(); ++r) {
    if (local_resources_[r].unfrozen == 0) continue;
    local_resources_[r].level = Level(r);
    HeapPush(r);
  }

  size_t next_bound = 0;
  while (true) {
    while (next_bound < bound_order_.size() &&
           local_frozen_[static_cast<uint32_t>(bound_order_[next_bound].second)]) {
      ++next_bound;
    }
    const bool have_bound = next_bound < bound_order_.size();
    CleanTop();
    if (!have_bound && heap_.empty()) break;
    ++stats_.steps;
    step_first_ = kNone;
    if (have_bound &&
        (heap_.empty() || bound_order_[next_bound].first <= local_resources_[heap_[0]].level)) {
      const uint32_t i = static_cast<uint32_t>(bound_order_[next_bound++].second);
      Freeze(i, local_variables_[i].bound);
    } else {
      FillStep(HeapPop());
    }
    RekeyBatch();
  }
}

// Resource r saturates: every unfrozen variable on it freezes at its share of the level.
void MaxMinSolver::FillStep(uint32_t r) {
  const LocalResource& resource = local_resources_[r];
  // Clamped at 0: rounding in `remaining` must not make a rate negative.
  const double level = std::max(resource.level, 0.0);
  const uint32_t first = resource.list_first, count = resource.list_count;
  for (uint32_t k = 0; k < count; ++k) {
    const uint32_t i = local_lists_[first + k].variable;
    if (local_frozen_[i]) continue;
    const LocalVariable& var = local_variables_[i];
    Freeze(i, std::min(var.weight * level, var.bound));
  }
}

// Freezes local variable i at `rate` and appends it to its freeze order (a step's variables all
// share one: a resource's variables do), with what a restart will need of it.
void MaxMinSolver::Freeze(uint32_t i, double rate) {
  LocalVariable& var = local_variables_[i];
  var.rate = rate;
  local_frozen_[i] = 1;
  FreezeOrder& order = orders_[var.order];
  const uint32_t position = static_cast<uint32_t>(order.entries.size());
  if (step_first_ == kNone) step_first_ = position;
  position_[var.id] = position;
  Frozen& entry = order.entries.emplace_back();  // in place: see GatherRestart
  entry.variable = var.id;
  entry.step_first = step_first_;
  entry.use_first = static_cast<uint32_t>(order.uses.size());
  entry.use_count = var.use_count;
  entry.weight = var.weight;
  entry.bound = var.bound;
  entry.rate = rate;
  ++order.live;
  // Through plain pointers: pushing to order.uses and batch_ made the compiler reload both
  // vectors after every store to a resource.
  const size_t use_base = order.uses.size();
  order.uses.resize(use_base + var.use_count);
  FrozenUse* out = order.uses.data() + use_base;
  const LocalUse* in = local_uses_.data() + var.use_first;
  const double weight = var.weight;
  for (uint32_t k = 0; k < var.use_count; ++k) {
    const LocalUse use = in[k];
    LocalResource& resource = local_resources_[use.resource];
    out[k] = FrozenUse{resource.id, use.coefficient};
    resource.remaining -= use.coefficient * rate;
    resource.pending_weight -= use.coefficient * weight;
    if (--resource.unfrozen == 0) {
      if (resource.heap_pos != kNone) HeapRemove(use.resource);
    } else if (!resource.batched) {
      resource.batched = true;
      batch_.push_back(use.resource);
    }
  }
}

// The keys of the resources a step touched. A key that rose is left as it was, marked stale, and
// put right only when it reaches the top (CleanTop): most never do before their resource's next
// change, and a key below the true level still orders the heap correctly, since the true minimum
// is found by fixing stale tops until a fresh one is on top. A key that fell (rounding) moves at
// once.
void MaxMinSolver::RekeyBatch() {
  for (const uint32_t r : batch_) {
    LocalResource& resource = local_resources_[r];
    resource.batched = false;
    if (resource.heap_pos == kNone) continue;  // saturated this step, or all frozen
    const double level = Level(r);
    if (level < resource.level) {
      resource.level = level;
      SiftUp(resource.heap_pos);
    } else if (level > resource.level) {
      resource.stale = true;
    }
  }
  batch_.clear();
}

void MaxMinSolver::CleanTop() {
  while (!heap_.empty() && local_resources_[heap_[0]].stale) {
    LocalResource& resource = local_resources_[heap_[0]];
    resource.stale = false;
    resource.level = Level(heap_[0]);
    SiftDown(0);
  }
}

// t_r for a resource with unfrozen variables. Subtracting weights as variables freeze can leave
// pending_weight at or below zero by rounding while a variable remains; then it is summed afresh.
double MaxMinSolver::Level(uint32_t r) {
  LocalResource& resource = local_resources_[r];
  if (resource.pending_weight <= 0) {
    resource.pending_weight = 0;
    for (uint32_t k = 0; k < resource.list_count; ++k) {
      const ListEntry& entry = local_lists_[resource.list_first + k];
      if (!local_frozen_[entry.variable]) resource.pending_weight += entry.load;
    }
  }
  return std::max(resource.remaining, 0.0) / resource.pending_weight;
}

bool MaxMinSolver::HeapLess(uint32_t a, uint32_t b) const {
  const LocalResource& ra = local_resources_[a];
  const LocalResource& rb = local_resources_[b];
  return ra.level < rb.level || (ra.level == rb.level && ra.id < rb.id);
}

void MaxMinSolver::HeapPlace(size_t pos, uint32_t resource) {
  heap_[pos] = resource;
  local_resources_[resource].heap_pos = static_cast<uint32_t>(pos);
}

void MaxMinSolver::HeapPush(uint32_t resource) {
  heap_.push_back(resource);
  local_resources_[resource].heap_pos = static_cast<uint32_t>(heap_.size() - 1);
  SiftUp(heap_.size() - 1);
}

uint32_t MaxMinSolver::HeapPop() {
  const uint32_t top = heap_[0];
  HeapRemove(top);
  return top;
}

void MaxMinSolver::HeapRemove(uint32_t resource) {
  const size_t pos = local_resources_[resource].heap_pos;
  assert(pos != kNone);
  local_resources_[resource].heap_pos = kNone;
  const uint32_t last = heap_.back();
  heap_.pop_back();
  if (pos == heap_.size()) return;  // it was the last one
  HeapPlace(pos, last);
  HeapUpdate(last);
}

void MaxMinSolver::HeapUpdate(uint32_t resource) {
  const size_t pos = local_resources_[resource].heap_pos;
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
