// Tests of the max-min fair solver, with no network model around it: hand-computed systems, then
// random systems against two independent oracles written here, then random sequences of changes
// and of removals (the restart path, see INCREMENTAL SOLVING in maxmin.h) against from-scratch
// solves.
//
// The oracles:
//   NaiveFill      progressive filling straight from the definition on a dense matrix: every round
//                  recomputes every resource's remaining capacity and unfrozen weight from scratch
//                  (no heap, no running sums), takes the smallest level, freezes what hits it.
//   CheckMaxMinFair  the optimality conditions, which characterise the unique weighted max-min fair
//                  allocation: feasibility (every resource within capacity, every rate in
//                  [0, bound]) and every variable either at its bound or with a bottleneck, a
//                  saturated resource on which no variable has a larger x_u / w_u. (If some
//                  feasible y had y_v / w_v > x_v / w_v, v's bottleneck r is full, so some u on r
//                  has y_u < x_u with x_u / w_u <= x_v / w_v: x is max-min fair.)
// Both are checked to relative tolerance 1e-9.
#include "sim/network/maxmin.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

// So that a failed comparison of id lists prints the ids.
template <>
struct Catch::StringMaker<moesim::sim::VariableId> {
  static std::string convert(moesim::sim::VariableId id) { return "v" + std::to_string(id.value); }
};

namespace moesim::sim {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kTolerance = 1e-9;

// SplitMix64 (Steele, Lea, Flood 2014): small, fully specified, the same on every platform.
class TestRng {
 public:
  explicit TestRng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // In [0, n); the modulo bias is irrelevant for test data.
  uint32_t Below(uint32_t n) { return static_cast<uint32_t>(Next() % n); }
  // In [lo, hi), from the top 53 bits.
  double Uniform(double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(Next() >> 11) * 0x1.0p-53;
  }
  bool Chance(uint32_t percent) { return Below(100) < percent; }

