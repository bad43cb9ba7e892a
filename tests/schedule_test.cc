// Pipeline schedules and SM sharing (sim/step/schedule.h): each formula on hand-picked F, B, W, P.
#include "sim/step/schedule.h"

#include <catch2/catch.hpp>
#include <random>

#include "models/plan.h"
#include "step_fixtures.h"

namespace moesim::sim {
namespace {

Duration Us(int64_t us) { return Duration::Nanoseconds(us * 1000); }

// F 10 us, B 20 us of which W 10 us (half of every GEMM's backward), P 24 us (a forward and a
// backward overlapped: less than F + B = 30 us).
ChunkTimes Chunks() { return {Us(10), Us(20), Us(10), Us(24), Duration()}; }

models::Plan Plan(uint32_t layers, const std::string& text, uint32_t gpus) {
  pb::ModelSpec model = testing::TinyMoe();
  model.set_num_layers(layers);
  auto plan = models::ResolvePlan(testing::Parse<pb::ParallelPlan>(text), gpus, model, nullptr);
  REQUIRE(plan.ok());
  return *plan;
}

}  // namespace

TEST_CASE("Schedules: 1F1B, interleaved and DualPipe pipelines and bubbles by hand") {
  const ChunkTimes t = Chunks();
  SECTION("1F1B, p 4, m 8: bubble (p - 1)(F + B), then F + B and m - 1 pairs") {
    // bubble 3 x 30 = 90 us; pipeline 90 + 30 + 7 x 24 = 288 us.
    const PipelineTime x = SchedulePipeline(PipelineSchedule::k1F1B, 4, 8, 1, t);
    CHECK(x.bubble == Us(90));
    CHECK(x.pipeline == Us(288));
  }
  SECTION("interleaved 1F1B, p 4, m 8: the bubble over V") {
    // V 2: bubble 90 / 2 = 45 us; pipeline 45 + 30 + 168 = 243 us. V 4: 22.5 us, 220.5 us.
    const PipelineTime two = SchedulePipeline(PipelineSchedule::kInterleaved, 4, 8, 2, t);
    CHECK(two.bubble == Us(45));
    CHECK(two.pipeline == Us(243));
    const PipelineTime four = SchedulePipeline(PipelineSchedule::kInterleaved, 4, 8, 4, t);
    CHECK(four.bubble == Duration::Nanoseconds(22'500));
    CHECK(four.pipeline == Duration::Nanoseconds(220'500));
    // Layers V divides: the same bubble as chunks of 1/V (8 layers in 2 chunks of 4).
    CHECK(SchedulePipeline(PipelineSchedule::kInterleaved, 4, 8, 2, t, 8).bubble == Us(45));
    // 5 layers in 2 chunks (3 and 2, or Megatron's layouts' 4 and 1): priced at the largest as
    // even chunks make it, 3 of 5 layers: 90 x 3 / 5 = 54 us; pipeline 54 + 30 + 168 = 252 us.
    const PipelineTime uneven = SchedulePipeline(PipelineSchedule::kInterleaved, 4, 8, 2, t, 5);
    CHECK(uneven.bubble == Us(54));
    CHECK(uneven.pipeline == Us(252));
    // 13 layers in 4 chunks: ceil(13 / 4) = 4 of 13: 90 x 4 / 13 = 27.692307... us, rounded up
    // to the picosecond.
    CHECK(SchedulePipeline(PipelineSchedule::kInterleaved, 4, 8, 4, t, 13).bubble ==
          Duration::Picoseconds(27'692'308));
    // Fewer layers than chunks: 2 layers in 3 chunks, one empty: chunks of 1 of 2 layers, 90 / 2.
    CHECK(SchedulePipeline(PipelineSchedule::kInterleaved, 4, 8, 3, t, 2).bubble == Us(45));
    // Sends overlapped (overlap_p2p_comm, hop 2S = 3 us): each of the p - 1 = 3 fill and drain
    // hops waits on them: bubble 45 + 3 x 3 = 54 us; the steady state does not: 54 + 30 + 168 =
    // 252 us. On uneven chunks the hop adds the same: 54 + 9 = 63 us.
    ChunkTimes sent = t;
    sent.hop = Us(3);
    const PipelineTime overlapped = SchedulePipeline(PipelineSchedule::kInterleaved, 4, 8, 2, sent);
    CHECK(overlapped.bubble == Us(54));
    CHECK(overlapped.pipeline == Us(252));
    CHECK(SchedulePipeline(PipelineSchedule::kInterleaved, 4, 8, 2, sent, 5).bubble == Us(63));
    CHECK(overlapped.pair == Us(24));
    // Sends that outlast the pair (hop 20 us: a device's V x 2S = 40 us of sends a micro-batch
    // against P 24 us) set the steady state: bubble 45 + 3 x 20 = 105 us, pipeline 105 + 30 +
    // 7 x 40 = 415 us.
    sent.hop = Us(20);
    const PipelineTime bound = SchedulePipeline(PipelineSchedule::kInterleaved, 4, 8, 2, sent);
    CHECK(bound.pair == Us(40));
    CHECK(bound.bubble == Us(105));
    CHECK(bound.pipeline == Us(415));
    CHECK(BubbleFormula(PipelineSchedule::kInterleaved, 2, 8, true) ==
          "(p - 1)(F + B) / V + (p - 1) x 2S");
    CHECK(BubbleFormula(PipelineSchedule::kInterleaved, 2, 5, true) ==
          "(p - 1)(F + B) x 3/5 + (p - 1) x 2S (chunks of up to 3 of 5 layers)");
    // The division rounds up to whole picoseconds: (2 - 1)(1 ps) / 2 = 0.5 -> 1 ps.
    const ChunkTimes tiny{Duration::Picoseconds(1), Duration(), Duration(), Duration(), Duration()};
    CHECK(SchedulePipeline(PipelineSchedule::kInterleaved, 2, 2, 2, tiny).bubble ==
          Duration::Picoseconds(1));
  }
  SECTION("DualPipe, p 4, m 8: (p/2 - 1)(F&B + B - 3W), 3p/2 - 1 chunks alone, the rest paired") {
    // bubble (2 - 1)(24 + 20 - 30) = 14 us. Rank 0 of dualpipe.py runs 2(m/2 - p + 1) = 2 pairs
    // in step 4 and p/2 - 1 = 1 in step 5: 3 = m - 3p/2 + 1 pairs, and 3p/2 - 1 = 5 forwards and
    // backwards alone: 14 + 5 x 30 + 3 x 24 = 236 us.
    const PipelineTime x = SchedulePipeline(PipelineSchedule::kDualPipe, 4, 8, 1, t);
    CHECK(x.bubble == Us(14));
    CHECK(x.pipeline == Us(236));
  }
  SECTION("DualPipe at DeepSeek-V3's p 16, m 120 against 1F1B") {
    // DualPipe: 7 x 14 = 98 us bubble + 23 x 30 + 97 x 24 = 98 + 690 + 2,328 = 3,116 us.
    // 1F1B: 15 x 30 = 450 us bubble + 30 + 119 x 24 = 3,336 us.
    CHECK(SchedulePipeline(PipelineSchedule::kDualPipe, 16, 120, 1, t).pipeline == Us(3116));
    CHECK(SchedulePipeline(PipelineSchedule::kDualPipe, 16, 120, 1, t).bubble == Us(98));
    CHECK(SchedulePipeline(PipelineSchedule::k1F1B, 16, 120, 1, t).pipeline == Us(3336));
  }
  SECTION("DualPipe's bubble is never negative: 3W above F&B + B leaves none") {
    // W 20 us: 24 + 20 - 60 < 0 -> 0; pipeline 5 x 30 + 3 x 24 = 222 us.
    const ChunkTimes heavy{Us(10), Us(20), Us(20), Us(24), Duration()};
    const PipelineTime x = SchedulePipeline(PipelineSchedule::kDualPipe, 4, 8, 1, heavy);
    CHECK(x.bubble == Duration());
    CHECK(x.pipeline == Us(222));
  }
  CHECK(BubbleFormula(PipelineSchedule::kDualPipe) == "(p/2 - 1)(F&B + B - 3W)");
  CHECK(BubbleFormula(PipelineSchedule::kInterleaved, 2, 8) == "(p - 1)(F + B) / V");
  CHECK(BubbleFormula(PipelineSchedule::kInterleaved, 2, 5) ==
        "(p - 1)(F + B) x 3/5 (chunks of up to 3 of 5 layers)");
  CHECK(BubbleFormula(PipelineSchedule::k1F1B, 1, 5) == "(p - 1)(F + B)");
}

TEST_CASE("SM sharing: compute beside an all-to-all loses the SMs the all-to-all holds") {
  const SmShare deep_ep{20, 132};
  SECTION("compute outlasts the exchange: it loses A x c / S") {
    // C 100 ns, A 50 ns: during the 50 ns the compute runs at 112/132 and does 42.42 ns of work;
    // the other 57.58 ns at the full rate: 107.58 ns = 100 ns + ceil(50,000 x 20 / 132) ps
    // = 100,000 + 7,576 ps.
    CHECK(Overlapped(Duration::Nanoseconds(100), Duration::Nanoseconds(50), deep_ep) ==
          Duration::Picoseconds(107'576));
  }
  SECTION("the exchange outlasts the slowed compute: it is the time") {
    // C 100 ns, A 200 ns: 100 + 30.3 ns < 200 ns.
    CHECK(Overlapped(Duration::Nanoseconds(100), Duration::Nanoseconds(200), deep_ep) ==
          Duration::Nanoseconds(200));
  }
  SECTION("no SMs held: max(C, A)") {
    CHECK(Overlapped(Duration::Nanoseconds(100), Duration::Nanoseconds(50), {}) ==
          Duration::Nanoseconds(100));
    CHECK(Overlapped(Duration::Nanoseconds(100), Duration::Nanoseconds(50), {0, 132}) ==
          Duration::Nanoseconds(100));
  }
  // DeepEP's Buffer.num_sms for its kernels, NCCL's 16 p2p channels on an H800 node.
  CHECK(DefaultCommSms(models::AllToAllAlgo::kHierarchical, 256, 132) == 20);
  CHECK(DefaultCommSms(models::AllToAllAlgo::kPerRank, 256, 132) == 20);
  CHECK(DefaultCommSms(models::AllToAllAlgo::kDeepEpNormal, 256, 132) == 20);
  CHECK(DefaultCommSms(models::AllToAllAlgo::kDirect, 256, 132) == 16);
  // DeepEP's low-latency kernels: an SM per ceil(256 / 132) = 2 experts, ceil(256 / 2) = 128.
  CHECK(DefaultCommSms(models::AllToAllAlgo::kDeepEpLowLatency, 256, 132) == 128);
}

TEST_CASE("Schedules: which plans each can run, and the errors that say why not") {
  // 4 layers over pp 2: 2 per stage.
  const models::Plan pp2 = Plan(4, "pp: 2 ep: 4", 8);
  CHECK(CheckSchedule(PipelineSchedule::kInterleaved, 2, pp2, 4, true).ok());
  CHECK(CheckSchedule(PipelineSchedule::kDualPipe, 1, pp2, 4, true).ok());
  // Interleaved: 5 micro-batches are not a multiple of pp 2.
  const Status odd = CheckSchedule(PipelineSchedule::kInterleaved, 2, pp2, 5, true);
  REQUIRE_FALSE(odd.ok());
  CHECK_THAT(odd.error().message(),
             Catch::Contains("step.schedule = interleaved: 5 micro-batches"));
  CHECK_THAT(odd.error().message(), Catch::Contains("a multiple of pp (2)"));
  // 2 layers per stage in 4 chunks: two chunks hold none (the embedding or the loss alone, as
  // Megatron's layouts allow).
  CHECK(CheckSchedule(PipelineSchedule::kInterleaved, 4, pp2, 4, true).ok());
  // 5 layers over pp 2 (3 and 2) run 2 chunks a device, uneven on the first stage.
  CHECK(CheckSchedule(PipelineSchedule::kInterleaved, 2,
                      Plan(5, "pp: 2 ep: 4 pp_first_stage_layers: 3", 8), 4, true)
            .ok());
  CHECK_FALSE(CheckSchedule(PipelineSchedule::kInterleaved, 1, pp2, 4, true).ok());
  // DualPipe: m at least 2 pp and even.
  CHECK_THAT(CheckSchedule(PipelineSchedule::kDualPipe, 1, pp2, 2, true).error().message(),
             Catch::Contains("at least 2 x pp (4)"));
  CHECK_FALSE(CheckSchedule(PipelineSchedule::kDualPipe, 1, pp2, 5, true).ok());
  // An odd pp cannot pair its stages.
  const models::Plan pp3 = Plan(3, "pp: 3 ep: 2", 6);
  CHECK_THAT(CheckSchedule(PipelineSchedule::kDualPipe, 1, pp3, 12, true).error().message(),
             Catch::Contains("an even pp >= 2"));
  // Training schedules only.
  CHECK_FALSE(CheckSchedule(PipelineSchedule::kDualPipe, 1, pp2, 4, false).ok());
  CHECK(CheckSchedule(PipelineSchedule::k1F1B, 1, pp3, 1, false).ok());

  auto bad = ParseSchedule("zero-bubble", {"s.pbtxt", 3, 5}, "step.schedule");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message() ==
        "s.pbtxt:3:5: step.schedule = \"zero-bubble\": unknown pipeline schedule; valid: "
        "\"1f1b\", \"interleaved\", \"dualpipe\"");
  CHECK(*ParseSchedule("", {}, "f") == PipelineSchedule::k1F1B);
  CHECK(*ParseSchedule("dualpipe", {}, "f") == PipelineSchedule::kDualPipe);
}

}  // namespace moesim::sim

namespace moesim::sim {
namespace {

int64_t LayoutEnd(const PipelineLayout& l) {
  int64_t end = 0;
  for (const PipelineSlot& s : LayOutPipeline(l)) end = std::max(end, s.end);
  return end;
}

}  // namespace

TEST_CASE("Pipeline layout: ends at the formulas whenever B <= P, for any bubble") {
  // Property: bubble + full_pairs (F + B) + (m - full_pairs) P, exactly, over seeded random
  // stages 2-12, m >= p, F, B, P in [B, F + B], a bubble split F : B between warm-up and drain
  // (1F1B's, interleaving's / V, or any, as DualPipe's), 1 or 3p/2 - 1 pairs at F + B.
  std::mt19937_64 rng(11);
  auto draw = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  for (int trial = 0; trial < 2000; ++trial) {
    const uint32_t p = static_cast<uint32_t>(draw(2, 12)), m = static_cast<uint32_t>(draw(p, 40));
    const int64_t f = draw(1, 1'000'000), b = draw(1, 3'000'000), pair = draw(b, f + b);
    const int64_t bubble = draw(0, 1) ? (p - 1) * (f + b) / draw(1, 4) : draw(0, (p - 1) * (f + b));
    const PipelineSchedule schedule =
        draw(0, 1) ? PipelineSchedule::kDualPipe : PipelineSchedule::k1F1B;
    const PipelineLayout l = LayoutOf(schedule, p, m, true, f, b, pair, bubble);
    INFO("p " << p << " m " << m << " F " << f << " B " << b << " P " << pair << " bubble "
              << bubble << " full pairs " << l.full_pairs);
    CHECK(LayoutEnd(l) == bubble + l.full_pairs * (f + b) + (m - l.full_pairs) * pair);
  }
}

TEST_CASE("Pipeline layout: a backward longer than the steady pair waits on the next stage's") {
  // p 2, m 3, F 20, B 40, P 30 (< B), bubble (p - 1)(F + B) = 60: warm-up forwards 20, drain 40.
  // Overlapped pairs: the backward min(40, 30) = 30, the forward 30 - 30 = 0.
  // Stage 0 (F0 | F1 B0 full | F2 B1 overlapped | B2 drain): F0 0-20, F1 20-40.
  // Stage 1 (F0 B0 full | F1 B1 | F2 B2 overlapped): F0 20-40, B0 40-80, F1 80-80, B1 80-110.
  // Stage 0: B0 80-120, F2 120-120, B1 max(120, 110) 120-150. Stage 1: F2 120-120, B2 120-150.
  // Stage 0: B2 max(150, 150) 150-190. The formula says 60 + 60 + 2 x 30 = 180: 10 more.
  const PipelineLayout l = LayoutOf(PipelineSchedule::k1F1B, 2, 3, true, 20, 40, 30, 60);
  CHECK(LayoutEnd(l) == 190);
  const ChunkTimes t{Duration::Picoseconds(20), Duration::Picoseconds(40), Duration(),
                     Duration::Picoseconds(30), Duration()};
  const PipelineTime x = SchedulePipeline(PipelineSchedule::k1F1B, 2, 3, 1, t);
  CHECK(x.bubble == Duration::Picoseconds(60));
  CHECK(x.pipeline == Duration::Picoseconds(190));
  CHECK(x.dependency_wait == Duration::Picoseconds(10));
  // B <= P: nothing to wait for, the formula stands.
  const ChunkTimes even{Duration::Picoseconds(20), Duration::Picoseconds(40), Duration(),
                        Duration::Picoseconds(45), Duration()};
  CHECK(SchedulePipeline(PipelineSchedule::k1F1B, 2, 3, 1, even).dependency_wait == Duration());
}

}  // namespace moesim::sim
