// Replaying a routing trace in a scenario: routing { trace { file: ... } }.
#include "models/trace_replay.h"

#include <catch2/catch.hpp>

#include "models/trace.h"
#include "sim/moe/replay.h"
#include "sim/moe/scenario_loader.h"
#include "test_paths.h"

namespace moesim::sim {
namespace {

// The replay scenario with its routing block replaced by `routing` and `extra` appended.
StatusOr<LoadedScenario> Variant(const std::string& model, const std::string& cluster,
                                 const std::string& routing, const std::string& extra = "",
                                 const std::string& ep = "8") {
  // Named inside scenarios/ so the trace's relative path resolves as in the real file.
  return LoadScenarioFromString("cluster { " + cluster + " }\nmodel: \"" + model +
                                    "\"\nplan { ep: " + ep + " }\nrouting { " + routing + " }\n" +
                                    extra,
                                testing::SourcePath("scenarios/variant.pbtxt"));
}

const char* kTrace = "trace { file: \"traces/olmoe-zipf-4steps.trace\" }";

}  // namespace

TEST_CASE("A trace replays step by step and the slowest step is the one shown") {
  auto s = LoadScenario(testing::SourcePath("scenarios/olmoe_trace_replay.pbtxt"));
  REQUIRE(s.ok());
  REQUIRE(s->workload.replay.size() == 4);
  const pb::Result r =
      SimulateReplay(*MakeNetworkModel(s->cluster, Fidelity::kAnalytical), s->workload);
  REQUIRE(r.steps_size() == 4);
  // Each step's total equals simulating that step alone; the Result shows the largest.
  int64_t slowest = 0;
  uint64_t slowest_step = 0;
  for (int i = 0; i < 4; ++i) {
    models::Workload one = s->workload;
    one.layers = s->workload.replay[i].layers;
    const pb::Result alone = SimulateMoeLayers(s->cluster, one);
    CHECK(r.steps(i).step() == static_cast<uint64_t>(i));
    CHECK(r.steps(i).total_ns() == alone.total_ns());
    if (alone.total_ns() > slowest) {
      slowest = alone.total_ns();
      slowest_step = i;
    }
  }
  CHECK(r.total_ns() == slowest);
  CHECK(r.replayed_step() == slowest_step);
}

TEST_CASE("Replayed routing is the trace's, record for record") {
  auto s = LoadScenario(testing::SourcePath("scenarios/olmoe_trace_replay.pbtxt"));
  REQUIRE(s.ok());
  // Step 2, rank 5 of the trace, read directly.
  auto reader =
      models::TraceReader::Open(testing::SourcePath("scenarios/traces/olmoe-zipf-4steps.trace"));
  REQUIRE(reader.ok());
  pb::TraceRecord record;
  std::vector<uint32_t> expected;
  for (;;) {
    auto got = reader->Next(&record);
    REQUIRE(got.ok());
    if (!*got) break;
    if (record.step() == 2 && record.rank() == 5 && record.layer() == 0) {
      expected.insert(expected.end(), record.experts().begin(), record.experts().end());
    }
  }
  REQUIRE(expected.size() == 512 * 8);
  // Dispatch of step 2: rank 5's 4,096 selections go out by their experts' EP rank (8 per rank).
  const models::LayerWork& work = s->workload.replay[2].layers[0];
  std::vector<uint64_t> row(8, 0);
  for (uint32_t e : expected) ++row[e / 8];
  for (uint32_t j = 0; j < 8; ++j) CHECK(work.dispatch_tokens.at(5, j) == row[j]);
  CHECK(work.tokens_in[5] == 512);
}

TEST_CASE("Trace replay errors: model mismatch, missing ranks, token count, missing file") {
  auto model = Variant("mixtral-8x7b", "node_preset: \"dgx-h100\"", kTrace);
  REQUIRE_FALSE(model.ok());
  CHECK_THAT(model.error().message(),
             Catch::Contains("the trace has 64 experts, top-8; the model 8, top-2"));

  auto ranks = Variant("olmoe-1b-7b", "node_preset: \"dgx-h100\" gpus: 4", kTrace, "", "4");
  REQUIRE_FALSE(ranks.ok());
  CHECK_THAT(ranks.error().message(),
             Catch::Contains("record 4 rank = 4: the cluster has no such GPU; valid: 0 to 3"));

  auto tokens = Variant("olmoe-1b-7b", "node_preset: \"dgx-h100\"", kTrace,
                        "workload { tokens_per_gpu: 1024 }\n");
  REQUIRE_FALSE(tokens.ok());
  CHECK_THAT(tokens.error().message(),
             Catch::Contains("has 512 tokens, workload.tokens_per_gpu says 1024"));

  auto missing =
      Variant("olmoe-1b-7b", "node_preset: \"dgx-h100\"", "trace { file: \"traces/none.trace\" }");
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error().message(), Catch::Contains("none.trace"));

  auto steps = Variant("olmoe-1b-7b", "node_preset: \"dgx-h100\"",
                       "trace { file: \"traces/olmoe-zipf-4steps.trace\" max_steps: 2 }");
  REQUIRE(steps.ok());
  CHECK(steps->workload.replay.size() == 2);
}

}  // namespace moesim::sim
