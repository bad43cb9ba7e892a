// MaxMinSolver bookkeeping: adding and removing resources and variables, tracking what changed, and
// finding the components a Solve() must recompute whole. Restarts after removals are
// maxmin_restart.cc; progressive filling itself is maxmin_filling.cc.
#include "sim/network/maxmin.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

namespace moesim::sim {

ResourceId MaxMinSolver::AddResource(double capacity) {
  assert(capacity > 0 && std::isfinite(capacity));
  assert(resources_.size() < kNone);
  Resource resource;
  resource.capacity = capacity;
  resource.slack = capacity;
  resources_.push_back(std::move(resource));
  resource_local_.push_back(kNone);
  return ResourceId{static_cast<uint32_t>(resources_.size() - 1)};
}

void MaxMinSolver::SetCapacity(ResourceId resource, double capacity) {
  assert(resource.value < resources_.size());
  assert(capacity > 0 && std::isfinite(capacity));
  Resource& r = resources_[resource.value];
  if (r.capacity == capacity) return;
  r.capacity = capacity;
  MarkDirty(resource.value);
}

double MaxMinSolver::Capacity(ResourceId resource) const {
  assert(resource.value < resources_.size());
  return resources_[resource.value].capacity;
}

VariableId MaxMinSolver::AddVariable(std::span<const ResourceUse> uses, double weight,
                                     std::optional<double> bound) {
  assert(weight > 0);
  assert(!bound.has_value() || *bound >= 0);
  // One use per resource, in resource order: a path that crosses a link twice loads it twice.
  merged_.assign(uses.begin(), uses.end());
  std::sort(merged_.begin(), merged_.end(),
            [](const ResourceUse& a, const ResourceUse& b) { return a.resource < b.resource; });
  size_t count = 0;
  for (const ResourceUse& use : merged_) {
    assert(use.resource.value < resources_.size());
    assert(use.coefficient > 0);
    if (count > 0 && merged_[count - 1].resource == use.resource) {
      merged_[count - 1].coefficient += use.coefficient;
    } else {
      merged_[count++] = use;
    }
  }

  uint32_t id = 0;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
  } else {
    assert(variables_.size() < UINT32_MAX);
    id = static_cast<uint32_t>(variables_.size());
    variables_.emplace_back();
    visited_.push_back(0);
    local_of_.push_back(kNone);
    slots_.emplace_back();
  }
  if (variables_[id].reserved < count) {
    // Its old block (if any) is too small: give it up and take a new one at the end.
    garbage_uses_ += variables_[id].reserved;
    variables_[id].reserved = 0;
    variables_[id].count = 0;
    if (garbage_uses_ > 4096 && 2 * garbage_uses_ > uses_.size()) CompactUses();
    assert(uses_.size() + count <= UINT32_MAX);
    variables_[id].first = static_cast<uint32_t>(uses_.size());
    variables_[id].reserved = static_cast<uint32_t>(count);
    uses_.resize(uses_.size() + count);
  }
  Variable& var = variables_[id];
  var.count = static_cast<uint32_t>(count);
  var.weight = weight;
  var.bound = bound.value_or(std::numeric_limits<double>::infinity());
  var.order = kNone;
  slots_[id].rate = 0;
  var.live = true;
  var.added = true;
  for (uint32_t k = 0; k < count; ++k) {
    const uint32_t r = merged_[k].resource.value;
    std::vector<Entry>& entries = resources_[r].entries;
    uses_[var.first + k] = Use{r, static_cast<uint32_t>(entries.size()), merged_[k].coefficient};
    entries.push_back(Entry{id, k, merged_[k].coefficient * weight, merged_[k].coefficient});
    MarkDirty(r);
  }
  dirty_variables_.push_back(id);
  return VariableId{id};
}

