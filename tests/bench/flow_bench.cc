// Speed of the two fidelities on the engine issue's workloads (not a test; Release build):
//
//   cmake --build build --target moesim_bench_flow && build/tests/moesim_bench_flow [max_gpus
//   [max_flow_gpus]]
//
// An imbalanced MoE all-to-all: Zipf-skewed routing (alpha 1.2), top-8 of 256 experts, 4,096 tokens
// per GPU, hidden 7168 (BF16), EP over every GPU, DGX H100 nodes on a rail-optimized fabric; timed
// for the whole MoE layer (router, dispatch, experts, combine), both fidelities. Prints a table
// with peak RSS.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench_util.h"
#include "sim/moe_layer.h"
#include "sim/scenario_loader.h"

namespace {

using moesim::bench::Clock;
using moesim::bench::PeakRssMiB;
using moesim::bench::Seconds;

std::string Scenario(uint32_t nodes) {
  return "cluster { node_preset: \"dgx-h100\" nodes: " + std::to_string(nodes) +
         " fabric { rail_optimized { nodes_per_group: " + std::to_string(nodes < 32 ? nodes : 32) +
         " } } }\n"
         "model_spec { name: \"bench\" hidden_size: 7168 expert_ffn_size: 2048 num_experts: 256 "
         "top_k: 8 "
         "num_layers: 1 dtype: BF16 }\n"
         "plan { ep: " +
         std::to_string(std::min<uint32_t>(nodes * 8, 256)) +
         " }\n"
         "workload { tokens_per_gpu: 4096 }\n"
         "routing { synthetic { distribution: ZIPF zipf_alpha: 1.2 shuffle_experts: true seed: 1 } "
         "}\n";
}

}  // namespace

int main(int argc, char** argv) {
  // Arguments: the largest GPU count to run, and the largest to run at flow fidelity.
  const uint32_t max_gpus = argc > 1 ? static_cast<uint32_t>(std::atoi(argv[1])) : 1024;
  const uint32_t max_flow_gpus = argc > 2 ? static_cast<uint32_t>(std::atoi(argv[2])) : 128;
  std::printf("%-6s %-10s %10s %12s %14s %10s\n", "GPUs", "fidelity", "load s", "simulate s",
              "predicted ms", "RSS MiB");
  for (uint32_t gpus : {128u, 1024u}) {
    if (gpus > max_gpus) continue;
    for (auto fidelity : {moesim::sim::Fidelity::kAnalytical, moesim::sim::Fidelity::kFlow}) {
      if (fidelity == moesim::sim::Fidelity::kFlow && gpus > max_flow_gpus) continue;
      const auto load_start = Clock::now();
      auto s = moesim::sim::LoadScenarioFromString(Scenario(gpus / 8), "bench.pbtxt");
      if (!s.ok()) {
        std::fprintf(stderr, "%s\n", s.error().message().c_str());
        return 1;
      }
      const double load = Seconds(load_start);
      const auto start = Clock::now();
      const moesim::pb::Result r =
          moesim::sim::SimulateMoeLayers(s->cluster, s->workload, fidelity);
      const double simulate = Seconds(start);
      std::printf("%-6u %-10s %10.3f %12.3f %14.3f %10.0f\n", gpus,
                  fidelity == moesim::sim::Fidelity::kFlow ? "flow" : "analytical", load, simulate,
                  r.total_ns() / 1e6, PeakRssMiB());
      std::fflush(stdout);
    }
  }
  return 0;
}
