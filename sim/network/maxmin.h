// Max-min fair sharing of resources among variables: the solver under the flow-level network model.
// It knows nothing of networks. A resource is a capacity (the network model makes one per link
// direction), a variable is a rate (one per flow), and a variable uses resources with coefficients.
//
// THE PROBLEM. Resources r have capacities c_r > 0 (bytes per second). A variable v has a weight
// w_v > 0 (default 1), an optional bound b_v >= 0 (a rate cap), and uses a set of resources with
// coefficients a_rv > 0: 1 for a plain path, 1/k on each of k paths when a flow is striped over k
// paths (1/4 on each of 4 NVSwitch planes) or split evenly by ECMP. Rates x_v must satisfy
//
//     sum_v a_rv x_v <= c_r   for every resource r,        0 <= x_v <= b_v.
//
// Among the feasible rates the solver returns the weighted max-min fair one: no x_v / w_v can be
// raised without lowering some x_u / w_u that is not larger. It exists and is unique, and
// progressive filling finds it: raise a level t from 0, every unfrozen variable at x_v = w_v t,
// until a variable reaches its bound (freeze it there) or a resource saturates (freeze every
// unfrozen variable on it at w_v t); repeat until every variable is frozen. Resource r saturates at
//
//     t_r = (c_r - sum_{v frozen} a_rv x_v) / (sum_{v unfrozen} a_rv w_v),
//
// so each step takes the smallest t_r from a heap and, after freezing, updates t_r only for the
// resources of the variables it froze: a solve costs O(1) per use of a variable plus O(log
// resources) per heap update (one per resource touched in a step).
// Equivalently (this is what the tests check), in the result every variable is at its bound or has
// a bottleneck: a saturated resource on which no variable has a larger x_u / w_u.
//
// WORKED EXAMPLE. Link A carries 10 GB/s, link B 4 GB/s; flow 1 crosses A and B, flow 2 only A,
// flow 3 only B:
//
//     A:  x1 + x2 <= 10        B:  x1 + x3 <= 4
//
//   t rises with x1 = x2 = x3 = t. A would saturate at t_A = 10/2 = 5, B at t_B = 4/2 = 2.
//   B first: at t = 2 it freezes x1 = x3 = 2. A keeps 10 - 2 = 8 for x2 alone: t_A = 8/1 = 8.
//   Result: x1 = 2, x2 = 8, x3 = 2; both links full.
//
//   Give flow 2 weight 3 and bound 7, so x2 = 3t: B still saturates first, at t_B = 2 (A would at
//   10/4 = 2.5, the bound at 7/3): x1 = x3 = 2, and A holds 2 + 6 = 8. Then x2 alone rises: A would
//   saturate at x2 = 8 (t = 8/3), but the bound comes first (t = 7/3).
//   Result: x1 = 2, x2 = 7, x3 = 2; A carries 9 of 10.
//
//   Stripe flow 1 instead, half over A and half over B (a_A1 = a_B1 = 1/2), all weights 1:
//   A: x1/2 + x2 <= 10, B: x1/2 + x3 <= 4. B saturates at t = 4/1.5 = 8/3: x1 = x3 = 8/3;
//   A has 10 - 4/3 = 26/3 left for x2. Result: x1 = 8/3, x2 = 26/3, x3 = 8/3.
//
// USAGE.
//
//   MaxMinSolver solver;
//   const ResourceId a = solver.AddResource(10e9), b = solver.AddResource(4e9);
//   const VariableId f1 = solver.AddVariable({{a, 1.0}, {b, 1.0}});
//   const VariableId f2 = solver.AddVariable({{a, 1.0}});
//   const VariableId f3 = solver.AddVariable({{b, 1.0}});
//   for (VariableId changed : solver.Solve()) Reschedule(changed, solver.Rate(changed));
//   solver.Rate(f2) == 8e9;
//   solver.RemoveVariable(f3);       // flow 3 ends
//   solver.Solve();                  // restarts the filling of a and b at f3's step
//
// INCREMENTAL SOLVING. Variables are linked through the resources they share; a connected component
// of that graph is solved independently of the others, and every other variable keeps its rate
// without being looked at. Solve() returns the variables whose rate changed, so the caller
// reschedules only those. A component is re-solved in one of two ways:
//
//   whole     when it holds a variable added since the last Solve() or a resource whose capacity
//             was set: progressive filling from level 0 over all its variables.
//   restart   when variables were only removed from it. The solver keeps, per component, the order
//             in which the last solve froze its variables (its freeze order, with each variable's
//             filling step). Removing v, frozen in step s, changes no variable frozen before step
//             s: until then v was unfrozen, so none of its resources had saturated, and without v
//             they saturate no sooner (t_r = R / W only grows when a term leaves W); every earlier
//             step happens as before. So the filling restarts at step s with only the variables
//             frozen from step s on (the suffix) unfrozen, each resource starting from c_r minus
//             what the earlier variables hold. (Adding a variable can lower earlier levels, so an
//             addition re-solves the whole component.)
//
// STEPS. Variables frozen in one filling step (those of the resource that saturated, or one that
// reached its bound) are recomputed together: a step is only ever re-solved whole, as a restart
// starts at a step and a component is re-solved whole. recomputed() lists what the last Solve()
// recomputed, changed or not, step by step, and StepOf(v) gives the live variables of v's step, so
// that a caller can keep one record per step (the flow model: one queue entry per step, not per
// flow) and know it stale as soon as any of its variables is recomputed.
//
// A restart costs O(uses of the suffix) plus the heap work on the suffix's resources, not the
// component's size: when a flow ends, usually only the flows faster than it are re-solved. It finds
// what the earlier variables hold through each resource's slack, c_r - sum_v a_rv x_v over its
// variables, kept up to date by Solve() and RemoveVariable(): the restart starts from slack plus
// what the suffix held. Slack is summed afresh from the resource's variables whenever its
// incremental updates since outnumber them 16 to 1, which bounds rounding drift at O(1) amortized.
// The orders keep their own copy of each variable's weight, bound, rate and uses (40 bytes plus 16
// per use), so that a restart reads its suffix front to back rather than chasing variables over
// memory; each Solve() lays what it fills out in small local arrays for the same reason, and
// writes the refilled suffix back over the old one in place.
//
// DETERMINISM. The same sequence of calls gives bit-identical rates: every loop runs in an order
// fixed by ids and by the order of calls (no hashing). A component re-solved whole does not depend
// on which other components were solved in the same call, and gives bit for bit what
// SolveFromScratch() gives. A restart adds and subtracts in another order than a whole solve, so
// after removals the rates agree with SolveFromScratch() to rounding, not bit for bit: the tests
// hold them within a relative 1e-9 (absolute 1e-15 of the largest capacity for rates near 0) and
// check the max-min conditions directly. A fresh solver fed the same variables in another order may
// also differ in the last bits (floating-point sums in another order).
//
// IDS. Ids are dense indices. Resources are never removed. A removed variable's id is reused by a
// later AddVariable (the most recently removed first), so memory stays bounded over a long
// simulation; never use an id after removing its variable.
//
// PRECONDITIONS are programming errors, not user input (the network model validates links and
// routes before it gets here), and are checked with assert: capacities > 0, coefficients > 0,
// weights > 0, bounds >= 0, and ids that exist.
//
// THREAD SAFETY: none; one solver per simulation, used from one thread. Copyable.
#pragma once