void MaxMinSolver::RemoveVariable(VariableId variable) {
  assert(Contains(variable));
  Variable& var = variables_[variable.value];
  const bool solved = var.order != kNone;
  const double rate = RateOf(variable.value);
  if (solved) {
    // The next Solve() restarts its order from the step that froze it (see maxmin.h).
    FreezeOrder& order = orders_[var.order];
    if (order.restart == kNone) restart_orders_.push_back(var.order);
    order.restart = std::min(order.restart, slots_[variable.value].position);
    Stale(var.order, slots_[variable.value].position);
    var.order = kNone;
  }
  for (uint32_t k = 0; k < var.count; ++k) {
    const Use& use = uses_[var.first + k];
    Resource& resource = resources_[use.resource];
    std::vector<Entry>& entries = resource.entries;
    // Swap-remove its entry and repoint the use of the entry moved into the hole.
    const Entry moved = entries.back();
    entries[use.slot] = moved;
    uses_[variables_[moved.variable].first + moved.use].slot = use.slot;
    entries.pop_back();
    // A variable never solved was added since the last Solve(): its resources are dirty already.
    if (solved) {
      resource.slack += use.coefficient * rate;
      ++resource.drift;
    }
  }
  var.count = 0;  // keeps `first` and `reserved` for the id's next variable
  slots_[variable.value].rate = 0;
  var.live = false;
  var.added = false;
  free_ids_.push_back(variable.value);
}

void MaxMinSolver::StepOf(VariableId variable, std::vector<VariableId>* out) const {
  assert(Contains(variable));
  const Variable& var = variables_[variable.value];
  if (var.order == kNone) {  // no uses: a step of its own
    out->push_back(variable);
    return;
  }
  const std::vector<Frozen>& entries = orders_[var.order].entries;
  const uint32_t step = entries[slots_[variable.value].position].step_first;
  for (uint32_t p = step; p < entries.size() && entries[p].step_first == step; ++p) {
    if (entries[p].variable != kNone) out->push_back(VariableId{entries[p].variable});
  }
}

bool MaxMinSolver::Contains(VariableId variable) const {
  return variable.value < variables_.size() && variables_[variable.value].live;
}

double MaxMinSolver::Rate(VariableId variable) const {
  assert(Contains(variable));
  return RateOf(variable.value);
}

double MaxMinSolver::RateOf(uint32_t v) const { return slots_[v].rate; }

void MaxMinSolver::MarkDirty(uint32_t resource) {
  if (resources_[resource].dirty) return;
  resources_[resource].dirty = true;
  dirty_resources_.push_back(resource);
}

// Rewrites uses_ with the blocks of live variables only, in id order; entries point at (variable,
// use index), not at positions in uses_, so only `first` changes.
void MaxMinSolver::CompactUses() {
  std::vector<Use> compact;
  compact.reserve(uses_.size() - garbage_uses_);
  for (Variable& var : variables_) {
    const uint32_t first = static_cast<uint32_t>(compact.size());
    compact.insert(compact.end(), uses_.begin() + var.first, uses_.begin() + var.first + var.count);
    var.first = first;
    var.reserved = var.count;
  }
  uses_ = std::move(compact);
  garbage_uses_ = 0;
}

const std::vector<VariableId>& MaxMinSolver::SolveFromScratch() {
  for (uint32_t r = 0; r < resources_.size(); ++r) MarkDirty(r);
  for (uint32_t v = 0; v < variables_.size(); ++v) {
    if (variables_[v].live && variables_[v].count == 0) dirty_variables_.push_back(v);
  }
  return Solve();
}

const std::vector<VariableId>& MaxMinSolver::Solve() {
  stats_ = SolveStats{};
  changed_.clear();
  changed_rates_.clear();
  recomputed_.clear();
  local_variables_.clear();
  local_uses_.clear();
  local_resources_.clear();
  local_resources_.reserve(resources_.size());  // never moves while a Solve() lays it out
  local_lists_.clear();
  // Whole components first: they take their variables out of their old orders, so that the
  // restarts below skip them.
  component_resources_.clear();
  for (const uint32_t r : dirty_resources_) {
    resources_[r].dirty = false;
    CollectFrom(r);
  }
  for (const uint32_t v : dirty_variables_) CollectFromVariable(v);
  dirty_resources_.clear();
  dirty_variables_.clear();
  GatherWhole();
  GatherRestarts();
  stats_.variables = local_variables_.size();
  stats_.resources = local_resources_.size();
  Fill();
  WriteBack();
  TidyOrders();
  stats_.changed = changed_.size();
  return changed_;
}

