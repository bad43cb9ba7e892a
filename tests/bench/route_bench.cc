// Route-table benchmark (not a test): builds rail-optimized DGX H100 clusters of 1,024 and 8,192
// GPUs and times the build and route queries over GPU pairs. Prints a table; run a Release build:
//
//   cmake --build build --target moesim_bench_routes && build/tests/moesim_bench_routes
#include <fmt/format.h>

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
  return 0;
}