#include <compare>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <utility>
#include <vector>

namespace moesim::sim {

// A resource: one direction of one link, to the network model.
struct ResourceId {
  uint32_t value = 0;
  constexpr auto operator<=>(const ResourceId&) const = default;
};

// A variable: one flow's rate, to the network model.
struct VariableId {
  uint32_t value = 0;
  constexpr auto operator<=>(const VariableId&) const = default;
};

// A resource a variable uses: the variable's rate times `coefficient` counts against the resource's
// capacity. Requires coefficient > 0.
struct ResourceUse {
  ResourceId resource;
  double coefficient = 1.0;
};

// What the last Solve() did, for tests and benchmarks.
struct SolveStats {
  uint64_t components = 0;  // components re-solved whole (those holding at least one variable)
  uint64_t restarts = 0;    // freeze orders restarted after removals (with a variable to re-solve)
  uint64_t variables = 0;   // every variable whose rate was recomputed
  uint64_t resources = 0;   // the resources they use
  uint64_t steps = 0;       // progressive-filling steps: resources saturated plus bounds reached
  uint64_t changed = 0;     // variables whose rate changed: the size of Solve()'s list
};

class MaxMinSolver {
 public:
  // A new resource of `capacity` units per second (> 0), with no variables yet.
  ResourceId AddResource(double capacity);
  // Takes effect at the next Solve(), which re-solves the resource's component.
  void SetCapacity(ResourceId resource, double capacity);
  double Capacity(ResourceId resource) const;

