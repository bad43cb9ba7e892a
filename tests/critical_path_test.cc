#include "sim/moe/critical_path.h"

#include <catch2/catch.hpp>

#include "sim/moe/moe_layer.h"
#include "sim/moe/scenario_loader.h"
#include "test_paths.h"

namespace moesim::sim {
namespace {

// Three ranks, one layer. Dispatch tokens (row = source):
//   [1 2 0]
//   [0 1 0]      gpu1 receives from gpu0 and gpu2; gpu2's tokens come back from gpu1.
//   [0 3 1]
models::LayerWork Layer() {
  models::LayerWork w;
  w.dispatch_tokens = models::TrafficMatrix(3);
  const uint64_t cells[3][3] = {{1, 2, 0}, {0, 1, 0}, {0, 3, 1}};
  for (uint32_t i = 0; i < 3; ++i) {
    for (uint32_t j = 0; j < 3; ++j) w.dispatch_tokens.at(i, j) = cells[i][j];
  }
  w.expert_tokens = {{1}, {6}, {1}};  // the columns' sums: what each rank's expert computes
  w.tokens_in = {3, 1, 4};
  return w;
}

void AddPhase(pb::Result& r, const char* name, std::vector<int64_t> times) {
  pb::Phase* p = r.add_phases();
  p->set_name(name);
  int64_t slowest = 0;
  for (int64_t t : times) {
    p->add_rank_time_ns(t);
    slowest = std::max(slowest, t);
  }
  p->set_time_ns(slowest);
  r.set_total_ns(r.total_ns() + slowest);
}

pb::Result Phases() {
  pb::Result r;
  AddPhase(r, "router", {10, 30, 20});
  AddPhase(r, "dispatch", {9, 7, 4});
  AddPhase(r, "expert", {60, 80, 10});
  AddPhase(r, "combine", {6, 8, 25});
  return r;
}

}  // namespace

TEST_CASE("Critical path: each rank starts a phase when its inputs are there") {
  pb::Result r = Phases();
  AddCriticalPath({Layer()}, r);
  // Routers end at 10, 30, 20. Dispatch into gpu0 waits for nobody else (no sender): 10 -> 19;
  // into gpu1 for gpu0 (10) and gpu2 (20), but its own router ends last: 30 -> 37; gpu2: 20 -> 24.
  // Experts: gpu0 19 -> 79, gpu1 37 -> 117, gpu2 24 -> 34. Combine into gpu0 waits for gpu1 (it
  // sent gpu1 tokens): 117 -> 123; gpu1 for nobody: 117 -> 125; gpu2 for gpu1: 117 -> 142.
  // gpu2 finishes last at 142; under barriers the phases add to 30 + 9 + 80 + 25 = 144.
  CHECK(r.total_ns() == 144);
  CHECK(r.dataflow_total_ns() == 142);
  REQUIRE(r.critical_path_size() == 4);
  struct Want {
    const char* phase;
    uint32_t rank;
    int64_t start, end;
    uint32_t waited_for;
    const char* note;
  };
  const Want want[4] = {
      {"router", 1, 0, 30, 1, "starts the layer"},
      {"dispatch", 1, 30, 37, 1, "its own router (its senders were ready before it)"},
      // gpu1 computes 6 of the 8 token copies: 6 / (8 / 3) = 2.25x the mean.
      {"expert", 1, 37, 117, 1, "its own dispatch; 6 token copies, 2.25x the mean"},
      {"combine", 2, 117, 142, 1, "gpu1's experts (the last to return its tokens)"}};
  for (int i = 0; i < 4; ++i) {
    const pb::CriticalStep& c = r.critical_path(i);
    INFO("step " << i);
    CHECK(c.phase() == want[i].phase);
    CHECK(c.rank() == want[i].rank);
    CHECK(c.start_ns() == want[i].start);
    CHECK(c.end_ns() == want[i].end);
    CHECK(c.waited_for() == want[i].waited_for);
    CHECK(c.note() == want[i].note);
  }
}

TEST_CASE("Critical path: left out when a phase or a rank's time is missing") {
  pb::Result r = Phases();
  r.mutable_phases(2)->mutable_rank_time_ns()->RemoveLast();
  AddCriticalPath({Layer()}, r);
  CHECK(r.critical_path_size() == 0);
  CHECK(r.dataflow_total_ns() == 0);
  pb::Result none;
  AddCriticalPath({Layer()}, none);
  CHECK(none.critical_path_size() == 0);
}

TEST_CASE("Critical path of a simulated layer never ends after the phases' sum") {
  auto s = LoadScenario(testing::SourcePath("scenarios/mixtral_layer_ep4_small.pbtxt"));
  REQUIRE(s.ok());
  pb::Result r = SimulateMoeLayers(s->cluster, s->workload);
  AddCriticalPath(s->workload.layers, r);
  REQUIRE(r.critical_path_size() == 4 * static_cast<int>(s->workload.layers.size()));
  CHECK(r.dataflow_total_ns() > 0);
  // Each rank's phase time is rounded up to whole ns, the total from exact picoseconds: at most
  // 1 ns more per phase on the path.
  CHECK(r.dataflow_total_ns() <= r.total_ns() + r.critical_path_size());
  // The path is contiguous: each step starts no earlier than the one before it ended.
  for (int i = 1; i < r.critical_path_size(); ++i)
    CHECK(r.critical_path(i).start_ns() >= r.critical_path(i - 1).end_ns());
  CHECK(r.critical_path(r.critical_path_size() - 1).end_ns() == r.dataflow_total_ns());
}

}  // namespace moesim::sim