// Breadth-first over the bipartite graph of resources and variables, laying out each variable and
// resource reached as a local one; component_resources_ doubles as the queue of resources still
// to expand. Each call gathers one component (or nothing new), and its variables move to a new
// freeze order, made when the first of them with uses is visited.
void MaxMinSolver::CollectFrom(uint32_t resource_seed) {
  if (resource_local_[resource_seed] != kNone) return;
  const size_t next = component_resources_.size();
  const size_t variables_before = local_variables_.size();
  LocalResourceOf(resource_seed);
  component_resources_.push_back(resource_seed);
  collect_order_ = kNone;
  DrainQueue(next, variables_before);
}

void MaxMinSolver::CollectFromVariable(uint32_t variable_seed) {
  if (!variables_[variable_seed].live || visited_[variable_seed]) return;
  const size_t next = component_resources_.size();
  const size_t variables_before = local_variables_.size();
  collect_order_ = kNone;
  Visit(variable_seed);
  DrainQueue(next, variables_before);
}

void MaxMinSolver::Visit(uint32_t variable) {
  if (visited_[variable]) return;
  visited_[variable] = 1;
  Variable& var = variables_[variable];
  local_of_[variable] = static_cast<uint32_t>(local_variables_.size());
  LocalVariable& local = local_variables_.emplace_back();  // in place: see GatherRestart
  local.id = variable;
  local.order = kNone;
  local.use_first = static_cast<uint32_t>(local_uses_.size());
  local.use_count = var.count;
  local.weight = var.weight;
  local.bound = var.bound;
  local.old_rate = RateOf(variable);  // before it leaves its order
  local.added = var.added;
  if (var.count == 0) return;  // frozen at its bound at once; in no order
  if (var.order != kNone) Stale(var.order, slots_[variable].position);
  if (collect_order_ == kNone) collect_order_ = NewOrder();
  var.order = local.order = collect_order_;
  for (uint32_t k = 0; k < var.count; ++k) {
    const Use& use = uses_[var.first + k];
    if (resource_local_[use.resource] == kNone) {
      LocalResourceOf(use.resource);
      component_resources_.push_back(use.resource);
    }
    local_uses_.push_back(LocalUse{resource_local_[use.resource], use.coefficient});
  }
}

void MaxMinSolver::DrainQueue(size_t next_resource, size_t variables_before) {
  while (next_resource < component_resources_.size()) {
    const uint32_t r = component_resources_[next_resource++];
    for (const Entry& entry : resources_[r].entries) Visit(entry.variable);
  }
  if (local_variables_.size() > variables_before) ++stats_.components;
}

uint32_t MaxMinSolver::LocalResourceOf(uint32_t r) {
  if (resource_local_[r] == kNone) {
    resource_local_[r] = static_cast<uint32_t>(local_resources_.size());
    LocalResource& local = local_resources_.emplace_back();
    local.id = r;
    local.heap_pos = kNone;
  }
  return resource_local_[r];
}

// The resources of the whole components, each listing its variables in the order of its entries,
// never in the order of collection, so that a component's rates do not depend on where its
// collection started (nor on what else is solved with it).
void MaxMinSolver::GatherWhole() {
  for (const LocalVariable& local : local_variables_) visited_[local.id] = 0;
  for (const uint32_t r : component_resources_) {
    const Resource& resource = resources_[r];
    LocalResource& local = local_resources_[resource_local_[r]];
    local.remaining = resource.capacity;
    local.list_first = static_cast<uint32_t>(local_lists_.size());
    local.list_count = static_cast<uint32_t>(resource.entries.size());
    for (const Entry& entry : resource.entries) {
      local_lists_.push_back(ListEntry(local_of_[entry.variable]));
      local.pending_weight += entry.load;  // in list order, as Fill() expects
    }
  }
}

}  // namespace moesim::sim