  // A new variable using `uses` (a resource listed twice counts once, with the coefficients
  // added), with `weight` (> 0) and an optional upper `bound` (>= 0). A variable with no uses gets
  // its bound, or +infinity without one. Its rate is 0 until the next Solve().
  VariableId AddVariable(std::span<const ResourceUse> uses, double weight = 1.0,
                         std::optional<double> bound = std::nullopt);
  VariableId AddVariable(std::initializer_list<ResourceUse> uses, double weight = 1.0,
                         std::optional<double> bound = std::nullopt) {
    return AddVariable(std::span<const ResourceUse>(uses.begin(), uses.size()), weight, bound);
  }
  // The variable's id becomes free for reuse; its resources are re-solved at the next Solve().
  void RemoveVariable(VariableId variable);
  // Whether `variable` names a variable that has not been removed.
  bool Contains(VariableId variable) const;

  // Recomputes the rates of the components changed since the last Solve() and returns the live
  // variables whose rate changed (bitwise), including every variable added since, in the order the
  // solve recomputed them: no particular order, but the same for the same calls (sorting would
  // cost a flow simulation several percent). The list stays valid until the next Solve().
  const std::vector<VariableId>& Solve();
  // Solve() with every component re-solved whole: the reference incremental solves are held to
  // (see DETERMINISM).
  const std::vector<VariableId>& SolveFromScratch();

  // Units per second, as of the last Solve() (0 for a variable added since).
  double Rate(VariableId variable) const;
  // The list the last Solve() returned, and what it did.
  const std::vector<VariableId>& changed() const { return changed_; }
  // The new rates of changed(), in its order: Rate() without a lookup per variable (a caller that
  // reschedules every changed flow saves a few cache misses each).
  const std::vector<double>& changed_rates() const { return changed_rates_; }
  // Every variable the last Solve() recomputed (changed or not), each step's variables together,
  // in freeze order; `step_start` marks the first of each step. Variables with no uses are steps
  // of their own.
  struct Recomputed {
    VariableId variable;
    bool step_start = false;
    double rate = 0;
  };
  const std::vector<Recomputed>& recomputed() const { return recomputed_; }
  // Appends to *out the live variables frozen in the same step as `variable` by the last Solve()
  // that recomputed it, itself included, in freeze order. Valid between a Solve() and the next
  // one (a variable removed since is no longer listed).
  void StepOf(VariableId variable, std::vector<VariableId>* out) const;
  const SolveStats& last_solve() const { return stats_; }

  size_t resource_count() const { return resources_.size(); }
  size_t variable_count() const { return variables_.size() - free_ids_.size(); }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;

  // The i-th use of a variable; `slot` is the position of its Entry in the resource's entries.
  struct Use {
    uint32_t resource = 0;
    uint32_t slot = 0;
    double coefficient = 1.0;
  };
  // A variable on a resource; `use` is the index of the matching Use among the variable's uses.
  struct Entry {
    uint32_t variable = 0;
    uint32_t use = 0;
    double load = 0;         // a_rv w_v: what the variable adds per unit of level
    double coefficient = 0;  // a_rv, so that summing slack afresh reads no Use
  };
  struct Resource {
    double capacity = 0;
    std::vector<Entry> entries;  // the variables using it, unordered (swap-removed)
    // c_r - sum over its solved variables of a_rv x_v: what the last Solve() left, plus what
    // removals since gave back. `drift` counts the incremental updates since it was summed afresh.
    double slack = 0;
    uint64_t drift = 0;
    bool dirty = false;  // listed in dirty_resources_: re-solve its component whole
  };
  struct Variable {
    uint32_t first = 0;  // its uses are uses_[first, first + count)
    uint32_t count = 0;
    uint32_t reserved = 0;  // slots of uses_ from `first` it owns (>= count), kept across reuse
    // Where the last solve froze it: orders_[order].entries[slots_[id].position]; kNone before
    // its first solve and for a variable with no uses. Its rate is slots_[id].rate.
    uint32_t order = kNone;
    double weight = 1.0;
    double bound = 0;  // +infinity when unbounded
    bool live = false;
    bool added = false;  // added since the last Solve(): always reported as changed
  };

