// Whole steps that replay a trace (sim/step/step_trace.h): each MoE layer its own trace layer,
// each micro-batch its own trace step, and the errors that name both numbers.
#include "sim/step/step_trace.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <string>

#include "models/trace.h"
#include "step_fixtures.h"
#include "test_paths.h"

namespace moesim::sim {
namespace {

using testing::Parse;

constexpr int64_t kStepTraceLaunchPs = 4'000'000;  // 4 us per kernel (sim/compute/kernel_model.h)

// h 1024, 8 experts of FFN 512 (SwiGLU), top-1, two layers, both MoE, BF16.
pb::ModelSpec TwoLayers() {
  return Parse<pb::ModelSpec>(
      "name: 'two' hidden_size: 1024 expert_ffn_size: 512 num_experts: 8 top_k: 1 num_layers: 2 "
      "dtype: BF16 vocab_size: 1024 attention { kind: MHA num_heads: 8 }");
}

// Writes a trace of 4 ranks x 512 tokens, top-1 over 8 experts; expert_of(step, layer, rank,
// token) gives each token's expert.
void WriteStepTrace(
    const std::string& path, uint64_t steps, uint32_t layers,
    const std::function<uint32_t(uint64_t, uint32_t, uint32_t, uint32_t)>& expert_of,
    uint64_t tokens = 512, uint32_t ranks = 4) {
  pb::TraceHeader header;
  header.set_num_experts(8);
  header.set_top_k(1);
  auto w = models::TraceWriter::Create(path, header);
  REQUIRE(w.ok());
  for (uint64_t s = 0; s < steps; ++s) {
    for (uint32_t l = 0; l < layers; ++l) {
      for (uint32_t r = 0; r < ranks; ++r) {
        pb::TraceRecord rec;
        rec.set_step(s);
        rec.set_layer(l);
        rec.set_rank(r);
        rec.set_tokens(tokens);
        for (uint32_t t = 0; t < tokens; ++t) rec.add_experts(expert_of(s, l, r, t));
        REQUIRE(w->Write(rec).ok());
      }
    }
  }
  REQUIRE(w->Close().ok());
}

// Layer 0 skewed (every token to expert 0), layer 1 uniform (token t to expert t mod 8).
uint32_t SkewedThenUniform(uint64_t, uint32_t layer, uint32_t, uint32_t token) {
  return layer == 0 ? 0 : token % 8;
}

pb::Routing TraceRouting(const std::string& path, const std::string& more = "") {
  return Parse<pb::Routing>("trace { file: '" + path + "' " + more + " }");
}

// 8 GPUs of one DGX H100, ep 4 (tp 1, pp 1, dp 8: two EP groups of 4), training, sequences of 512
// tokens, micro-batch 1: each rank routes 512 tokens a micro-batch.
StepConfig StepTraceConfig(uint64_t global_batch) {
  StepConfig c;
  c.global_batch = global_batch;
  c.seq_len = 512;
  return c;
}

models::Plan Ep4(const pb::ModelSpec& model) {
  auto p = models::ResolvePlan(Parse<pb::ParallelPlan>("ep: 4"), 8, model, nullptr);
  REQUIRE(p.ok());
  return *p;
}

StatusOr<StepReport> Replay(const std::string& path, const StepConfig& c,
                            const std::string& more = "") {
  const pb::ModelSpec model = TwoLayers();
  const models::Plan plan = Ep4(model);
  MOESIM_ASSIGN_OR_RETURN(
      StepTraceWork t, StepTraceLayers(model, plan, TraceRouting(path, more), {}, 8, c, nullptr));
  return SimulateStep(testing::DgxH100(1), model, plan, t.by_step[0][0], c, &t);
}

int64_t ExpertForward(const StepReport& r, uint32_t layer) {
  for (const StepOp& op : r.ops) {
    if (op.name == "expert" && op.pass == "forward" && op.layer == layer)
      return op.time.picoseconds();
  }
  FAIL("no forward expert op of layer " << layer);
  return 0;
}

}  // namespace

TEST_CASE("step replaying a trace: each MoE layer's expert time from its own trace layer") {
  const std::string path = testing::TempPath("step_skew.trace");
  WriteStepTrace(path, 1, 2, SkewedThenUniform);
  auto r = Replay(path, StepTraceConfig(8));  // 8 sequences over dp 8: one micro-batch
  REQUIRE(r.ok());
  CHECK_THAT(r->routing, Catch::Contains("replayed from " + path));
  CHECK_THAT(r->routing, Catch::Contains("1 step(s) x 2 layer(s), 4 ranks x 512 tokens"));
  // Expert GEMMs as the per-expert loop (BF16: 688 TFLOP/s, memory 2,979,406,250,000 B/s, 4 us a
  // launch; each GEMM max(ceil(FLOPs / rate), ceil(bytes / bandwidth)) + launch; an expert
  // without tokens is skipped; tests/step_values_test.cc pins these rates).
  // Layer 0, skewed: 4 ranks x 512 tokens all go to expert 0, on EP rank 0 (contiguous: experts
  // 0, 1): one expert of 2048 rows. fc1 [2048, 1024] x [1024, 1024] (gate and up, 2 x 512):
  // 2 x 2048 x 1024 x 1024 = 4,294,967,296 FLOPs = 6,242,686 ps (its 10,485,760 B take only
  // 3,519,413); fc2 [2048, 512] x [512, 1024]: 2,147,483,648 FLOPs = 3,121,343 ps (7,340,032 B:
  // 2,463,589). The slowest rank: 6,242,686 + 3,121,343 + 2 launches = 17,364,029 ps.
  const int64_t skewed = 6'242'686 + 3'121'343 + 2 * kStepTraceLaunchPs;
  CHECK(ExpertForward(*r, 0) == skewed);
  // Layer 1, uniform: token t to expert t mod 8, so each expert gets 2048 / 8 = 256 rows and each
  // EP rank two experts. Per expert fc1 [256, 1024] x [1024, 1024]: 536,870,912 FLOPs = 780,336 ps
  // but (256 x 1024 + 1024 x 1024 + 256 x 1024) x 2 = 3,145,728 B = 1,055,824 ps; fc2 [256, 512]
  // x [512, 1024]: 268,435,456 FLOPs = 390,168 ps but 1,835,008 B = 615,898 ps. Two experts:
  // 2 x (1,055,824 + 615,898 + 2 launches) = 19,343,444 ps.
  const int64_t uniform = 2 * (1'055'824 + 615'898 + 2 * kStepTraceLaunchPs);
  CHECK(ExpertForward(*r, 1) == uniform);
  // The step's expert time (forward) is the sum of its layers' own: 36,707,473 ps. One layer's
  // work for every layer, as synthetic routing costs it, would give 2 x 17,364,029 or
  // 2 x 19,343,444 instead.
  CHECK(ExpertForward(*r, 0) + ExpertForward(*r, 1) == 36'707'473);
  // Memory takes the layer whose busiest rank computes the most copies: the skewed one (EP rank 0
  // computes all 2048, against 512 on every rank of the uniform one).
  const pb::ModelSpec model = TwoLayers();
  auto t =
      StepTraceLayers(model, Ep4(model), TraceRouting(path), {}, 8, StepTraceConfig(8), nullptr);
  REQUIRE(t.ok());
  const models::LayerWork& busiest = BusiestTraceLayer(*t);
  CHECK(&busiest == &t->by_step[0][0]);
  CHECK(busiest.expert_tokens[0] == std::vector<uint64_t>{2048, 0});
  std::filesystem::remove(path);
}

TEST_CASE("step replaying a trace: micro-batch j replays trace step j mod steps") {
  // Step 0: layer 0 skewed, layer 1 uniform; step 1: both uniform.
  const std::string both = testing::TempPath("step_two.trace");
  const std::string first = testing::TempPath("step_first.trace");
  const std::string second = testing::TempPath("step_second.trace");
  auto two_steps = [](uint64_t s, uint32_t l, uint32_t r, uint32_t t) {
    return SkewedThenUniform(s, s == 0 ? l : 1, r, t);
  };
  WriteStepTrace(both, 2, 2, two_steps);
  WriteStepTrace(first, 1, 2, SkewedThenUniform);
  WriteStepTrace(second, 1, 2, [&](uint64_t, uint32_t l, uint32_t r, uint32_t t) {
    return two_steps(1, l, r, t);
  });
  // 16 sequences over dp 8: two micro-batches, the first replaying step 0, the second step 1.
  const StepConfig c = StepTraceConfig(16);
  auto r = Replay(both, c);
  auto r0 = Replay(first, c);
  auto r1 = Replay(second, c);
  REQUIRE(r.ok());
  REQUIRE(r0.ok());
  REQUIRE(r1.ok());
  CHECK_THAT(r->routing, Catch::Contains("micro-batch j the trace's step j mod 2"));
  // The schedule sees the mean micro-batch: F = (F0 + F1) / 2 to the picosecond (halves up),
  // B alike; the ops shown are micro-batch 0's (step 0: layer 0 skewed).
  const int64_t f0 = r0->forward.picoseconds(), f1 = r1->forward.picoseconds();
  CHECK(f0 != f1);
  CHECK(r->forward.picoseconds() == (f0 + f1 + 1) / 2);
  CHECK(r->backward.picoseconds() ==
        (r0->backward.picoseconds() + r1->backward.picoseconds() + 1) / 2);
  CHECK(ExpertForward(*r, 0) == ExpertForward(*r0, 0));
  CHECK(ExpertForward(*r1, 0) == ExpertForward(*r0, 1));  // step 1's layer 0 is uniform
  // max_steps 1 replays step 0 alone: every micro-batch is step 0's.
  auto only = Replay(both, c, "max_steps: 1");
  REQUIRE(only.ok());
  CHECK(only->forward == r0->forward);
  for (const std::string& p : {both, first, second}) std::filesystem::remove(p);
}

TEST_CASE("step replaying a trace: ranks, tokens and layers that do not fit are named") {
  const std::string path = testing::TempPath("step_bad.trace");
  SECTION("a trace of 8 ranks for an EP group of 4") {
    WriteStepTrace(path, 1, 2, SkewedThenUniform, 512, 8);
    auto r = Replay(path, StepTraceConfig(8));
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message(), Catch::Contains("the trace holds 8 rank(s); the plan's EP "
                                                    "group has 4"));
  }
  SECTION("256 tokens per rank for a micro-batch of 512") {
    WriteStepTrace(path, 1, 2, SkewedThenUniform, 256);
    auto r = Replay(path, StepTraceConfig(8));
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message(),
               Catch::Contains("rank 0 holds 256 tokens; the step's micro-batch routes 512 per "
                               "rank (micro_batch x seq_len / (tp x cp) = 1 x 512 / 1)"));
  }
  SECTION("one layer for two MoE layers: refused, or cycled when asked") {
    WriteStepTrace(path, 1, 1, SkewedThenUniform);  // layer 0 only: skewed
    auto refused = Replay(path, StepTraceConfig(8));
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(refused.error().message(),
               Catch::Contains("the trace holds 1 layer(s); two has 2 MoE layers"));
    CHECK_THAT(refused.error().message(), Catch::Contains("cycle_layers: true"));
    auto cycled = Replay(path, StepTraceConfig(8), "cycle_layers: true");
    REQUIRE(cycled.ok());
    // Both MoE layers replay trace layer 0, the skewed one (17,364,029 ps, as above).
    CHECK(ExpertForward(*cycled, 0) == 6'242'686 + 3'121'343 + 2 * kStepTraceLaunchPs);
    CHECK(ExpertForward(*cycled, 1) == ExpertForward(*cycled, 0));
    CHECK_THAT(cycled->routing, Catch::Contains("MoE layer i replays trace layer i mod 1"));
  }
  std::filesystem::remove(path);
}

}  // namespace moesim::sim
