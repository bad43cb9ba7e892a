// Max-min solver benchmark (not a test): all-to-all traffic of 1,024 GPUs as flows on a synthetic
// rail-optimized fabric, built here from plain ids and capacities (no topology/ code), then one
// full solve and incremental re-solves after one flow ends or starts. Prints a table; run a
// Release build:
//
//   cmake --build build --target moesim_bench_maxmin && build/tests/moesim_bench_maxmin
//
// The fabric: 128 nodes of 8 GPUs; 8 rails, one leaf switch per (group of 32 nodes, rail), 32
// spines per rail. Resources, one per direction:
//   NVLink port of each GPU            450 GB/s   (H100 NVLink 4 datasheet, per direction)
//   NIC port of each GPU               50 GB/s    (400 Gb/s ConnectX-7)
//   leaf <-> spine link                50 GB/s    (32 uplinks per leaf: non-blocking)
// A flow a -> b on the same node crosses a's and b's NVLink ports. Across nodes it first hops over
// NVLink to the GPU of a's node on b's rail unless a is on it (PXN, as NCCL does), leaves by that
// GPU's NIC, crosses the rail's spines when the nodes are in different groups, split by ECMP over
// two spines (coefficient 1/2 on each of the 4 leaf-spine links), and arrives by b's NIC.
//
// Rows: all-to-all inside each node (128 disjoint components), along each rail (each GPU to the
// GPUs of the same rail: 8 components), and across all 1,024 GPUs (one component). A flow that
// ends restarts the filling at its step (see maxmin.h); uniform traffic freezes most flows in a
// few steps, so here that is most of the component. A flow that starts re-solves its component.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.h"
#include "sim/network/maxmin.h"

namespace {

using moesim::bench::Clock;
using moesim::bench::PeakRssMiB;
using moesim::bench::Seconds;

using moesim::sim::MaxMinSolver;
using moesim::sim::ResourceId;
using moesim::sim::ResourceUse;
using moesim::sim::VariableId;
constexpr uint32_t kGpusPerNode = 8;  // = rails
constexpr uint32_t kNodes = 128;
constexpr uint32_t kGpus = kNodes * kGpusPerNode;
constexpr uint32_t kNodesPerGroup = 32;
constexpr uint32_t kGroups = kNodes / kNodesPerGroup;
constexpr uint32_t kSpinesPerRail = 32;

class Fabric {
 public:
  explicit Fabric(MaxMinSolver* solver) {
    for (uint32_t g = 0; g < kGpus; ++g) {
      nvlink_out_.push_back(solver->AddResource(450e9));
      nvlink_in_.push_back(solver->AddResource(450e9));
      nic_up_.push_back(solver->AddResource(50e9));
      nic_down_.push_back(solver->AddResource(50e9));
    }
    for (uint32_t i = 0; i < kGroups * kGpusPerNode * kSpinesPerRail; ++i) {
      leaf_up_.push_back(solver->AddResource(50e9));
      leaf_down_.push_back(solver->AddResource(50e9));
    }
  }

  // The resources of flow a -> b, as described at the top.
  void Path(uint32_t a, uint32_t b, std::vector<ResourceUse>* uses) const {
    uses->clear();
    const uint32_t node_a = a / kGpusPerNode, node_b = b / kGpusPerNode, rail = b % kGpusPerNode;
    if (node_a == node_b) {
      uses->push_back({nvlink_out_[a], 1.0});
      uses->push_back({nvlink_in_[b], 1.0});
      return;
    }
    const uint32_t source = node_a * kGpusPerNode + rail;
    if (source != a) {
      uses->push_back({nvlink_out_[a], 1.0});
      uses->push_back({nvlink_in_[source], 1.0});
    }
    uses->push_back({nic_up_[source], 1.0});
    const uint32_t group_a = node_a / kNodesPerGroup, group_b = node_b / kNodesPerGroup;
    if (group_a != group_b) {
      const uint32_t s1 = (a * 2654435761u ^ b * 40503u) % kSpinesPerRail;  // the ECMP hash
      for (uint32_t spine : {s1, (s1 + kSpinesPerRail / 2) % kSpinesPerRail}) {
        uses->push_back({leaf_up_[Link(group_a, rail, spine)], 0.5});
        uses->push_back({leaf_down_[Link(group_b, rail, spine)], 0.5});
      }
    }
    uses->push_back({nic_down_[b], 1.0});
  }

