// Progressive filling over the local problem a Solve() laid out: whole components, from level 0,
// and the suffixes of restarted freeze orders, from their resources' remaining capacities (see the
// maths in maxmin.h). Everything here indexes local_variables_ and local_resources_, dense and
// small, so that a filling runs in cache.
//
// Each step takes the earliest event: the resource with the smallest saturation level t_r (an
// indexed 4-ary heap ordered by (t_r, resource id)) or the bounded variable with the smallest
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

#include "sim/network/maxmin.h"

namespace moesim::sim {

// Freezes local variable i at `rate` and appends it to its freeze order (a step's variables all
// share one: a resource's variables do), with what a restart will need of it. With `step`, what
// it takes off the step's resource goes to `step` instead.
inline void MaxMinSolver::Freeze(uint32_t i, double rate, StepTotals* step) {
  LocalVariable& var = local_variables_[i];
  var.rate = rate;
  local_frozen_[i] = 1;
  FreezeOrder& order = orders_[var.order];
  // A restart writes over its suffix (already laid out as local variables), which has room for
  // all it freezes; a new order grows.
  const uint32_t position = order.fill_end++;
  if (position == order.entries.size()) order.entries.emplace_back();
  if (step_first_ == kNone) step_first_ = position;  // slots_ wait for PlacePositions()
  Frozen& entry = order.entries[position];
  entry.variable = var.id;
  entry.step_first = step_first_;
  entry.use_first = order.fill_use_end;
  entry.use_count = var.use_count;
  entry.weight = var.weight;
  entry.bound = var.bound;
  entry.rate = rate;
  ++order.live;
  // Through plain pointers: pushing to order.uses and batch_ made the compiler reload both
  // vectors after every store to a resource.
  const size_t use_base = order.fill_use_end;
  order.fill_use_end += var.use_count;
  if (order.fill_use_end > order.uses.size()) order.uses.resize(order.fill_use_end);
  FrozenUse* out = order.uses.data() + use_base;
  const LocalUse* in = local_uses_.data() + var.use_first;
  LocalResource* const resources = local_resources_.data();
  uint32_t* const batch = batch_.data();  // sized in Fill() for every resource
  const double weight = var.weight;
  const uint32_t step_resource = step ? step->resource : kNone;
  for (uint32_t k = 0; k < var.use_count; ++k) {
    const LocalUse use = in[k];
    LocalResource& resource = resources[use.resource];
    out[k] = FrozenUse{resource.id, use.coefficient};
    if (use.resource == step_resource) {
      step->remaining -= use.coefficient * rate;
      step->pending_weight -= use.coefficient * weight;
      --step->unfrozen;
      continue;
    }
    resource.remaining -= use.coefficient * rate;
    resource.pending_weight -= use.coefficient * weight;
    if (--resource.unfrozen == 0) {
      if (resource.heap_pos != kNone) HeapRemove(use.resource);
    } else if (!resource.batched) {
      resource.batched = true;
      batch[batch_size_++] = use.resource;
    }
  }
}

void MaxMinSolver::Fill() {
  // pending_weight comes summed over each list, in its order, from the gathering (which reads
  // the same loads then, in cache).
  for (LocalResource& resource : local_resources_) {
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

  batch_.resize(local_resources_.size());
  batch_size_ = 0;
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
    if (have_bound && (heap_.empty() || bound_order_[next_bound].first <= heap_[0].level)) {
      const uint32_t i = static_cast<uint32_t>(bound_order_[next_bound++].second);
      Freeze(i, local_variables_[i].bound, nullptr);
    } else {
      FillStep(HeapPop());
    }
    RekeyBatch();
  }
}

// Resource r saturates: every unfrozen variable on it freezes at its share of the level. What they
// take off r itself is summed here, in registers, in the same order as Freeze() would in memory:
// every variable of the step updates r, and through memory each update waited on the last.
void MaxMinSolver::FillStep(uint32_t r) {
  LocalResource& resource = local_resources_[r];
  // Clamped at 0: rounding in `remaining` must not make a rate negative.
  const double level = std::max(resource.level, 0.0);
  const uint32_t first = resource.list_first, count = resource.list_count;
  StepTotals totals{r, resource.remaining, resource.pending_weight, resource.unfrozen};
  for (uint32_t k = 0; k < count; ++k) {
    const uint32_t i = local_lists_[first + k].variable;
    if (local_frozen_[i]) continue;
    const LocalVariable& var = local_variables_[i];
    Freeze(i, std::min(var.weight * level, var.bound), &totals);
  }
  resource.remaining = totals.remaining;
  resource.pending_weight = totals.pending_weight;
  resource.unfrozen = totals.unfrozen;  // 0: it is out of the heap, and not batched
}

// The keys of the resources a step touched. A key that rose is left as it was, marked stale, and
// put right only when it reaches the top (CleanTop): most never do before their resource's next
// change, and a key below the true level still orders the heap correctly, since the true minimum
// is found by fixing stale tops until a fresh one is on top. A key that fell (rounding) moves at
// once.
void MaxMinSolver::RekeyBatch() {
  for (size_t b = 0; b < batch_size_; ++b) {
    const uint32_t r = batch_[b];
    LocalResource& resource = local_resources_[r];
    resource.batched = false;
    if (resource.heap_pos == kNone) continue;  // saturated this step, or all frozen
    const double level = Level(r);
    if (level < resource.level) {
      resource.level = level;
      heap_[resource.heap_pos].level = level;
      SiftUp(resource.heap_pos);
    } else if (level > resource.level) {
      resource.stale = true;
    }
  }
  batch_size_ = 0;
}

void MaxMinSolver::CleanTop() {
  while (!heap_.empty() && local_resources_[heap_[0].resource].stale) {
    LocalResource& resource = local_resources_[heap_[0].resource];
    resource.stale = false;
    resource.level = Level(heap_[0].resource);
    heap_[0].level = resource.level;
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
      const uint32_t i = local_lists_[resource.list_first + k].variable;
      if (!local_frozen_[i]) resource.pending_weight += LoadOn(r, i);
    }
  }
  return std::max(resource.remaining, 0.0) / resource.pending_weight;
}

