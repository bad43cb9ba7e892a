// Speed of `moesim sweep` (not a test; Release build):
//
//   cmake --build build --target moesim_bench_sweep && build/tests/moesim_bench_sweep
//
// 100 points of the Mixtral-8x7B 64-GPU training step (scenarios/mixtral-8x7b-h100-64.pbtxt):
// NIC speed 100 to 1000 Gb/s (the dgx-h100 preset written out, 10 values) x global batch 128 to
// 1280 (10 values), on 1 and 2 threads, at both fidelities. What `moesim sweep` runs, without the
// printing: each point's scenario made, resolved (cluster graph, plan, routing) and simulated.
// Prints a table with points, wall and CPU seconds, peak RSS, and whether 2 threads gave the same
// rows as 1.
#include <fmt/format.h>

#include <string>

#include "bench_util.h"
#include "sim/sweep/sweep.h"

namespace {

using moesim::bench::Clock;
using moesim::bench::CpuSeconds;
using moesim::bench::PeakRssMiB;
using moesim::bench::Seconds;
namespace sim = moesim::sim;

int Run(sim::Fidelity fidelity) {
  auto base = sim::LoadSweepBase(MOESIM_SOURCE_DIR "/scenarios/mixtral-8x7b-h100-64.pbtxt");
  auto nic = sim::ParseSetFlag("cluster.node.nics.gbit_per_s=100:1000:100");
  auto batch = sim::ParseSetFlag("step.global_batch=128:1280:128");
  if (!base.ok() || !nic.ok() || !batch.ok()) return 1;
  const std::vector<sim::SweepAxis> axes = {*nic, *batch};
  std::string first;
  for (const uint32_t threads : {1u, 2u}) {
    sim::SweepRun run;
    run.fidelity = fidelity;
    run.threads = threads;
    const double cpu = CpuSeconds();
    const auto start = Clock::now();
    const moesim::pb::SweepTable t =
        sim::MakeSweepTable(*base, axes, fidelity, sim::RunSweepPoints(*base, axes, run));
    const double wall = Seconds(start);
    const std::string bytes = t.SerializeAsString();
    if (first.empty()) first = bytes;
    const std::string name = fmt::format("mixtral 64-gpu step, 10 x 10, {}, {} thread{}",
                                         sim::ToString(fidelity), threads, threads > 1 ? "s" : "");
    fmt::print("{:<52} {:>6} {:>8} {:>9.3f} {:>9.3f} {:>8.0f}   {}\n", name, t.rows_size(),
               t.failed(), wall, CpuSeconds() - cpu, PeakRssMiB(),
               bytes == first ? "same rows as 1 thread" : "ROWS DIFFER");
  }
  return 0;
}

}  // namespace

int main() {
  fmt::print("{:<52} {:>6} {:>8} {:>9} {:>9} {:>8}\n", "run", "points", "failed", "wall s", "CPU s",
             "RSS MiB");
  if (Run(sim::Fidelity::kAnalytical) || Run(sim::Fidelity::kFlow)) {
    fmt::print(stderr, "benchmark setup failed\n");
    return 1;
  }
  return 0;
}