 private:
  static uint32_t Link(uint32_t group, uint32_t rail, uint32_t spine) {
    return (group * kGpusPerNode + rail) * kSpinesPerRail + spine;
  }
  std::vector<ResourceId> nvlink_out_, nvlink_in_, nic_up_, nic_down_, leaf_up_, leaf_down_;
};

// Flows that break the max-min conditions (see maxmin.h) to relative 1e-9: a resource over
// capacity counts against each of its flows, and so does a flow with no bottleneck.
uint64_t CountViolations(const MaxMinSolver& solver, const Fabric& fabric,
                         const std::vector<VariableId>& flows,
                         const std::vector<std::pair<uint32_t, uint32_t>>& endpoints) {
  std::vector<double> usage(solver.resource_count(), 0.0), largest(solver.resource_count(), 0.0);
  std::vector<ResourceUse> uses;
  for (size_t i = 0; i < flows.size(); ++i) {
    fabric.Path(endpoints[i].first, endpoints[i].second, &uses);
    const double rate = solver.Rate(flows[i]);
    for (const ResourceUse& use : uses) {
      usage[use.resource.value] += use.coefficient * rate;
      largest[use.resource.value] = std::max(largest[use.resource.value], rate);
    }
  }
  uint64_t violations = 0;
  for (size_t i = 0; i < flows.size(); ++i) {
    fabric.Path(endpoints[i].first, endpoints[i].second, &uses);
    const double rate = solver.Rate(flows[i]);
    bool feasible = true, bottleneck = false;
    for (const ResourceUse& use : uses) {
      const double capacity = solver.Capacity(use.resource);
      feasible = feasible && usage[use.resource.value] <= capacity * (1 + 1e-9);
      bottleneck = bottleneck || (usage[use.resource.value] >= capacity * (1 - 1e-9) &&
                                  rate >= largest[use.resource.value] * (1 - 1e-9));
    }
    violations += !(feasible && bottleneck);
  }
  return violations;
}

struct Traffic {
  const char* name;
  bool (*pair)(uint32_t a, uint32_t b);  // whether a sends to b
  int repeats;                           // incremental re-solves to average
};

void Run(const Traffic& traffic) {
  MaxMinSolver solver;
  const Fabric fabric(&solver);
  std::vector<ResourceUse> uses;
  std::vector<VariableId> flows;
  std::vector<std::pair<uint32_t, uint32_t>> endpoints;
  uint64_t total_uses = 0;
  const auto build_start = Clock::now();
  for (uint32_t a = 0; a < kGpus; ++a) {
    for (uint32_t b = 0; b < kGpus; ++b) {
      if (a == b || !traffic.pair(a, b)) continue;
      fabric.Path(a, b, &uses);
      total_uses += uses.size();
      flows.push_back(solver.AddVariable(uses));
      endpoints.emplace_back(a, b);
    }
  }
  const double build = Seconds(build_start);

  const auto solve_start = Clock::now();
  solver.Solve();
  const double full = Seconds(solve_start);
  const uint64_t components = solver.last_solve().components;
  const uint64_t steps = solver.last_solve().steps;

  // One flow ends and the solver catches up; then it starts again. Flows picked by a fixed stride.
  double remove_total = 0, add_total = 0;
  uint64_t touched = 0, changed = 0;
  for (int i = 0; i < traffic.repeats; ++i) {
    const size_t k = (static_cast<size_t>(i) * 7919 + 13) % flows.size();
    solver.RemoveVariable(flows[k]);
    auto start = Clock::now();
    solver.Solve();
    remove_total += Seconds(start);
    touched += solver.last_solve().variables;
    changed += solver.last_solve().changed;
    fabric.Path(endpoints[k].first, endpoints[k].second, &uses);
    flows[k] = solver.AddVariable(uses);
    start = Clock::now();
    solver.Solve();
    add_total += Seconds(start);
  }
  const uint64_t violations = CountViolations(solver, fabric, flows, endpoints);

  fmt::print(
      "{:<22} {:9} {:9} {:>6.2f} {:6} {:>8.3f} {:>8.3f} {:>10.3f} {:>10.3f} {:10} {:10} {:>8.0f}\n",
      traffic.name, flows.size(), solver.resource_count(),
      static_cast<double>(total_uses) / static_cast<double>(flows.size()), components, build, full,
      1e3 * remove_total / traffic.repeats, 1e3 * add_total / traffic.repeats,
      touched / traffic.repeats, changed / traffic.repeats, PeakRssMiB());
  std::fflush(stdout);
  fmt::print(stderr, "({}: {} filling steps; {} flows violate the max-min conditions)\n",
             traffic.name, steps, violations);
}

}  // namespace

int main() {
  fmt::print("{:<22} {:>9} {:>9} {:>6} {:>6} {:>8} {:>8} {:>10} {:>10} {:>10} {:>10} {:>8}\n",
             "traffic", "flows", "resources", "uses", "comps", "build s", "solve s", "-1 flow ms",
             "+1 flow ms", "touched", "changed", "RSS MiB");
  const Traffic rows[] = {
      {"all-to-all per node",
       [](uint32_t a, uint32_t b) { return a / kGpusPerNode == b / kGpusPerNode; }, 100},
      {"all-to-all per rail",
       [](uint32_t a, uint32_t b) { return a % kGpusPerNode == b % kGpusPerNode; }, 20},
      {"all-to-all 1,024 GPUs", [](uint32_t, uint32_t) { return true; }, 5},
  };
  for (const Traffic& traffic : rows) Run(traffic);
  fmt::print(
      "(-1 flow / +1 flow: mean time of Solve() after one flow ends / starts; touched, "
      "changed: variables per re-solve)\n");
  return 0;
}