 private:
  uint64_t state_;
};

struct TestVariable {
  std::vector<ResourceUse> uses;
  double weight = 1.0;
  std::optional<double> bound;
};

struct Instance {
  std::vector<double> capacities;
  std::vector<TestVariable> variables;
};

bool Near(double actual, double expected, double scale = 0) {
  if (actual == expected) return true;  // also equal infinities
  return std::abs(actual - expected) <= kTolerance * std::max({std::abs(expected), scale, 1e-300});
}

// a_rv as a dense matrix, coefficients of repeated uses added.
std::vector<std::vector<double>> Matrix(const Instance& in) {
  std::vector<std::vector<double>> a(in.capacities.size(),
                                     std::vector<double>(in.variables.size(), 0.0));
  for (size_t v = 0; v < in.variables.size(); ++v) {
    for (const ResourceUse& use : in.variables[v].uses) a[use.resource.value][v] += use.coefficient;
  }
  return a;
}

// Slow, independent progressive filling (see the top of the file).
std::vector<double> NaiveFill(const Instance& in) {
  const auto a = Matrix(in);
  const size_t nr = in.capacities.size();
  const size_t nv = in.variables.size();
  std::vector<double> x(nv, 0.0);
  std::vector<bool> frozen(nv, false);
  for (size_t v = 0; v < nv; ++v) {
    if (in.variables[v].uses.empty()) {
      x[v] = in.variables[v].bound.value_or(kInf);
      frozen[v] = true;
    }
  }
  while (std::find(frozen.begin(), frozen.end(), false) != frozen.end()) {
    std::vector<double> level(nr, kInf);
    double t = kInf;
    for (size_t r = 0; r < nr; ++r) {
      double remaining = in.capacities[r];
      double weight = 0;
      for (size_t v = 0; v < nv; ++v) {
        if (a[r][v] == 0) continue;
        if (frozen[v]) {
          remaining -= a[r][v] * x[v];
        } else {
          weight += a[r][v] * in.variables[v].weight;
        }
      }
      if (weight > 0) level[r] = std::max(remaining, 0.0) / weight;
      t = std::min(t, level[r]);
    }
    for (size_t v = 0; v < nv; ++v) {
      if (!frozen[v] && in.variables[v].bound) {
        t = std::min(t, *in.variables[v].bound / in.variables[v].weight);
      }
    }
    const double hit = t * (1 + 1e-12);
    std::vector<bool> freeze(nv, false);
    for (size_t v = 0; v < nv; ++v) {
      if (frozen[v]) continue;
      const TestVariable& var = in.variables[v];
      if (var.bound && *var.bound / var.weight <= hit) {
        x[v] = *var.bound;
        freeze[v] = true;
        continue;
      }
      for (size_t r = 0; r < nr; ++r) {
        if (a[r][v] > 0 && level[r] <= hit) {
          x[v] = var.weight * t;
          freeze[v] = true;
          break;
        }
      }
    }
    for (size_t v = 0; v < nv; ++v) frozen[v] = frozen[v] || freeze[v];
  }
  return x;
}

// The optimality conditions (see the top of the file); "" when they hold, else the first violation.
std::string CheckMaxMinFair(const Instance& in, const std::vector<double>& x) {
  const auto a = Matrix(in);
  const size_t nr = in.capacities.size();
  const size_t nv = in.variables.size();
  std::ostringstream why;
  std::vector<double> usage(nr, 0.0);
  for (size_t r = 0; r < nr; ++r) {
    for (size_t v = 0; v < nv; ++v) usage[r] += a[r][v] * x[v];
    if (usage[r] > in.capacities[r] * (1 + kTolerance)) {
      why << "resource " << r << " carries " << usage[r] << " > capacity " << in.capacities[r];
      return why.str();
    }
  }
  for (size_t v = 0; v < nv; ++v) {
    const TestVariable& var = in.variables[v];
    const double bound = var.bound.value_or(kInf);
    if (!(x[v] >= 0) || x[v] > bound * (1 + kTolerance)) {
      why << "variable " << v << " rate " << x[v] << " outside [0, " << bound << "]";
      return why.str();
    }
    if (var.uses.empty()) {
      if (x[v] != bound) {
        why << "variable " << v << " with no resources has " << x[v] << ", not " << bound;
        return why.str();
      }
      continue;
    }
    if (x[v] >= bound * (1 - kTolerance)) continue;  // at its bound
    bool has_bottleneck = false;
    for (size_t r = 0; r < nr && !has_bottleneck; ++r) {
      if (a[r][v] == 0 || usage[r] < in.capacities[r] * (1 - kTolerance)) continue;
      double largest = 0;
      for (size_t u = 0; u < nv; ++u) {
        if (a[r][u] > 0) largest = std::max(largest, x[u] / in.variables[u].weight);
      }
      has_bottleneck = x[v] / var.weight >= largest * (1 - kTolerance);
    }
    if (!has_bottleneck) {
      why << "variable " << v << " rate " << x[v] << " is below its bound and has no bottleneck";
      return why.str();
    }
  }
  return "";
}

// Solve() lists changed variables in no particular order; the tests compare sorted lists.
std::vector<VariableId> Sorted(std::vector<VariableId> ids) {
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<VariableId> Build(const Instance& in, MaxMinSolver* solver) {
  for (double c : in.capacities) solver->AddResource(c);
  std::vector<VariableId> ids;
  for (const TestVariable& var : in.variables) {
    ids.push_back(solver->AddVariable(var.uses, var.weight, var.bound));
  }
  return ids;
}

std::vector<double> Rates(const MaxMinSolver& solver, const std::vector<VariableId>& ids) {
  std::vector<double> rates;
  for (VariableId id : ids) rates.push_back(solver.Rate(id));
  return rates;
}

// "" when every rate is within tolerance of the reference, else the first difference. Rates are
// compared relative to themselves, or to the largest capacity for rates near zero.
std::string CompareRates(const Instance& in, const std::vector<double>& x,
                         const std::vector<double>& reference) {
  const double scale = *std::max_element(in.capacities.begin(), in.capacities.end()) * 1e-6;
  for (size_t v = 0; v < x.size(); ++v) {
    if (!Near(x[v], reference[v], scale)) {
      std::ostringstream why;
      why.precision(17);
      why << "variable " << v << ": solver " << x[v] << ", reference " << reference[v];
      return why.str();
    }
  }
  return "";
}

// Capacities from a small set half the time, so that resources tie and saturate together.
double RandomCapacity(TestRng& rng) {
  static constexpr double kRound[] = {1, 2, 3, 4, 6, 10};
  return rng.Chance(50) ? kRound[rng.Below(6)] : rng.Uniform(0.5, 100);
}

TestVariable RandomVariable(TestRng& rng, uint32_t first_resource, uint32_t resources) {
  TestVariable var;
  const uint32_t max_uses = std::min<uint32_t>(resources, 4);
  const uint32_t uses = rng.Chance(5) ? 0 : 1 + rng.Below(max_uses);
  for (uint32_t k = 0; k < uses; ++k) {
    double coefficient = 1.0;
    if (rng.Chance(20)) {
      coefficient = rng.Chance(50) ? 0.5 : 0.25;
    } else if (rng.Chance(25)) {
      coefficient = rng.Uniform(0.05, 1.0);
    }
    // Occasionally the same resource twice: the solver must add the coefficients.
    const uint32_t r = (k > 0 && rng.Chance(10)) ? var.uses[0].resource.value
                                                 : first_resource + rng.Below(resources);
    var.uses.push_back(ResourceUse{ResourceId{r}, coefficient});
  }
  if (rng.Chance(30)) {
    var.weight = rng.Chance(50) ? (rng.Chance(50) ? 2.0 : 0.5) : rng.Uniform(0.25, 4);
  }
  if (rng.Chance(25) || (uses == 0 && rng.Chance(50))) {
    var.bound = rng.Chance(10) ? 0.0 : rng.Uniform(0.1, 20);
  }
  return var;
}

Instance RandomInstance(TestRng& rng, uint32_t max_resources, uint32_t max_variables) {
  Instance in;
  const uint32_t resources = 1 + rng.Below(max_resources);
  const uint32_t variables = 1 + rng.Below(max_variables);
  for (uint32_t r = 0; r < resources; ++r) in.capacities.push_back(RandomCapacity(rng));
  for (uint32_t v = 0; v < variables; ++v) {
    in.variables.push_back(RandomVariable(rng, 0, resources));
  }
  return in;
}

TEST_CASE("N equal flows on one link each get B over N", "[maxmin]") {
  for (int n : {1, 2, 3, 7, 64}) {
    MaxMinSolver solver;
    const ResourceId link = solver.AddResource(100e9);
    std::vector<VariableId> flows;
    for (int i = 0; i < n; ++i) flows.push_back(solver.AddVariable({{link, 1.0}}));
    solver.Solve();
    // x = B / N: the link saturates at t = 100e9 / N with every flow at t.
    for (VariableId f : flows) CHECK(solver.Rate(f) == Approx(100e9 / n).epsilon(1e-12));
    CHECK(solver.last_solve().steps == 1);
  }
}

// The header's worked example: link A (10) carries flows 1 and 2, link B (4) flows 1 and 3,
// solved once.
struct HeaderExample {
  MaxMinSolver solver;
  ResourceId a = solver.AddResource(10);
  ResourceId b = solver.AddResource(4);
  VariableId f1 = solver.AddVariable({{a, 1.0}, {b, 1.0}});
  VariableId f2 = solver.AddVariable({{a, 1.0}});
  VariableId f3 = solver.AddVariable({{b, 1.0}});
  HeaderExample() { solver.Solve(); }
};

TEST_CASE("Two links and three flows as in the header", "[maxmin]") {
  HeaderExample ex;
  MaxMinSolver& solver = ex.solver;
  const ResourceId a = ex.a, b = ex.b;
  const VariableId f1 = ex.f1, f2 = ex.f2, f3 = ex.f3;
  // t_B = 4/2 = 2 < t_A = 10/2: x1 = x3 = 2; then A has 10 - 2 = 8 for x2.
  CHECK(solver.Rate(f1) == 2);
  CHECK(solver.Rate(f2) == 8);
  CHECK(solver.Rate(f3) == 2);

  SECTION("flow 2 with weight 3 and bound 7") {
    // Same as above but x2 = 3t: B saturates at t = 2 (x1 = x3 = 2, A holds 2 + 6 = 8), then x2
    // stops at its bound 7 (t = 7/3) before A would saturate at x2 = 8 (t = 8/3).
    solver.RemoveVariable(f2);
    const VariableId g2 = solver.AddVariable({{a, 1.0}}, 3.0, 7.0);
    solver.Solve();
    CHECK(solver.Rate(f1) == 2);
    CHECK(solver.Rate(g2) == 7);
    CHECK(solver.Rate(f3) == 2);
  }
  SECTION("flow 1 striped half over A and half over B") {
    // A: x1/2 + x2 <= 10, B: x1/2 + x3 <= 4. B saturates at t = 4/1.5 = 8/3: x1 = x3 = 8/3;
    // A keeps 10 - 4/3 = 26/3 for x2.
    solver.RemoveVariable(f1);
    const VariableId g1 = solver.AddVariable({{a, 0.5}, {b, 0.5}});
    solver.Solve();
    CHECK(solver.Rate(g1) == Approx(8.0 / 3).epsilon(1e-12));
    CHECK(solver.Rate(f2) == Approx(26.0 / 3).epsilon(1e-12));
    CHECK(solver.Rate(f3) == Approx(8.0 / 3).epsilon(1e-12));
  }
}

TEST_CASE("Parking lot shares each link between the long flow and its short flow", "[maxmin]") {
  // Links L0..L3 of capacity C in a line; one long flow crosses all, one short flow per link.
  // Every link holds two flows, saturating at t = C/2 together: everyone gets C/2.
  MaxMinSolver solver;
  std::vector<ResourceUse> path;
  std::vector<VariableId> shorts;
  for (int i = 0; i < 4; ++i) {
    const ResourceId link = solver.AddResource(40);
    path.push_back(ResourceUse{link, 1.0});
    shorts.push_back(solver.AddVariable({{link, 1.0}}));
  }
  const VariableId long_flow = solver.AddVariable(path);
  solver.Solve();
  CHECK(solver.Rate(long_flow) == 20);
  for (VariableId f : shorts) CHECK(solver.Rate(f) == 20);

  SECTION("with rising capacities the first link is the long flow's bottleneck") {
    // Capacities 1, 2, 3, 4: L0 saturates at t = 1/2, freezing the long flow and short 0 at 0.5;
    // each later link i gives its short flow (i + 1) - 0.5.
    for (uint32_t i = 0; i < 4; ++i) solver.SetCapacity(ResourceId{i}, i + 1.0);
    solver.Solve();
    CHECK(solver.Rate(long_flow) == 0.5);
    CHECK(solver.Rate(shorts[0]) == 0.5);
    CHECK(solver.Rate(shorts[1]) == 1.5);
    CHECK(solver.Rate(shorts[2]) == 2.5);
    CHECK(solver.Rate(shorts[3]) == 3.5);
  }
}

TEST_CASE("A flow striped over four links counts a quarter on each", "[maxmin]") {
  MaxMinSolver solver;
  std::vector<ResourceUse> planes;
  for (int i = 0; i < 4; ++i) planes.push_back(ResourceUse{solver.AddResource(100), 0.25});
  const VariableId striped = solver.AddVariable(planes);
  solver.Solve();
  // Alone: x/4 <= 100 on each plane, so x = 400 (the four planes together).
  CHECK(solver.Rate(striped) == 400);

  // A plain flow on plane 0: t/4 + t = 100 there, so t = 80 for both; planes 1-3 carry only 20.
  const VariableId plain = solver.AddVariable({{planes[0].resource, 1.0}});
  solver.Solve();
  CHECK(solver.Rate(striped) == Approx(80).epsilon(1e-12));
  CHECK(solver.Rate(plain) == Approx(80).epsilon(1e-12));
}

TEST_CASE("Bounds cap a flow and leave the rest to the others", "[maxmin]") {
  MaxMinSolver solver;
  const ResourceId link = solver.AddResource(100);
  const VariableId capped = solver.AddVariable({{link, 1.0}}, 1.0, 10.0);
  const VariableId free1 = solver.AddVariable({{link, 1.0}});
  const VariableId free2 = solver.AddVariable({{link, 1.0}});
  const VariableId stopped = solver.AddVariable({{link, 1.0}}, 1.0, 0.0);
  solver.Solve();
  // The bound 0 freezes at t = 0, the bound 10 at t = 10; the others share 100 - 10 = 90.
  CHECK(solver.Rate(stopped) == 0);
  CHECK(solver.Rate(capped) == 10);
  CHECK(solver.Rate(free1) == 45);
  CHECK(solver.Rate(free2) == 45);

  // A bound above the fair share does not bind: 100/3 each.
  solver.RemoveVariable(capped);
  const VariableId loose = solver.AddVariable({{link, 1.0}}, 1.0, 50.0);
  solver.Solve();
  CHECK(solver.Rate(loose) == Approx(100.0 / 3).epsilon(1e-12));
  CHECK(solver.Rate(free1) == Approx(100.0 / 3).epsilon(1e-12));
}

TEST_CASE("Weights share a link in proportion", "[maxmin]") {
  MaxMinSolver solver;
  const ResourceId link = solver.AddResource(100);
  const VariableId light = solver.AddVariable({{link, 1.0}}, 1.0);
  const VariableId heavy = solver.AddVariable({{link, 1.0}}, 3.0);
  solver.Solve();
  // x = w t with t + 3t = 100: t = 25.
  CHECK(solver.Rate(light) == 25);
  CHECK(solver.Rate(heavy) == 75);

  // Weight and coefficient together: a weight-2 flow striped 1/2 on the link and 1/2 elsewhere.
  // On the link: t + 3t + (1/2) 2t = 5t = 100, t = 20: x = 20, 60 and 40 (40/2 = 20 on the link).
  const ResourceId other = solver.AddResource(1000);
  const VariableId striped = solver.AddVariable({{link, 0.5}, {other, 0.5}}, 2.0);
  solver.Solve();
  CHECK(solver.Rate(light) == Approx(20).epsilon(1e-12));
  CHECK(solver.Rate(heavy) == Approx(60).epsilon(1e-12));
  CHECK(solver.Rate(striped) == Approx(40).epsilon(1e-12));
}

TEST_CASE("A resource listed twice counts once with the coefficients added", "[maxmin]") {
  MaxMinSolver solver;
  const ResourceId link = solver.AddResource(90);
  const VariableId twice = solver.AddVariable({{link, 1.0}, {link, 1.0}});
  const VariableId once = solver.AddVariable({{link, 1.0}});
  solver.Solve();
  // 2t + t = 90: t = 30 for both (the first loads the link with 60).
  CHECK(solver.Rate(twice) == 30);
  CHECK(solver.Rate(once) == 30);
}

TEST_CASE("A variable with no resources gets its bound or infinity", "[maxmin]") {
  MaxMinSolver solver;
  const VariableId bounded = solver.AddVariable(std::span<const ResourceUse>{}, 1.0, 5.0);
  const VariableId unbounded = solver.AddVariable(std::span<const ResourceUse>{});
  CHECK(solver.Rate(bounded) == 0);  // not solved yet
  const std::vector<VariableId> changed = Sorted(solver.Solve());
  CHECK(solver.Rate(bounded) == 5);
  CHECK(solver.Rate(unbounded) == kInf);
  CHECK(changed == std::vector<VariableId>{bounded, unbounded});
  CHECK(solver.last_solve().components == 2);
}

TEST_CASE("Removed ids are reused most recent first", "[maxmin]") {
  MaxMinSolver solver;
  const ResourceId link = solver.AddResource(12);
  const VariableId v0 = solver.AddVariable({{link, 1.0}});
  const VariableId v1 = solver.AddVariable({{link, 1.0}});
  const VariableId v2 = solver.AddVariable({{link, 1.0}});
  solver.Solve();
  solver.RemoveVariable(v0);
  solver.RemoveVariable(v2);
  CHECK_FALSE(solver.Contains(v0));
  CHECK(solver.variable_count() == 1);
  // The last removed (v2) comes back first, then v0, then a new id.
  CHECK(solver.AddVariable({{link, 1.0}}) == v2);
  CHECK(solver.AddVariable({{link, 1.0}}, 1.0, 1.0) == v0);
  CHECK(solver.AddVariable({{link, 1.0}}) == VariableId{3});
  const std::vector<VariableId> changed = Sorted(solver.Solve());
  // v0 is bounded at 1; v1, v2 and v3 share 12 - 1 = 11. Every re-added id counts as changed.
  CHECK(solver.Rate(v0) == 1);
  CHECK(solver.Rate(v1) == Approx(11.0 / 3).epsilon(1e-12));
  CHECK(changed == std::vector<VariableId>{v0, v1, v2, VariableId{3}});
}

TEST_CASE("Solve with nothing changed touches nothing", "[maxmin]") {
  MaxMinSolver solver;
  const ResourceId link = solver.AddResource(10);
  const VariableId flow = solver.AddVariable({{link, 1.0}});
  CHECK(solver.Solve().size() == 1);
  CHECK(solver.Solve().empty());
  CHECK(solver.last_solve().variables == 0);
  CHECK(solver.last_solve().components == 0);
  solver.SetCapacity(link, 10);  // the same capacity: no change
  CHECK(solver.Solve().empty());
  CHECK(solver.Rate(flow) == 10);
}

TEST_CASE("Incremental solves touch only the changed component", "[maxmin]") {
  // Component A: links a0, a1 with flows a0-only, a1-only, and a0+a1. Component B: link b with
  // three flows. Nothing links A and B.
  MaxMinSolver solver;
  const ResourceId a0 = solver.AddResource(10);
  const ResourceId a1 = solver.AddResource(4);
  const ResourceId b = solver.AddResource(30);
  const VariableId across = solver.AddVariable({{a0, 1.0}, {a1, 1.0}});
  const VariableId on_a0 = solver.AddVariable({{a0, 1.0}});
  const VariableId on_a1 = solver.AddVariable({{a1, 1.0}});
  std::vector<VariableId> on_b;
  for (int i = 0; i < 3; ++i) on_b.push_back(solver.AddVariable({{b, 1.0}}));
  solver.Solve();
  CHECK(solver.last_solve().components == 2);
  CHECK(solver.last_solve().variables == 6);
  const double b_rate = solver.Rate(on_b[0]);
  CHECK(b_rate == 10);  // 30 / 3

  SECTION("adding a flow in A re-solves only A") {
    const VariableId extra = solver.AddVariable({{a1, 1.0}});
    const std::vector<VariableId> changed = Sorted(solver.Solve());
    CHECK(solver.last_solve().components == 1);
    CHECK(solver.last_solve().variables == 4);  // across, on_a0, on_a1, extra
    CHECK(solver.last_solve().resources == 2);
    // a1 now splits 4 three ways: 4/3 each for across, on_a1, extra; a0 leaves 10 - 4/3 to on_a0.
    CHECK(solver.Rate(across) == Approx(4.0 / 3).epsilon(1e-12));
    CHECK(solver.Rate(extra) == Approx(4.0 / 3).epsilon(1e-12));
    CHECK(solver.Rate(on_a0) == Approx(26.0 / 3).epsilon(1e-12));
    for (VariableId f : on_b) CHECK(solver.Rate(f) == b_rate);  // bit for bit
    CHECK(changed == std::vector<VariableId>{across, on_a0, on_a1, extra});
  }
  SECTION("removing a flow in B re-solves only B") {
    // The three flows on b froze in one step, so the restart takes that step again: both others.
    solver.RemoveVariable(on_b[2]);
    const std::vector<VariableId> changed = Sorted(solver.Solve());
    CHECK(solver.last_solve().components == 0);
    CHECK(solver.last_solve().restarts == 1);
    CHECK(solver.last_solve().variables == 2);
    CHECK(solver.Rate(on_b[0]) == 15);  // 30 / 2
    CHECK(solver.Rate(across) == 2);    // untouched: t_a1 = 4/2
    CHECK(changed == std::vector<VariableId>{on_b[0], on_b[1]});
  }
  SECTION("a capacity change re-solves its component") {
    solver.SetCapacity(b, 60);
    solver.Solve();
    CHECK(solver.last_solve().variables == 3);
    CHECK(solver.Rate(on_b[1]) == 20);  // 60 / 3
  }
  SECTION("the result equals a from-scratch solve") {
    solver.RemoveVariable(on_a1);
    solver.AddVariable({{a0, 1.0}}, 2.0);
    solver.Solve();
    MaxMinSolver scratch = solver;
    scratch.SolveFromScratch();
    CHECK(scratch.last_solve().variables == 6);
    CHECK(scratch.changed().empty());  // every rate bit for bit as the incremental solve left it
  }
}

// Solves `count` random systems of up to `resources` resources and `variables` variables and checks
// each against both oracles: feasibility plus the max-min conditions, and the naive filling (the
// allocation is unique, so they must agree).
void CheckRandomSystems(uint64_t seed, int count, uint32_t resources, uint32_t variables) {
  TestRng rng(seed);
  for (int instance = 0; instance < count; ++instance) {
    const Instance in = RandomInstance(rng, resources, variables);
    MaxMinSolver solver;
    const std::vector<VariableId> ids = Build(in, &solver);
    solver.Solve();
    const std::vector<double> x = Rates(solver, ids);
    INFO("instance " << instance);
    REQUIRE(CheckMaxMinFair(in, x) == "");
    REQUIRE(CompareRates(in, x, NaiveFill(in)) == "");
  }
}

TEST_CASE("A thousand random systems satisfy both oracles", "[maxmin]") {
  CheckRandomSystems(20240611, 1000, 8, 16);
}

TEST_CASE("Larger random systems satisfy both oracles", "[maxmin]") {
  CheckRandomSystems(77, 20, 60, 400);
}

// What a random sequence of changes has done, tracked independently of the solver.
struct Mirror {
  std::vector<double> capacities;
  std::vector<std::optional<TestVariable>> variables;  // by id; empty when removed
  std::vector<bool> whole_resources;    // added to or capacity set since the last Solve
  std::vector<bool> removed_resources;  // lost a variable since the last Solve
  std::vector<uint32_t> added;          // variable ids added since the last Solve
  // The solver's freeze orders as the test models them: variables solved whole together share a
  // group (a component, or what removals have left of one); a removal restarts its group.
  std::vector<int64_t> group;  // by id; -1 for none
  int64_t next_group = 0;
  std::vector<int64_t> removed_groups;  // groups that lost a variable since the last Solve
};

// Union-find over resources: the components the solver must re-solve, as the test sees them.
uint32_t Find(std::vector<uint32_t>& parent, uint32_t r) {
  while (parent[r] != r) r = parent[r] = parent[parent[r]];
  return r;
}

// Per variable id: whether it is live and in a component holding a resource flagged in `dirty` or
// a variable added since the last Solve.
std::vector<bool> InDirtyComponents(const Mirror& m, const std::vector<bool>& dirty) {
  std::vector<uint32_t> parent(m.capacities.size());
  std::iota(parent.begin(), parent.end(), 0u);
  for (const auto& var : m.variables) {
    if (!var || var->uses.empty()) continue;
    for (const ResourceUse& use : var->uses) {
      parent[Find(parent, use.resource.value)] = Find(parent, var->uses[0].resource.value);
    }
  }
  std::vector<bool> dirty_root(m.capacities.size(), false);
  for (size_t r = 0; r < m.capacities.size(); ++r) {
    if (dirty[r]) dirty_root[Find(parent, r)] = true;
  }
  for (const uint32_t v : m.added) {
    if (!m.variables[v]->uses.empty()) {
      dirty_root[Find(parent, m.variables[v]->uses[0].resource.value)] = true;
    }
  }
  std::vector<bool> in(m.variables.size(), false);
  for (size_t v = 0; v < m.variables.size(); ++v) {
    const auto& var = m.variables[v];
    if (!var) continue;
    if (var->uses.empty()) {
      in[v] = std::count(m.added.begin(), m.added.end(), v) > 0;
    } else {
      in[v] = dirty_root[Find(parent, var->uses[0].resource.value)];
    }
  }
  return in;
}

// Gives each component solved whole (flagged in `whole`) a new group.
void Regroup(Mirror& m, const std::vector<bool>& whole) {
  std::vector<uint32_t> parent(m.capacities.size());
  std::iota(parent.begin(), parent.end(), 0u);
  for (const auto& var : m.variables) {
    if (!var || var->uses.empty()) continue;
    for (const ResourceUse& use : var->uses) {
      parent[Find(parent, use.resource.value)] = Find(parent, var->uses[0].resource.value);
    }
  }
  m.group.resize(m.variables.size(), -1);
  const int64_t base = m.next_group;
  for (size_t v = 0; v < m.variables.size(); ++v) {
    if (!whole[v] || m.variables[v]->uses.empty()) continue;
    m.group[v] = base + Find(parent, m.variables[v]->uses[0].resource.value);
  }
  m.next_group += static_cast<int64_t>(m.capacities.size());
}

uint64_t Count(const std::vector<bool>& flags) {
  return static_cast<uint64_t>(std::count(flags.begin(), flags.end(), true));
}

TEST_CASE("Random sequences of changes match from-scratch solves", "[maxmin]") {
  TestRng rng(424242);
  for (int sequence = 0; sequence < 150; ++sequence) {
    // Resources in four groups; most variables stay in one group, so there are several components
    // that merge and split as variables come and go.
    MaxMinSolver solver;
    Mirror m;
    const uint32_t groups = 4;
    const uint32_t per_group = 1 + rng.Below(4);
    for (uint32_t r = 0; r < groups * per_group; ++r) {
      m.capacities.push_back(RandomCapacity(rng));
      m.whole_resources.push_back(false);
      m.removed_resources.push_back(false);
      solver.AddResource(m.capacities.back());
    }
    std::vector<double> previous;  // rates by id after the last Solve
    for (int step = 0; step < 40; ++step) {
      INFO("sequence " << sequence << " step " << step);
      const uint32_t changes = 1 + rng.Below(3);
      for (uint32_t c = 0; c < changes; ++c) {
        const uint32_t live = static_cast<uint32_t>(solver.variable_count());
        const uint32_t op = rng.Below(10);
        if (op < 6 || live == 0) {
          TestVariable var = rng.Chance(80)
                                 ? RandomVariable(rng, rng.Below(groups) * per_group, per_group)
                                 : RandomVariable(rng, 0, groups * per_group);
          const VariableId id = solver.AddVariable(var.uses, var.weight, var.bound);
          if (m.variables.size() <= id.value) m.variables.resize(id.value + 1);
          REQUIRE_FALSE(m.variables[id.value].has_value());  // only a removed id comes back
          for (const ResourceUse& use : var.uses) m.whole_resources[use.resource.value] = true;
          m.variables[id.value] = std::move(var);
          m.added.push_back(id.value);
        } else if (op < 9) {
          // Remove the k-th live variable.
          uint32_t k = rng.Below(live);
          uint32_t v = 0;
          while (!m.variables[v] || k-- > 0) ++v;
          for (const ResourceUse& use : m.variables[v]->uses) {
            m.removed_resources[use.resource.value] = true;
          }
          if (v < m.group.size() && m.group[v] >= 0) m.removed_groups.push_back(m.group[v]);
          if (v < m.group.size()) m.group[v] = -1;
          m.variables[v].reset();
          std::erase(m.added, v);
          solver.RemoveVariable(VariableId{v});
        } else {
          const uint32_t r = rng.Below(static_cast<uint32_t>(m.capacities.size()));
          const double capacity = RandomCapacity(rng);
          if (capacity != m.capacities[r]) m.whole_resources[r] = true;
          m.capacities[r] = capacity;
          solver.SetCapacity(ResourceId{r}, capacity);
        }
      }
      // Components with an addition or a capacity change are re-solved whole; groups with only
      // removals are restarted, which re-solves some of their variables; no other is touched.
      const std::vector<bool> whole = InDirtyComponents(m, m.whole_resources);
      uint64_t may_restart = 0;
      m.group.resize(m.variables.size(), -1);
      for (size_t v = 0; v < m.variables.size(); ++v) {
        may_restart += m.variables[v] && !whole[v] && m.group[v] >= 0 &&
                       std::count(m.removed_groups.begin(), m.removed_groups.end(), m.group[v]);
      }
      const std::vector<VariableId> changed = Sorted(solver.Solve());
      CHECK(solver.last_solve().variables >= Count(whole));
      CHECK(solver.last_solve().variables <= Count(whole) + may_restart);
      Regroup(m, whole);
      m.removed_groups.clear();

      // Changed: exactly the live variables added since, or whose rate differs bitwise.
      previous.resize(m.variables.size(), 0.0);
      std::vector<VariableId> expected_changed;
      for (uint32_t v = 0; v < m.variables.size(); ++v) {
        if (!m.variables[v]) continue;
        const bool added = std::find(m.added.begin(), m.added.end(), v) != m.added.end();
        if (added || solver.Rate(VariableId{v}) != previous[v]) {
          expected_changed.push_back(VariableId{v});
        }
        previous[v] = solver.Rate(VariableId{v});
      }
      CHECK(changed == expected_changed);
      // changed_rates() gives their rates, in the order of changed().
      REQUIRE(solver.changed_rates().size() == solver.changed().size());
      for (size_t i = 0; i < solver.changed().size(); ++i) {
        REQUIRE(solver.changed_rates()[i] == solver.Rate(solver.changed()[i]));
      }
      m.added.clear();
      std::fill(m.whole_resources.begin(), m.whole_resources.end(), false);
      std::fill(m.removed_resources.begin(), m.removed_resources.end(), false);

      Instance in;
      in.capacities = m.capacities;
      std::vector<VariableId> ids;
      for (uint32_t v = 0; v < m.variables.size(); ++v) {
        if (!m.variables[v]) continue;
        in.variables.push_back(*m.variables[v]);
        ids.push_back(VariableId{v});
      }
      const std::vector<double> x = Rates(solver, ids);

      // Re-solving everything gives the components solved whole bit for bit, and the rest (last
      // solved by a restart) to rounding.
      MaxMinSolver scratch = solver;
      scratch.SolveFromScratch();
      for (const VariableId id : ids) {
        if (whole[id.value]) REQUIRE(scratch.Rate(id) == solver.Rate(id));
      }
      REQUIRE(CompareRates(in, x, Rates(scratch, ids)) == "");

      // Within tolerance of a fresh solver fed the live variables, and of both oracles.
      MaxMinSolver fresh;
      const std::vector<VariableId> fresh_ids = Build(in, &fresh);
      fresh.Solve();
      REQUIRE(CompareRates(in, x, Rates(fresh, fresh_ids)) == "");
      REQUIRE(CheckMaxMinFair(in, x) == "");
      REQUIRE(CompareRates(in, x, NaiveFill(in)) == "");
    }
  }
}

// Random systems, then rounds of random removals (one variable, a few, or a third of them), each
// followed by a Solve(): every round takes the restart path, and must agree with from-scratch
// solves and with both oracles. A variable whose x / w is clearly below the lowest level x / w of
// the removed ones was frozen before any of them and must keep its rate bit for bit.
TEST_CASE("Restarts after removals match from-scratch solves", "[maxmin]") {
  TestRng rng(31337);
  uint64_t rounds = 0, restarted = 0, untouched = 0;
  for (int instance = 0; instance < 1000; ++instance) {
    Instance in = RandomInstance(rng, 12, 60);
    MaxMinSolver solver;
    std::vector<VariableId> ids = Build(in, &solver);
    solver.Solve();
    while (!ids.empty()) {
      INFO("instance " << instance << " round " << rounds);
      const uint32_t live = static_cast<uint32_t>(ids.size());
      const uint32_t removals =
          rng.Chance(60) ? 1 : (rng.Chance(50) ? 1 + rng.Below(4) : 1 + live / 3);
      double lowest = kInf;  // lowest x / w among the removed variables with uses
      const std::vector<double> before = Rates(solver, ids);
      std::vector<bool> removed(live, false);
      for (uint32_t k = 0; k < removals && k < live; ++k) {
        uint32_t i = rng.Below(live);
        while (removed[i]) i = (i + 1) % live;
        removed[i] = true;
        if (!in.variables[i].uses.empty()) {
          lowest = std::min(lowest, before[i] / in.variables[i].weight);
        }
        solver.RemoveVariable(ids[i]);
      }
      Instance left;
      left.capacities = in.capacities;
      std::vector<VariableId> left_ids;
      std::vector<double> left_before;
      for (uint32_t i = 0; i < live; ++i) {
        if (removed[i]) continue;
        left.variables.push_back(in.variables[i]);
        left_ids.push_back(ids[i]);
        left_before.push_back(before[i]);
      }
      in = std::move(left);
      ids = std::move(left_ids);

      solver.Solve();
      ++rounds;
      CHECK(solver.last_solve().components == 0);  // no addition: restarts only
      restarted += solver.last_solve().restarts;
      const std::vector<double> x = Rates(solver, ids);
      for (size_t i = 0; i < ids.size(); ++i) {
        const TestVariable& var = in.variables[i];
        if (var.uses.empty() || left_before[i] / var.weight >= lowest * (1 - 1e-9)) continue;
        REQUIRE(x[i] == left_before[i]);
        ++untouched;
      }
      if (ids.empty()) break;
      REQUIRE(CheckMaxMinFair(in, x) == "");
      REQUIRE(CompareRates(in, x, NaiveFill(in)) == "");
      MaxMinSolver scratch = solver;
      scratch.SolveFromScratch();
      REQUIRE(CompareRates(in, x, Rates(scratch, ids)) == "");
    }
  }
  // The paths above were exercised, not skipped.
  CHECK(rounds > 5000);
  CHECK(restarted > rounds / 2);
  CHECK(untouched > rounds);
}

// One large component losing its variables one at a time, re-solved after each: slack is updated
// incrementally thousands of times, and must not drift (it is summed afresh as it goes).
TEST_CASE("A long run of restarts stays within tolerance of from-scratch solves", "[maxmin]") {
  TestRng rng(2718);
  Instance in;
  for (int r = 0; r < 24; ++r) in.capacities.push_back(RandomCapacity(rng));
  for (int v = 0; v < 3000; ++v) in.variables.push_back(RandomVariable(rng, 0, 24));
  MaxMinSolver solver;
  std::vector<VariableId> ids = Build(in, &solver);
  solver.Solve();
  uint64_t touched = 0;
  for (int round = 0; !ids.empty(); ++round) {
    const uint32_t i = rng.Below(static_cast<uint32_t>(ids.size()));
    solver.RemoveVariable(ids[i]);
    ids.erase(ids.begin() + i);
    in.variables.erase(in.variables.begin() + i);
    solver.Solve();
    touched += solver.last_solve().variables;
    if (round % 150 != 0 || ids.empty()) continue;
    INFO("round " << round);
    const std::vector<double> x = Rates(solver, ids);
    MaxMinSolver fresh;
    const std::vector<VariableId> fresh_ids = Build(in, &fresh);
    fresh.Solve();
    REQUIRE(CompareRates(in, x, Rates(fresh, fresh_ids)) == "");
    REQUIRE(CheckMaxMinFair(in, x) == "");
  }
  // A whole re-solve each time would touch sum_{k < 3000} k = 4.5 M variables.
  CHECK(touched < 4'500'000 / 2);
}

TEST_CASE("Ids reused by variables with more uses keep every use right", "[maxmin]") {
  // Each round removes every variable and adds it back on one resource more, so every reused id
  // outgrows its old block of uses: the abandoned blocks pile up and get compacted away.
  TestRng rng(5);
  MaxMinSolver solver;
  Instance in;
  for (int r = 0; r < 40; ++r) in.capacities.push_back(RandomCapacity(rng));
  for (double c : in.capacities) solver.AddResource(c);
  std::vector<VariableId> ids;
  for (uint32_t uses = 1; uses <= 6; ++uses) {
    for (VariableId id : ids) solver.RemoveVariable(id);
    ids.clear();
    in.variables.clear();
    for (int v = 0; v < 2000; ++v) {
      TestVariable var;
      for (uint32_t k = 0; k < uses; ++k) {
        var.uses.push_back(ResourceUse{ResourceId{rng.Below(40)}, rng.Chance(50) ? 1.0 : 0.5});
      }
      ids.push_back(solver.AddVariable(var.uses));
      in.variables.push_back(std::move(var));
    }
    solver.Solve();
    // The same rates as a solver that never removed anything (to tolerance: other sum orders).
    MaxMinSolver fresh;
    const std::vector<VariableId> fresh_ids = Build(in, &fresh);
    fresh.Solve();
    INFO("uses " << uses);
    REQUIRE(CompareRates(in, Rates(solver, ids), Rates(fresh, fresh_ids)) == "");
  }
}

TEST_CASE("The same calls give bit-identical rates", "[maxmin]") {
  // Two solvers fed the same sequence agree exactly, including after removals reorder entries.
  auto run = [] {
    TestRng rng(9);
    MaxMinSolver solver;
    for (int r = 0; r < 50; ++r) solver.AddResource(RandomCapacity(rng));
    std::vector<VariableId> ids;
    for (int v = 0; v < 2000; ++v) {
      const TestVariable var = RandomVariable(rng, 0, 50);
      ids.push_back(solver.AddVariable(var.uses, var.weight, var.bound));
    }
    solver.Solve();
    for (int k = 0; k < 500; ++k) {
      const size_t i = rng.Below(static_cast<uint32_t>(ids.size()));
      solver.RemoveVariable(ids[i]);
      ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(i));
    }
    solver.Solve();
    return Rates(solver, ids);
  };
  const std::vector<double> first = run();
  const std::vector<double> second = run();
  CHECK(first == second);
}

TEST_CASE("Steps are listed as recomputed and are only ever recomputed whole", "[maxmin]") {
  // Header example: B saturates first (x1 = x3 = 2, one step), then A (x2 = 8).
  HeaderExample ex;
  MaxMinSolver& solver = ex.solver;
  const VariableId f1 = ex.f1, f2 = ex.f2, f3 = ex.f3;
  std::vector<VariableId> step;
  solver.StepOf(f3, &step);
  CHECK(Sorted(step) == std::vector<VariableId>{f1, f3});
  step.clear();
  solver.StepOf(f2, &step);
  CHECK(step == std::vector<VariableId>{f2});
  CHECK(solver.recomputed().size() == 3);

  // Random changes: recomputed() lists every changed variable at its rate, each of its steps is
  // what StepOf() gives, and a variable recomputed now had every live variable of its old step
  // recomputed with it (what the flow model's one queue entry per step relies on).
  TestRng rng(4242);
  uint64_t solves = 0;
  for (int instance = 0; instance < 200; ++instance) {
    MaxMinSolver s;
    const uint32_t resources = 1 + rng.Below(12);
    for (uint32_t r = 0; r < resources; ++r) s.AddResource(RandomCapacity(rng));
    std::vector<VariableId> ids;
    // Per variable id, as of the last solve that recomputed it: its step, each member with the
    // generation of its id (ids are reused after removals).
    std::vector<std::vector<std::pair<VariableId, uint32_t>>> old_step;
    std::vector<uint32_t> generation(4096, 0);
    for (int round = 0; round < 30; ++round) {
      INFO("instance " << instance << " round " << round);
      const uint32_t adds = ids.empty() || rng.Chance(20) ? 1 + rng.Below(5) : 0;
      for (uint32_t k = 0; k < adds; ++k) {
        const TestVariable var = RandomVariable(rng, 0, resources);
        ids.push_back(s.AddVariable(var.uses, var.weight, var.bound));
      }
      const uint32_t removals = adds > 0 ? 0 : 1 + rng.Below(3);
      for (uint32_t k = 0; k < removals && !ids.empty(); ++k) {
        const size_t i = rng.Below(static_cast<uint32_t>(ids.size()));
        s.RemoveVariable(ids[i]);
        ++generation[ids[i].value];
        if (ids[i].value < old_step.size()) old_step[ids[i].value].clear();
        ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(i));
      }
      const std::vector<VariableId> changed = Sorted(s.Solve());
      ++solves;
      const auto& list = s.recomputed();
      REQUIRE(list.size() == s.last_solve().variables);
      std::vector<VariableId> listed;
      std::vector<bool> recomputed;
      for (size_t i = 0; i < list.size(); ++i) {
        REQUIRE(list[i].rate == s.Rate(list[i].variable));
        listed.push_back(list[i].variable);
        if (recomputed.size() <= list[i].variable.value)
          recomputed.resize(list[i].variable.value + 1);
        recomputed[list[i].variable.value] = true;
      }
      const std::vector<VariableId> all = Sorted(listed);
      REQUIRE(std::includes(all.begin(), all.end(), changed.begin(), changed.end()));
      for (size_t i = 0; i < list.size(); ++i) {
        const VariableId v = list[i].variable;
        // Its old step: every member still live was recomputed too.
        if (v.value < old_step.size()) {
          for (const auto& [u, born] : old_step[v.value]) {
            if (!s.Contains(u) || generation[u.value] != born) continue;
            REQUIRE(u.value < recomputed.size());
            REQUIRE(recomputed[u.value]);
          }
        }
      }
      // Each new step as listed is what StepOf gives, for each of its variables.
      for (size_t i = 0; i < list.size();) {
        REQUIRE(list[i].step_start);
        size_t end = i + 1;
        while (end < list.size() && !list[end].step_start) ++end;
        const std::vector<VariableId> expected(listed.begin() + static_cast<std::ptrdiff_t>(i),
                                               listed.begin() + static_cast<std::ptrdiff_t>(end));
        for (size_t j = i; j < end; ++j) {
          std::vector<VariableId> got;
          s.StepOf(list[j].variable, &got);
          REQUIRE(got == expected);
          if (old_step.size() <= list[j].variable.value)
            old_step.resize(list[j].variable.value + 1);
          old_step[list[j].variable.value].clear();
          for (const VariableId u : got)
            old_step[list[j].variable.value].emplace_back(u, generation[u.value]);
        }
        i = end;
      }
    }
  }
  CHECK(solves == 200 * 30);
}

}  // namespace
}  // namespace moesim::sim
