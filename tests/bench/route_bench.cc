// Route-table benchmark (not a test): builds rail-optimized DGX H100 clusters of 1,024 and 8,192
// GPUs and times the build and route queries over GPU pairs; then builds single NVLink nodes of 8
// to 1,024 GPUs (every GPU on one NVSwitch, as `node { gpus: N nvlink { ... } }` writes them) and
// times the build per GPU pair, which a route per pair makes constant when building is linear in
// the pairs. Prints two tables; run a Release build:
//
//   cmake --build build --target moesim_bench_routes && build/tests/moesim_bench_routes
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.h"
#include "topology/cluster.h"

namespace {

using moesim::bench::Clock;
using moesim::bench::PeakRssMiB;
using moesim::bench::Seconds;

// One node of `gpus` H100s on one NVSwitch at 450 GB/s: its build time per ordered GPU pair,
// averaged over enough builds to take about a second.
int BigNode(uint32_t gpus) {
  moesim::pb::Cluster spec;
  auto* node = spec.mutable_node();
  node->set_name("nvlink-" + std::to_string(gpus));
  node->set_gpu("h100-sxm");
  node->set_gpus(gpus);
  node->mutable_nvlink()->set_bandwidth_gbps(450);
  const double pairs = static_cast<double>(gpus) * (gpus - 1);
  const uint32_t builds = std::max<uint32_t>(1, static_cast<uint32_t>(2e5 / pairs));
  const auto start = Clock::now();
  uint64_t hops = 0;
  for (uint32_t i = 0; i < builds; ++i) {
    auto cluster = moesim::topology::BuildCluster(spec);
    if (!cluster.ok()) {
      fmt::print(stderr, "{}\n", cluster.error().message());
      return 1;
    }
    hops += cluster->router().Hops(0, gpus - 1);
  }
  const double build = Seconds(start) / builds;
  fmt::print("{:<7} {:>7} {:>12.6f} {:>14.1f} {:>10.0f}\n", gpus, builds, build,
             build / pairs * 1e9, PeakRssMiB());
  return hops == 2 * builds ? 0 : 1;
}

}  // namespace

int main() {
  using moesim::topology::Cluster;
  fmt::print("{:<7} {:<6} {:<30} {:>9} {:>14} {:>14} {:>16} {:>10}\n", "GPUs", "nodes", "fabric",
             "build s", "pairs", "hops s", "sample path s", "RSS MiB");
  for (uint32_t nodes : {128u, 1024u}) {
    moesim::pb::Cluster spec;
    spec.set_node_preset("dgx-h100");
    spec.set_nodes(nodes);
    spec.mutable_fabric()->mutable_rail_optimized()->set_nodes_per_group(32);
    const auto start = Clock::now();
    auto cluster = moesim::topology::BuildCluster(spec);
    const double build = Seconds(start);
    if (!cluster.ok()) {
      fmt::print(stderr, "{}\n", cluster.error().message());
      return 1;
    }
    const auto& router = cluster->router();
    const uint32_t gpus = cluster->total_gpus();
    uint64_t pairs = uint64_t{gpus} * gpus;
    const auto hops_start = Clock::now();
    uint64_t total_hops = 0;
    for (uint32_t a = 0; a < gpus; ++a) {
      for (uint32_t b = 0; b < gpus; ++b) total_hops += router.Hops(a, b);
    }
    const double hops = Seconds(hops_start);
    // Concrete paths (what a flow-level simulation asks for): every pair at 1,024 GPUs; at 8,192,
    // the pairs from the first 128 GPUs, scaled up.
    const uint32_t sources = gpus <= 1024 ? gpus : 128;
    std::vector<moesim::topology::Edge> path;
    uint64_t edges = 0;
    const auto path_start = Clock::now();
    for (uint32_t a = 0; a < sources; ++a) {
      for (uint32_t b = 0; b < gpus; ++b) {
        router.SamplePath(a, b, 0, &path);
        edges += path.size();
      }
    }
    const double sample = Seconds(path_start) * gpus / sources;
    fmt::print("{:<7} {:<6} {:<30} {:>9.3f} {:14} {:>14.3f} {:>16.3f} {:>10.0f}\n", gpus, nodes,
               "rail-optimized, 32 nodes/group", build, pairs, hops, sample, PeakRssMiB());
    fmt::print(stderr, "(checksums: {} hops, {} path links{})\n", total_hops, edges,
               sources < gpus ? ", paths timed on 128 sources and scaled" : "");
  }
  fmt::print("\nOne node, every GPU on one NVSwitch (450 GB/s per direction)\n");
  fmt::print("{:<7} {:>7} {:>12} {:>14} {:>10}\n", "GPUs", "builds", "build s", "ns per pair",
             "RSS MiB");
  for (uint32_t gpus : {8u, 72u, 576u, 1024u}) {
    if (BigNode(gpus) != 0) return 1;
  }
  return 0;
}