  // A variable as its freeze order records it: all a restart needs, so that re-solving a suffix
  // reads the order front to back instead of variables scattered over memory.
  struct Frozen {
    uint32_t variable = 0;    // kNone once stale: removed, or re-solved whole into another order
    uint32_t step_first = 0;  // position of the first entry frozen in the same filling step
    uint32_t use_first = 0;   // its uses are FreezeOrder::uses[use_first, use_first + use_count)
    uint32_t use_count = 0;
    double weight = 1.0;
    double bound = 0;
    double rate = 0;
  };
  struct FrozenUse {
    // Left uninitialized, so that Freeze() sizes its block and then writes it once.
    FrozenUse() {}
    FrozenUse(uint32_t r, double c) : resource(r), coefficient(c) {}
    uint32_t resource;
    double coefficient;
  };
  // The order in which solves froze the variables of one component (or of what removals left of
  // one, which may since have split: restarting both parts together is still right). Every live
  // variable of a resource is in the same order. Stale entries stay until the order is compacted.
  struct FreezeOrder {
    std::vector<Frozen> entries;
    std::vector<FrozenUse> uses;
    uint32_t live = 0;         // entries that are not stale
    uint32_t restart = kNone;  // lowest position of a variable removed since the last Solve()
    // Where this Solve() started appending what it froze (0 for a new order; kNone if it did
    // not): slots_ of those entries are written after the filling, in one pass (PlacePositions).
    // The filling writes entries from fill_from to fill_end, and their uses up to fill_use_end:
    // over the suffix it restarts, whose entries stay until then, or at the end of a new order.
    uint32_t fill_from = kNone;
    uint32_t fill_end = 0;
    uint32_t fill_use_end = 0;
    bool touched = false;  // listed in touched_orders_ (false between calls)
  };

  // What one Solve() fills, with its own dense indices so that the filling works in cache: the
  // variables it re-solves and the resources they use.
  // Both left uninitialized, so that a restart sizes its arrays once and then writes each field
  // once (Visit and GatherRestart set every field but `rate`, which the filling sets).
  struct LocalVariable {
    LocalVariable() {}
    uint32_t id;         // the variable
    uint32_t order;      // the freeze order it is appended to as it freezes (kNone: no uses)
    uint32_t use_first;  // its uses are local_uses_[use_first, use_first + use_count)
    uint32_t use_count;
    double weight;
    double bound;
    double old_rate;
    double rate;
    bool added;
  };
  struct LocalUse {
    LocalUse() {}
    LocalUse(uint32_t r, double c) : resource(r), coefficient(c) {}
    uint32_t resource;  // index in local_resources_
    double coefficient;
  };
  struct LocalResource {
    uint32_t id = 0;            // the resource: ties in the heap go to the lower id
    uint32_t list_first = 0;    // its unfrozen variables at the start:
    uint32_t list_count = 0;    //   local_lists_[list_first, list_first + list_count)
    uint32_t unfrozen = 0;      // variables on it not frozen yet
    uint32_t heap_pos = 0;      // index in heap_, or kNone
    bool batched = false;       // listed in batch_
    bool stale = false;         // `level` is below the true t_r (see RekeyBatch)
    double remaining = 0;       // c_r - sum over frozen variables of a_rv x_v
    double pending_weight = 0;  // sum over unfrozen variables of a_rv w_v
    double level = 0;           // t_r = remaining / pending_weight: the heap key
    double held = 0;            // a restart's: sum of a_rv x_v over the suffix, at the old rates
  };
  struct ListEntry {
    // Left uninitialized, so that sizing local_lists_ for a restart writes nothing it will
    // overwrite. Only the variable: 4 bytes, so that a restart's lists, written in random order,
    // stay in the first-level cache (a_rv w_v is found again from its uses when needed).
    ListEntry() {}
    explicit ListEntry(uint32_t v) : variable(v) {}
    uint32_t variable;  // index in local_variables_
  };

