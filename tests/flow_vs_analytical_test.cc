// The analytical model (sim/network/collective_time.h) is a lower bound on the flow model
// (sim/network/flow_model.h): for every algorithm and op BuildCollective takes, on one node and on
// rail-optimized and oversubscribed fabrics, at random sizes from 1 KiB to 8 GiB. About 21 s on
// one core of the 2-core development VM (Release), most of it the fat tree's 8-channel rings;
// under ASan the first 5 of the 20 sizes (tests/sanitizer_budget.h).
//
// The step-by-step model this replaced failed it: a pipelined tree all-reduce up to 1.6 x the flow
// time on two nodes (its steps waited for each other's slowest link, the flows did not), a
// pairwise all-to-all 8% over on two nodes (ranks ran ahead of another rank's slow round).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "sanitizer_budget.h"
#include "sim/network/collective_time.h"
#include "sim/network/flow_model.h"
#include "sim/network/network_model.h"
#include "test_helpers.h"
#include "topology/cluster.h"

namespace moesim::sim {
namespace {

// A preset name, a cluster file, or a cluster spelled out in text format.
topology::Cluster Load(const std::string& what) {
  if (what.find(' ') == std::string::npos) {
    auto c = topology::LoadClusterArgument(what, "");
    if (!c.ok()) FAIL(c.error().message());
    return std::move(c).value();
  }
  return testing::ClusterFromText(what);
}

// Every (op, algorithm) BuildCollective accepts.
constexpr std::pair<CollectiveOp, CollectiveAlgo> kCombinations[] = {
    {CollectiveOp::kAllToAll, CollectiveAlgo::kDirect},
    {CollectiveOp::kAllToAll, CollectiveAlgo::kPairwise},
    {CollectiveOp::kAllToAll, CollectiveAlgo::kHierarchical},
    {CollectiveOp::kAllReduce, CollectiveAlgo::kRing},
    {CollectiveOp::kAllReduce, CollectiveAlgo::kTree},
    {CollectiveOp::kAllReduce, CollectiveAlgo::kNvls},
    {CollectiveOp::kAllReduce, CollectiveAlgo::kNvlsTree},
    {CollectiveOp::kAllReduce, CollectiveAlgo::kCollNet},
    {CollectiveOp::kAllGather, CollectiveAlgo::kRing},
    {CollectiveOp::kAllGather, CollectiveAlgo::kNvls},
    {CollectiveOp::kReduceScatter, CollectiveAlgo::kRing},
    {CollectiveOp::kReduceScatter, CollectiveAlgo::kNvls},
    {CollectiveOp::kSendRecv, CollectiveAlgo::kDirect},
};

// The most transfers one after another on a dependency chain.
uint32_t LongestChain(const Schedule& s) {
  std::vector<uint32_t> depth(s.transfers.size(), 1);
  uint32_t longest = 0;
  for (size_t t = 0; t < s.transfers.size(); ++t) {
    for (uint32_t before : s.transfers[t].after) depth[t] = std::max(depth[t], depth[before] + 1);
    for (uint32_t before : s.transfers[t].after_sent)
      depth[t] = std::max(depth[t], depth[before] + 1);
    longest = std::max(longest, depth[t]);
  }
  return longest;
}

}  // namespace

TEST_CASE("The property below covers every (op, algorithm) pair moesim implements") {
  const CollectiveOp ops[] = {CollectiveOp::kAllToAll, CollectiveOp::kAllReduce,
                              CollectiveOp::kAllGather, CollectiveOp::kReduceScatter,
                              CollectiveOp::kSendRecv};
  const CollectiveAlgo algos[] = {CollectiveAlgo::kDirect,       CollectiveAlgo::kPairwise,
                                  CollectiveAlgo::kHierarchical, CollectiveAlgo::kRing,
                                  CollectiveAlgo::kTree,         CollectiveAlgo::kNvls,
                                  CollectiveAlgo::kNvlsTree,     CollectiveAlgo::kCollNet};
  for (CollectiveOp op : ops) {
    for (CollectiveAlgo algo : algos) {
      INFO(ToString(op) << " " << ToString(algo));
      const bool listed = std::find(std::begin(kCombinations), std::end(kCombinations),
                                    std::make_pair(op, algo)) != std::end(kCombinations);
      CHECK(CheckAlgorithm(op, algo).ok() == listed);
    }
  }
}

TEST_CASE("Flow time is never below the analytical time, for every collective, size and fabric") {
  // One node (8 GPUs on an NVSwitch), 2 and 4 nodes on a rail-optimized fabric, 8 nodes on a
  // 2:1 oversubscribed fat tree (two leaves of 4 nodes, as scenarios/clusters/
  // dgx-h100-fat-tree-2to1.pbtxt has 4 of; transfers contend for the leaf uplinks), and 2 x 4 GPUs
  // whose NVLink drains a byte a microsecond. The fabrics of the 4-node and fat-tree clusters, and
  // the slow one's, reduce (SHARP), so CollNet Direct runs there.
  const std::pair<const char*, std::string> clusters[] = {
      {"one dgx-h100", "dgx-h100"},
      {"2 nodes, rail-optimized",
       "node_preset: 'dgx-h100' nodes: 2 fabric { rail_optimized { nodes_per_group: 2 } }"},
      {"4 nodes, rail-optimized",
       "node_preset: 'dgx-h100' nodes: 4 fabric { rail_optimized { nodes_per_group: 4 } "
       "sharp: true }"},
      {"8 nodes, 2:1 fat tree",
       "node_preset: 'dgx-h100' nodes: 8 "
       "fabric { fat_tree { tiers: 2 nodes_per_leaf: 4 oversubscription: 2 } sharp: true }"},
      // The slowest NVLink a cluster file takes (1 MB/s): a byte's drain is a microsecond, so a
      // bound that rounds a fraction of a byte the wrong way shows (LinkDrain::Time).
      {"2 x 4, NVLink at 1 MB/s",
       "node { name: 'slow' gpu: 'h100-sxm' gpus: 4 nvlink { bandwidth_gbps: 0.001 } "
       "pcie { switches: 4 cpus: 1 } nics { count: 4 gbit_per_s: 400 } } "
       "nodes: 2 fabric { single_switch {} sharp: true } line_rate: true"},
  };
  for (const auto& [name, what] : clusters) {
    const topology::Cluster c = Load(what);
    const uint32_t n = c.total_gpus();
    // As `moesim collective` builds them: every GPU, rings over NCCL's channels across nodes.
    std::vector<uint32_t> gpus(n);
    for (uint32_t i = 0; i < n; ++i) gpus[i] = i;
    const uint32_t channels = RingChannels(c, gpus);
    // 20 sizes, log-uniform over [1 KiB, 8 GiB], the same for every cluster and collective.
    std::mt19937_64 rng(20261205);
    std::uniform_real_distribution<double> log_size(std::log(1024.0), std::log(8.0 * (1 << 30)));
    std::vector<uint64_t> sizes(20);
    for (uint64_t& size : sizes) size = static_cast<uint64_t>(std::exp(log_size(rng)));
    sizes.resize(testing::CasesToCheck(sizes.size()));
    for (const auto& [op, algo] : kCombinations) {
      // NVLS runs in one node only, NVLS_TREE on whole nodes, CollNet where the switches reduce,
      // as `moesim collective` refuses them elsewhere (CheckNvls, CheckNvlsTree, CheckCollNet).
      if (algo == CollectiveAlgo::kNvls && !CheckNvls(c, gpus).ok()) continue;
      if (algo == CollectiveAlgo::kNvlsTree && !CheckNvlsTree(c, gpus).ok()) continue;
      if (algo == CollectiveAlgo::kCollNet && !CheckCollNet(c, gpus).ok()) continue;
      for (const uint64_t requested : sizes) {
        const uint64_t size = NcclTestsSize(op, n, requested);
        INFO(name << ": " << ToString(op) << " " << ToString(algo) << ", " << size << " B");
        auto s = BuildCollective(op, algo, n, size, c.gpus_per_node(), channels,
                                 NvlsEfficiency(c.gpu_spec().sm));
        REQUIRE(s.ok());
        const CollectiveTiming analytical = TimeCollective(c, *s);
        const FlowRun run = RunFlows(c, *s, analytical.protocol, analytical.efficiency);
        // The flow model's collective (FlowNetwork::Collective) adds NVLS's pipeline fill on its
        // own bytes time, as TimeCollective does on the analytical one.
        const Duration flow_total =
            run.total + NvlsPipelineFill(c, *s, run.total - analytical.latency);
        // Rounding only: the flow model computes a completion as remaining / rate in floating
        // point, which can land a picosecond under the exact time before it is rounded up; the
        // analytical model rounds each drain up to a whole byte, then a picosecond, then once
        // more over the efficiency e, which scales the picosecond rounded before it to 1/e ps
        // (LL under NCCL's llMaxBw ceiling across nodes runs well under 0.5). At most
        // ceil(1/e) + 2 ps per transfer on the longest chain (3 ps at e >= 0.5).
        const int64_t per_transfer =
            static_cast<int64_t>(std::ceil(1.0 / analytical.efficiency)) + 2;
        const int64_t tolerance = per_transfer * int64_t{LongestChain(*s)};
        INFO("analytical " << analytical.total.picoseconds() << " ps, flow "
                           << flow_total.picoseconds() << " ps, tolerance " << tolerance);
        CHECK(flow_total.picoseconds() + tolerance >= analytical.total.picoseconds());
      }
    }
  }
}

}  // namespace moesim::sim