// The heap holds each resource's key beside its index, so that sifting reads one small array. Four
// children a node: half the depth of a binary heap, for CleanTop's many sifts from the top. Which
// resource comes out first does not depend on the heap's shape: (level, id) orders them totally.
// a_rv w_v of local variable i on local resource r (which it uses): the product the gathering
// summed into pending_weight.
double MaxMinSolver::LoadOn(uint32_t r, uint32_t i) const {
  const LocalVariable& var = local_variables_[i];
  for (uint32_t k = 0; k < var.use_count; ++k) {
    const LocalUse& use = local_uses_[var.use_first + k];
    if (use.resource == r) return use.coefficient * var.weight;
  }
  assert(false && "a resource's list holds only variables that use it");
  return 0;
}

bool MaxMinSolver::HeapLess(const HeapItem& a, const HeapItem& b) {
  return a.level < b.level || (a.level == b.level && a.id < b.id);
}

void MaxMinSolver::HeapPlace(size_t pos, const HeapItem& item) {
  heap_[pos] = item;
  local_resources_[item.resource].heap_pos = static_cast<uint32_t>(pos);
}

void MaxMinSolver::HeapPush(uint32_t resource) {
  const LocalResource& local = local_resources_[resource];
  heap_.push_back(HeapItem{local.level, local.id, resource});
  local_resources_[resource].heap_pos = static_cast<uint32_t>(heap_.size() - 1);
  SiftUp(heap_.size() - 1);
}

uint32_t MaxMinSolver::HeapPop() {
  const uint32_t top = heap_[0].resource;
  HeapRemove(top);
  return top;
}

void MaxMinSolver::HeapRemove(uint32_t resource) {
  const size_t pos = local_resources_[resource].heap_pos;
  assert(pos != kNone);
  local_resources_[resource].heap_pos = kNone;
  const HeapItem last = heap_.back();
  heap_.pop_back();
  if (pos == heap_.size()) return;  // it was the last one
  HeapPlace(pos, last);
  if (pos > 0 && HeapLess(last, heap_[(pos - 1) / kHeapArity])) {
    SiftUp(pos);
  } else {
    SiftDown(pos);
  }
}

void MaxMinSolver::SiftUp(size_t pos) {
  const HeapItem moving = heap_[pos];
  while (pos > 0) {
    const size_t parent = (pos - 1) / kHeapArity;
    if (!HeapLess(moving, heap_[parent])) break;
    HeapPlace(pos, heap_[parent]);
    pos = parent;
  }
  HeapPlace(pos, moving);
}

void MaxMinSolver::SiftDown(size_t pos) {
  const HeapItem moving = heap_[pos];
  const size_t size = heap_.size();
  while (true) {
    const size_t first = kHeapArity * pos + 1;
    if (first >= size) break;
    size_t child = first;
    const size_t last = std::min(first + kHeapArity, size);
    for (size_t c = first + 1; c < last; ++c) {
      if (HeapLess(heap_[c], heap_[child])) child = c;
    }
    if (!HeapLess(heap_[child], moving)) break;
    HeapPlace(pos, heap_[child]);
    pos = child;
  }
  HeapPlace(pos, moving);
}

}  // namespace moesim::sim