  double RateOf(uint32_t variable) const;
  void MarkDirty(uint32_t resource);
  void CompactUses();
  // Whole components (maxmin.cc): gathers the component of each seed as a local problem, and
  // gives it a new freeze order.
  void CollectFrom(uint32_t resource_seed);
  void CollectFromVariable(uint32_t variable_seed);
  void Visit(uint32_t variable);
  void DrainQueue(size_t next_resource, size_t variables_before);
  void GatherWhole();
  uint32_t LocalResourceOf(uint32_t resource);
  // Restarts (maxmin_restart.cc): lays out the suffix of each order with removals, and the
  // resources it uses with their remaining capacities; then reports what changed and keeps the
  // orders tidy.
  void GatherRestarts();
  void GatherRestart(uint32_t order);
  std::vector<std::pair<uint32_t, uint32_t>> truncations_;  // (order, from) once gathered
  void StartRestartResources(size_t first_resource, size_t first_variable);
  double HeldBy(const Resource& resource) const;
  void Stale(uint32_t order, uint32_t position);
  void TouchOrder(uint32_t order);
  uint32_t NewOrder();
  void WriteBack();
  void TidyOrders();
  void PlacePositions(uint32_t order);
  void CompactOrder(uint32_t order);
  // Progressive filling over the local problem (maxmin_filling.cc).
  void Fill();
  void FillStep(uint32_t resource);
  // What a step's variables take off the resource that saturates (see FillStep).
  struct StepTotals {
    uint32_t resource;
    double remaining;
    double pending_weight;
    uint32_t unfrozen;
  };
  // Inlined into FillStep(), so that `step` lives in registers.
  [[gnu::always_inline]] inline void Freeze(uint32_t variable, double rate, StepTotals* step);
  void RekeyBatch();
  void CleanTop();
  double Level(uint32_t resource);
  double LoadOn(uint32_t resource, uint32_t variable) const;
  // The heap of local resources by (level, id); see maxmin_filling.cc.
  struct HeapItem {
    double level;       // the resource's `level`, copied
    uint32_t id;        // its id, for ties
    uint32_t resource;  // index in local_resources_
  };
  static constexpr size_t kHeapArity = 4;
  static bool HeapLess(const HeapItem& a, const HeapItem& b);
  void HeapPush(uint32_t resource);
  uint32_t HeapPop();
  void HeapRemove(uint32_t resource);
  void SiftUp(size_t pos);
  void SiftDown(size_t pos);
  void HeapPlace(size_t pos, const HeapItem& item);

  std::vector<Resource> resources_;
  std::vector<Variable> variables_;
  // Per variable, apart from Variable: whether a whole-component collection reached it (0 between
  // calls), its index in local_variables_ while it is laid out, and its position in its freeze
  // order with its rate (a copy of the entry's there, so that summing a resource's slack afresh
  // reads one place per variable; for a variable in no order, 0 before its first solve, else its
  // bound). Kept apart so that a solve's scattered accesses land in small arrays that stay in
  // cache.
  struct Slot {
    uint32_t position = 0;
    double rate = 0;
  };
  std::vector<uint8_t> visited_;
  std::vector<uint32_t> local_of_;
  std::vector<Slot> slots_;
  // Per resource, apart from Resource for the same reason: its index in local_resources_ while a
  // Solve() lays it out (kNone between calls).
  std::vector<uint32_t> resource_local_;
  std::vector<Use> uses_;           // every variable's uses, in blocks (see Variable::first)
  uint64_t garbage_uses_ = 0;       // slots of uses_ no variable owns; compacted when large
  std::vector<uint32_t> free_ids_;  // removed variables, reused last-in first-out
  std::vector<uint32_t> dirty_resources_;
  std::vector<uint32_t> dirty_variables_;  // added since the last Solve() (may have been removed)
  std::vector<FreezeOrder> orders_;
  std::vector<uint32_t> free_orders_;     // orders with no live entry, for reuse
  std::vector<uint32_t> restart_orders_;  // orders with a removal since the last Solve()
  std::vector<uint32_t> touched_orders_;  // orders that gained or lost entries in this Solve()

  // Scratch of one Solve(), kept to reuse its memory.
  std::vector<uint32_t> component_resources_;  // whole components' resources, global ids
  uint32_t collect_order_ = kNone;             // the order of the component being collected
  std::vector<LocalVariable> local_variables_;
  std::vector<uint8_t> local_frozen_;  // per local variable: frozen yet (apart: probed at random)
  std::vector<LocalUse> local_uses_;
  std::vector<LocalResource> local_resources_;
  std::vector<ListEntry> local_lists_;
  std::vector<std::pair<double, uint64_t>> bound_order_;  // (b_v / w_v, v << 32 | local index)
  std::vector<HeapItem> heap_;
  std::vector<uint32_t> batch_;  // local resources whose level changed in one filling step:
  size_t batch_size_ = 0;        //   batch_[0, batch_size_)
  uint32_t step_first_ = kNone;  // position in its order of the current step's first variable
  std::vector<ResourceUse> merged_;

  std::vector<VariableId> changed_;
  std::vector<double> changed_rates_;
  std::vector<Recomputed> recomputed_;
  SolveStats stats_;
};

}  // namespace moesim::sim
