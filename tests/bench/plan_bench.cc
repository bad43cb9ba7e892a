// Speed of whole-step simulation and plan search (not a test; Release build):
//
//   cmake --build build --target moesim_bench_plan && build/tests/moesim_bench_plan [threads]
//
// 1. `moesim plan` for DeepSeek-V3 on 2,048 H800 (256 HGX H800 nodes, rail-optimized), global batch
//    4,096 x 4,096 tokens, Zipf 1.2 routing, analytical: every candidate, on `threads` threads
//    (default 2, the CI machine's cores).
//    Then `--rerank-flow 3`: the best three simulated again at flow fidelity.
// 2. One Mixtral-8x7B training step on 64 H100 (scenarios/mixtral-8x7b-h100-64.pbtxt) at both
//    fidelities.
// Prints a table with the candidates, seconds and peak RSS.
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench_util.h"
#include "models/model_spec.h"
#include "sim/moe/scenario_loader.h"
#include "sim/step/plan_search.h"
#include "sim/step/step.h"

namespace {

using moesim::bench::Clock;
using moesim::bench::PeakRssMiB;
using moesim::bench::Seconds;
namespace pb = moesim::pb;
namespace sim = moesim::sim;

int Search(uint32_t threads) {
  auto model = moesim::models::LoadModelArgument("deepseek-v3");
  pb::Cluster spec;
  spec.set_node_preset("hgx-h800");
  spec.set_nodes(256);
  spec.mutable_fabric()->mutable_rail_optimized()->set_nodes_per_group(32);
  const auto start = Clock::now();
  auto cluster = moesim::topology::BuildCluster(spec);
  if (!model.ok() || !cluster.ok()) return 1;
  sim::StepConfig step;
  step.global_batch = 4096;
  step.seq_len = 4096;
  pb::Routing routing;
  routing.mutable_synthetic()->set_distribution(pb::SyntheticRouting::ZIPF);
  routing.mutable_synthetic()->set_zipf_alpha(1.2);
  routing.mutable_synthetic()->set_shuffle_experts(true);
  auto plan_routing = sim::ResolvePlanRouting(*model, routing, "", nullptr);
  if (!plan_routing.ok()) return 1;
  std::vector<sim::RefusedPlan> refused;
  const auto candidates = sim::EnumeratePlans(*model, 2048, 8, step, &refused);
  auto rows =
      sim::EvaluatePlans(*cluster, *model, *plan_routing, {}, step, candidates, 0, 1, threads, {});
  sim::RankPlans(rows);
  fmt::print("{:<44} {:10} {:>10.2f} {:>10.0f}   best: {}, {:.1f} ms\n",
             "plan search, deepseek-v3, 2048 h800", rows.size(), Seconds(start), PeakRssMiB(),
             rows.empty() ? "-" : rows.front().plan.c_str(),
             rows.empty() ? 0.0 : rows.front().step.picoseconds() / 1e9);
  // --rerank-flow 3: the best three again at flow fidelity.
  std::vector<uint32_t> best;
  for (size_t i = 0; i < rows.size() && i < 3; ++i) best.push_back(rows[i].index);
  const auto rerank_start = Clock::now();
  auto flow =
      sim::RerankAtFlow(*cluster, *model, *plan_routing, {}, step, candidates, best, threads);
  if (!flow.ok() || flow->empty()) return 1;
  fmt::print("{:<44} {:10} {:>10.2f} {:>10.0f}   best at flow: {}, {:.1f} ms\n",
             "  --rerank-flow 3 (after the search)", flow->size(), Seconds(rerank_start),
             PeakRssMiB(), flow->front().plan.c_str(), flow->front().step.picoseconds() / 1e9);
  return 0;
}

int Step(sim::Fidelity fidelity) {
  const auto start = Clock::now();
  auto s = sim::LoadScenario(MOESIM_SOURCE_DIR "/scenarios/mixtral-8x7b-h100-64.pbtxt");
  if (!s.ok()) return 1;
  auto config = sim::StepConfigFromSpec(s->spec.step(), s->file, fidelity);
  if (!config.ok()) return 1;
  auto layer =
      sim::StepMoeLayer(s->workload.model, s->workload.plan, s->spec.routing(),
                        s->spec.plan().placement(), s->cluster.gpus_per_node(), *config, &s->file);
  if (!layer.ok()) return 1;
  auto r = sim::SimulateStep(s->cluster, s->workload.model, s->workload.plan, *layer, *config);
  if (!r.ok()) return 1;
  const std::string name = "mixtral-8x7b step, 64 h100, " + std::string(sim::ToString(fidelity));
  fmt::print("{:<44} {:10} {:>10.3f} {:>10.0f}   step {:.1f} ms\n", name, 1, Seconds(start),
             PeakRssMiB(), r->step.picoseconds() / 1e9);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const uint32_t threads = argc > 1 ? static_cast<uint32_t>(std::atoi(argv[1])) : 2;
  fmt::print("{:<44} {:>10} {:>10} {:>10}\n", "run", "plans", "seconds", "RSS MiB");
  if (Step(sim::Fidelity::kAnalytical) || Step(sim::Fidelity::kFlow) || Search(threads)) {
    fmt::print(stderr, "benchmark setup failed\n");
    return 1;
  }
  return 0;
}
