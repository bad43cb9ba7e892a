// Restarts after removals (see INCREMENTAL SOLVING in maxmin.h): which variables a restart
// re-solves, the resources they use with what is left of each; then what a filling leaves to write
// back, and the upkeep of freeze orders.
//
// A freeze order lists variables as progressive filling froze them, each entry with its filling
// step, weight, bound, rate and uses: a restart reads the suffix it re-solves front to back from
// there, never from the variables themselves, which are scattered over memory (on a large flow
// simulation those cache misses were most of the time). A removal asks its order to restart at the
// step of the removed variable; a Solve() takes every entry from the first such step on (the
// suffix) as local variables, and the filling writes them back over the suffix as it freezes them
// (stale ones dropped, the order truncated after), so an order always reads as one filling: its
// prefix from earlier solves, its suffix from the last.
// Entries go stale when their variable is removed or re-solved whole into a new order; an order is
// compacted when stale entries outnumber live ones, and freed when none is live.
#include <algorithm>
#include <cassert>
#include <limits>

#include "sim/network/maxmin.h"

namespace moesim::sim {
namespace {

// Incremental updates of a resource's slack per variable on it before it is summed afresh. The sum
// reads the rate of every variable on the resource, scattered over memory; at a ratio of 1 it took
// 40% of the flow benchmark's time, at 16 a few percent.
constexpr uint64_t kDriftRatio = 16;

}  // namespace

void MaxMinSolver::GatherRestarts() {
  const size_t first_variable = local_variables_.size();
  const size_t first_resource = local_resources_.size();
  truncations_.clear();
  for (const uint32_t o : restart_orders_) GatherRestart(o);
  restart_orders_.clear();
  if (local_variables_.size() > first_variable) {
    StartRestartResources(first_resource, first_variable);
  }
  // The filling writes the suffix anew from its start (its entries are truncated after it, see
  // TidyOrders).
  for (const auto& [o, from] : truncations_) {
    FreezeOrder& order = orders_[o];
    order.fill_from = order.fill_end = from;
    order.fill_use_end = order.entries[from].use_first;
  }
}

// The suffix of order `o` as local variables; its resources as local resources counting their
// suffix variables (list_count) and what those held.
void MaxMinSolver::GatherRestart(uint32_t o) {
  FreezeOrder& order = orders_[o];
  assert(order.restart < order.entries.size());
  const uint32_t from = order.entries[order.restart].step_first;
  order.restart = kNone;
  TouchOrder(o);
  const uint32_t end = static_cast<uint32_t>(order.entries.size());
  if (from == end) return;
  truncations_.emplace_back(o, from);
  // Sized once for the whole suffix (stale entries included) and written through plain pointers:
  // pushing field by field made every store wait on the vectors' ends, reloaded from memory.
  // local_resources_ does not move: Solve() reserved room for every resource.
  const size_t var_base = local_variables_.size(), use_base = local_uses_.size();
  local_variables_.resize(var_base + (end - from));
  local_uses_.resize(use_base + (order.uses.size() - order.entries[from].use_first));
  LocalVariable* const vars = local_variables_.data();
  LocalUse* const uses = local_uses_.data();
  LocalResource* const resources = local_resources_.data();
  const uint32_t* const resource_local = resource_local_.data();
  size_t var_count = var_base, use_count = use_base;
  for (uint32_t i = from; i < end; ++i) {
    const Frozen& entry = order.entries[i];
    if (entry.variable == kNone) continue;  // stale
    LocalVariable& local = vars[var_count++];
    local.id = entry.variable;
    local.order = o;
    local.use_first = static_cast<uint32_t>(use_count);
    local.use_count = entry.use_count;
    local.weight = entry.weight;
    local.bound = entry.bound;
    local.old_rate = entry.rate;
    local.added = false;
    const FrozenUse* in = order.uses.data() + entry.use_first;
    for (uint32_t k = 0; k < entry.use_count; ++k) {
      uint32_t r = resource_local[in[k].resource];
      if (r == kNone) r = LocalResourceOf(in[k].resource);
      LocalResource& resource = resources[r];
      ++resource.list_count;
      resource.held += in[k].coefficient * entry.rate;
      // In the order of its list: the suffix's.
      resource.pending_weight += in[k].coefficient * entry.weight;
      uses[use_count++] = LocalUse(r, in[k].coefficient);
    }
  }
  // Until the filling writes them back.
  order.live -= static_cast<uint32_t>(var_count - var_base);
  local_variables_.resize(var_count);
  local_uses_.resize(use_count);
  if (var_count > var_base) ++stats_.restarts;
}

// Lists each restarted resource's suffix variables, and starts it from what the variables frozen
// before the restart leave: slack plus what the suffix held. Slack is updated incrementally; once
// its updates outnumber the resource's variables kDriftRatio to 1, it is summed afresh, which keeps
// its rounding error near kDriftRatio x (variables on it) ulps of the capacity: far inside the 1e-9
// the tests hold rates to. When the suffix has every variable of the resource, nothing is held:
// start from the capacity itself, as a whole solve does.
void MaxMinSolver::StartRestartResources(size_t first_resource, size_t first_variable) {
  uint32_t offset = static_cast<uint32_t>(local_lists_.size());
  for (size_t r = first_resource; r < local_resources_.size(); ++r) {
    LocalResource& local = local_resources_[r];
    local.list_first = offset;
    offset += local.list_count;
    Resource& resource = resources_[local.id];
    resource.drift += local.list_count;
    if (local.list_count == resource.entries.size()) {
      local.remaining = resource.capacity;
      resource.drift = 0;
    } else if (resource.drift <= kDriftRatio * resource.entries.size()) {
      local.remaining = resource.slack + local.held;
    } else {
      const double all = HeldBy(resource);
      local.remaining = resource.capacity - all + local.held;
      resource.drift = 0;
    }
    local.list_count = 0;  // refilled below
  }
  local_lists_.resize(offset);
  ListEntry* const lists = local_lists_.data();
  LocalResource* const resources = local_resources_.data();
  const LocalUse* const uses = local_uses_.data();
  for (size_t i = first_variable; i < local_variables_.size(); ++i) {
    const LocalVariable& var = local_variables_[i];
    for (uint32_t k = 0; k < var.use_count; ++k) {
      const LocalUse use = uses[var.use_first + k];
      LocalResource& resource = resources[use.resource];
      lists[resource.list_first + resource.list_count++] = ListEntry(static_cast<uint32_t>(i));
    }
  }
}

// What every variable on `resource` holds, the suffix included, summed in the order of its entries.
// The rates are scattered over memory: fetched well ahead.
double MaxMinSolver::HeldBy(const Resource& resource) const {
  const Entry* entries = resource.entries.data();
  const size_t count = resource.entries.size();
  constexpr size_t kAhead = 16;
  double all = 0;
  for (size_t k = 0; k < count; ++k) {
    if (k + kAhead < count) __builtin_prefetch(&slots_[entries[k + kAhead].variable]);
    all += entries[k].coefficient * RateOf(entries[k].variable);
  }
  return all;
}

// What the filling leaves to do (it has appended what it froze to the orders): report what
// changed, and keep what each resource has left as its slack.
void MaxMinSolver::WriteBack() {
  for (const LocalVariable& local : local_variables_) {
    if (local.added || local.rate != local.old_rate) {
      changed_.push_back(VariableId{local.id});
      changed_rates_.push_back(local.rate);
    }
    if (local.added || local.use_count == 0) {  // only a whole solve has these
      Variable& var = variables_[local.id];
      var.added = false;
      if (local.use_count == 0) {
        slots_[local.id].rate = local.rate;  // in no order
        recomputed_.push_back(Recomputed{VariableId{local.id}, true, local.rate});
      }
    }
  }
  for (const LocalResource& local : local_resources_) {
    resources_[local.id].slack = local.remaining;
    resource_local_[local.id] = kNone;
  }
}

// Marks the entry of a variable that leaves its order (removed, or moved to a new one).
void MaxMinSolver::Stale(uint32_t o, uint32_t position) {
  FreezeOrder& order = orders_[o];
  order.entries[position].variable = kNone;
  --order.live;
  TouchOrder(o);
}

void MaxMinSolver::TouchOrder(uint32_t o) {
  if (orders_[o].touched) return;
  orders_[o].touched = true;
  touched_orders_.push_back(o);
}

uint32_t MaxMinSolver::NewOrder() {
  uint32_t o = 0;
  if (!free_orders_.empty()) {
    o = free_orders_.back();
    free_orders_.pop_back();
  } else {
    assert(orders_.size() < kNone);
    o = static_cast<uint32_t>(orders_.size());
    orders_.emplace_back();
  }
  TouchOrder(o);
  orders_[o].fill_from = orders_[o].fill_end = orders_[o].fill_use_end = 0;
  return o;
}

// After a Solve(): frees orders with nothing live, compacts those mostly stale. (An order touched
// by removals since is listed in restart_orders_, not here, and waits for the next Solve().)
void MaxMinSolver::TidyOrders() {
  for (const uint32_t o : touched_orders_) {
    FreezeOrder& order = orders_[o];
    order.touched = false;
    if (order.fill_from != kNone) {
      order.entries.resize(order.fill_end);  // drops what is left of a restarted suffix
      order.uses.resize(order.fill_use_end);
      PlacePositions(o);
    }
    if (order.restart != kNone) continue;
    if (order.live == 0) {
      // Emptied but keeping its memory: a component re-solved whole leaves its old order empty,
      // and the next whole solve takes it back (last in, first out) with room already there.
      order.entries.clear();
      order.uses.clear();
      free_orders_.push_back(o);
    } else if (order.entries.size() > 2 * static_cast<size_t>(order.live) + 64) {
      CompactOrder(o);
    }
  }
  touched_orders_.clear();
}

// Writes the slots of the entries the filling appended to order `o`, and lists them in
// recomputed_. Apart from Freeze(): the variables are scattered over memory, and here the ids ahead
// are known, so their slots are fetched while earlier ones are written.
void MaxMinSolver::PlacePositions(uint32_t o) {
  FreezeOrder& order = orders_[o];
  const Frozen* entries = order.entries.data();
  const uint32_t end = static_cast<uint32_t>(order.entries.size());
  constexpr uint32_t kAhead = 16;
  for (uint32_t p = order.fill_from; p < end; ++p) {
    if (p + kAhead < end) __builtin_prefetch(&slots_[entries[p + kAhead].variable], 1);
    slots_[entries[p].variable] = Slot{p, entries[p].rate};
    recomputed_.push_back(
        Recomputed{VariableId{entries[p].variable}, entries[p].step_first == p, entries[p].rate});
  }
  order.fill_from = kNone;
}

// Keeps the live entries in order; a step keeps its first live entry as its start.
void MaxMinSolver::CompactOrder(uint32_t o) {
  FreezeOrder& order = orders_[o];
  std::vector<Frozen> entries;
  std::vector<FrozenUse> uses;
  entries.reserve(order.live);
  uint32_t old_step = kNone;
  uint32_t new_step = 0;
  for (const Frozen& entry : order.entries) {
    if (entry.variable == kNone) continue;
    if (entry.step_first != old_step) {
      old_step = entry.step_first;
      new_step = static_cast<uint32_t>(entries.size());
    }
    slots_[entry.variable].position = static_cast<uint32_t>(entries.size());
    Frozen moved = entry;
    moved.step_first = new_step;
    moved.use_first = static_cast<uint32_t>(uses.size());
    uses.insert(uses.end(), order.uses.begin() + entry.use_first,
                order.uses.begin() + entry.use_first + entry.use_count);
    entries.push_back(moved);
  }
  assert(entries.size() == order.live);
  order.entries = std::move(entries);
  order.uses = std::move(uses);
}

}  // namespace moesim::sim
