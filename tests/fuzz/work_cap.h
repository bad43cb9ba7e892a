// Work caps for the harnesses: inputs that are valid but large (a 100,000-node fat tree, a
// million tokens per GPU) are skipped before the code under test runs, so that a slow legitimate
// input is not reported as a hang (libFuzzer -timeout=10) and what the fuzzer explores is the
// parsing and checking, not the size. The caps are far above the seed corpus (the largest seed
// cluster has 64 nodes x 8 GPUs, scenarios/clusters/hgx-b200-ndr-rail-64.pbtxt) only where
// cheap; they are choices for fuzzing speed, not limits of moesim.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "proto/cluster.pb.h"
#include "proto/scenario.pb.h"
#include "topology/cluster.h"
#include "topology/routes.h"

namespace moesim::fuzz {

inline constexpr uint32_t kMaxNodes = 64;        // nodes of a cluster
inline constexpr uint32_t kMaxNodeDevices = 64;  // GPUs, NICs, switches, devices of one node
inline constexpr uint32_t kMaxNodeLinks = 512;   // links written out in a node
inline constexpr uint32_t kMaxFabricSize = 256;  // spines, cores, leaves, groups, torus extent

inline bool NodeWithinCap(const pb::NodeSpec& n) {
  return n.gpus() <= kMaxNodeDevices && n.nics().count() <= kMaxNodeDevices &&
         n.pcie().switches() <= kMaxNodeDevices && n.pcie().cpus() <= kMaxNodeDevices &&
         static_cast<uint32_t>(n.device_size()) <= kMaxNodeDevices &&
         static_cast<uint32_t>(n.link_size()) <= kMaxNodeLinks;
}

inline bool ClusterWithinCap(const pb::Cluster& c) {
  if (c.nodes() > kMaxNodes || c.gpus() > kMaxNodes * kMaxNodeDevices) return false;
  if (!NodeWithinCap(c.node())) return false;
  const pb::Fabric& f = c.fabric();
  const pb::RailOptimized& r = f.rail_optimized();
  const pb::FatTree& t = f.fat_tree();
  for (uint32_t v : {r.nodes_per_group(), r.spines(), t.tiers(), t.nodes_per_leaf(), t.spines(),
                     t.leaves_per_pod(), t.cores()}) {
    if (v > kMaxFabricSize) return false;
  }
  uint64_t torus = 1;
  for (uint32_t d : f.torus().dims()) {
    torus *= std::max<uint32_t>(d, 1);
    if (torus > kMaxFabricSize) return false;
  }
  return true;
}

// Routes between a few GPU pairs (first, second, last; across nodes where there are several),
// through every query the network models ask.
inline void RouteSomePairs(const topology::Cluster& cluster) {
  const topology::Router& router = cluster.router();
  const uint32_t n = router.gpus();
  if (n < 2) return;
  std::vector<topology::Edge> path;
  std::vector<std::pair<uint32_t, double>> local;
  for (auto [src, dst] : {std::pair{0u, 1u}, std::pair{0u, n - 1}, std::pair{n - 1, 1u}}) {
    if (src == dst) continue;
    double shares = 0;
    router.ForEachShare(src, dst, [&](topology::Edge, double share) { shares += share; });
    if (auto leg = router.AppendLocalShares(src, dst, &local)) {
      router.ForEachFabricShare(*leg, [&](topology::Edge, double share) { shares += share; });
    }
    router.SamplePath(src, dst, /*flow=*/src * 31 + dst, &path);
    (void)router.Hops(src, dst);
    (void)router.PathCount(src, dst);
    (void)router.Bottleneck(src, dst);
    (void)router.Latency(src, dst);
  }
}

// The scenario's cluster within the caps above, and its work small enough to simulate in well
// under a second (tokens per GPU, MoE layers, a step's batch).
inline constexpr uint64_t kMaxTokensPerGpu = 1 << 14;
inline constexpr uint32_t kMaxMoeLayers = 8;
inline constexpr uint64_t kMaxStepTokens = uint64_t{1} << 20;  // global_batch x seq_len

inline bool ScenarioWithinCap(const pb::Scenario& s) {
  if (!ClusterWithinCap(s.cluster())) return false;
  const pb::Workload& w = s.workload();
  if (w.tokens_per_gpu() > kMaxTokensPerGpu || w.moe_layers() > kMaxMoeLayers) return false;
  const pb::StepSpec& step = s.step();
  if (step.seq_len() != 0 && step.global_batch() > kMaxStepTokens / step.seq_len()) return false;
  return s.routing().trace().max_steps() <= kMaxMoeLayers;
}

}  // namespace moesim::fuzz
