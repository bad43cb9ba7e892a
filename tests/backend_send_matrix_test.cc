// moebench's send matrix (its own layout of the scenario's routing, before any communication)
// equals the one the simulator predicts, for the seed example and Mixtral-8x7B layers.
#include <catch2/catch.hpp>

#include "backend/run/bench_scenario.h"
#include "backend/run/moe_layer_rank.h"
#include "sim/moe/moe_layer.h"
#include "sim/moe/scenario_loader.h"
#include "test_paths.h"

namespace moesim::backend {
namespace {

// Row r of layer `layer`'s dispatch matrix as moebench's rank r lays out its rows to send.
std::vector<uint64_t> MoebenchRow(const BenchScenario& s, uint32_t layer, uint32_t rank) {
  const models::Workload& w = s.workload;
  const ExpertWeights none;         // the layout never touches the experts
  const std::vector<float> router;  // nor the router
  MoeLayerRank layer_rank(w, layer, rank, /*seed=*/1, none, router);
  layer_rank.Layout();
  return layer_rank.SendRows();
}

// The simulator's predicted dispatch tokens, from its Result (what `moesim simulate --json`
// prints), row `rank`.
std::vector<uint64_t> MoesimRow(const pb::Result& r, uint32_t layer, uint32_t rank) {
  for (const pb::SendMatrix& m : r.send_matrices()) {
    if (m.phase() != "dispatch" || m.layer() != layer) continue;
    std::vector<uint64_t> row;
    for (const auto& v : m.tokens(rank).values())
      row.push_back(static_cast<uint64_t>(v.number_value()));
    return row;
  }
  return {};
}

void CompareWithMoesim(const std::string& scenario) {
  const std::string path = testing::SourcePath(scenario);
  auto bench = LoadBenchScenario(path);
  REQUIRE(bench.ok());
  auto sim = sim::LoadScenario(path);
  REQUIRE(sim.ok());
  const pb::Result predicted = sim::SimulateMoeLayers(sim->cluster, sim->workload);
  for (uint32_t l = 0; l < bench->workload.layers.size(); ++l) {
    for (uint32_t r = 0; r < bench->ranks; ++r) {
      INFO(scenario << " layer " << l << " rank " << r);
      CHECK(MoebenchRow(*bench, l, r) == MoesimRow(predicted, l, r));
    }
  }
}

}  // namespace

TEST_CASE("send matrix: moebench lays out the seed example as moesim predicts") {
  // Rank 0: t0->E2 (rank 1), t1->E7 (rank 3), t2->E0 (kept), t3->E3 (rank 1): [1, 2, 0, 1].
  auto s = LoadBenchScenario(testing::SourcePath("scenarios/seed_example.pbtxt"));
  REQUIRE(s.ok());
  CHECK(MoebenchRow(*s, 0, 0) == std::vector<uint64_t>{1, 2, 0, 1});
  CHECK(MoebenchRow(*s, 0, 3) == std::vector<uint64_t>{1, 2, 0, 1});
  CompareWithMoesim("scenarios/seed_example.pbtxt");
}

TEST_CASE("send matrix: moebench and moesim agree on Mixtral-8x7B layers") {
  // The small EP 4 scenario the multi-rank tests run, and the default scenario: Mixtral-8x7B at
  // full width, EP 8, 4096 tokens per GPU, top-2 (each row sums to 4096 x 2 = 8192 copies).
  CompareWithMoesim("scenarios/mixtral_layer_ep4_small.pbtxt");
  CompareWithMoesim("scenarios/default.pbtxt");
  auto s = LoadBenchScenario(testing::SourcePath("scenarios/default.pbtxt"));
  REQUIRE(s.ok());
  uint64_t sum = 0;
  for (uint64_t n : MoebenchRow(*s, 0, 5)) sum += n;
  CHECK(sum == 8192);
}

}  // namespace moesim::backend
