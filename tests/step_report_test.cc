#include "sim/step/step_report.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sstream>

namespace moesim::sim {
namespace {

// The "X" event of process `pid`, thread `tid`, named `name`; fails the test when there is none.
nlohmann::json Slice(const nlohmann::json& trace, int pid, int tid, const std::string& name) {
  for (const nlohmann::json& e : trace.at("traceEvents")) {
    if (e.at("ph") == "X" && e.at("pid") == pid && e.at("tid") == tid && e.at("name") == name) {
      return e;
    }
  }
  FAIL("no slice " << name << " on pid " << pid << " tid " << tid);
  return {};
}

}  // namespace

TEST_CASE("The step timeline: 1F1B on two stages, then the slowest stage's ops, names escaped") {
  // 2 stages, 2 micro-batches, training: forward 1,000 ns and backward 2,000 ns on each stage.
  pb::StepResult r;
  r.set_mode("training");
  r.set_micro_batches(2);
  r.set_slowest_stage(1);
  for (int s = 0; s < 2; ++s) {
    r.add_stage_forward_ns(1000);
    r.add_stage_backward_ns(2000);
  }
  // The slowest stage's chunk times, as the step reports them: P = F + B (nothing overlapped), the
  // bubble (p - 1)(F + B) = 3,000 ns: warm-up forwards 1,000, the drain's backwards 2,000.
  r.set_forward_ns(1000);
  r.set_backward_ns(2000);
  r.set_pair_ns(3000);
  r.set_bubble_ns(3000);
  r.set_grad_sync_exposed_ns(500);
  r.set_optimizer_ns(250);
  // An op whose name hand-written JSON quoting got wrong: a tab, a newline, a quote, a backslash.
  const std::string odd = "all\tto\nall \"ep\" \\ 8";
  pb::StepOp* a2a = r.add_ops();
  a2a->set_name(odd);
  a2a->set_pass("forward");
  a2a->set_layer(3);
  a2a->set_communication(true);
  a2a->set_time_ns(1234);
  pb::StepOp* ffn = r.add_ops();
  ffn->set_name("expert FFN");
  ffn->set_pass("forward");
  ffn->set_layer(3);
  ffn->set_time_ns(766);

  std::ostringstream out;
  WriteStepTimeline(r, out);
  const nlohmann::json trace = nlohmann::json::parse(out.str());  // throws if it is not JSON

  // Stage 0 runs F0 F1 B0 B1 (one warm-up forward), stage 1 F0 B0 F1 B1. Stage 1's F0 waits for
  // stage 0's (ends 1,000 ns): 1,000-2,000, B0 2,000-4,000, F1 4,000-5,000, B1 5,000-7,000.
  // Stage 0: F0 0-1,000, F1 1,000-2,000, B0 waits for stage 1's B0: 4,000-6,000, B1 for stage
  // 1's B1: 7,000-9,000. Then the exposed gradient reduction at 9,000 and the optimizer at 9,500.
  CHECK(Slice(trace, 1, 0, "F0").at("ts") == 1.0);
  CHECK(Slice(trace, 1, 0, "B1").at("ts") == 5.0);
  CHECK(Slice(trace, 0, 0, "B0").at("ts") == 4.0);
  CHECK(Slice(trace, 0, 0, "B1").at("ts") == 7.0);
  CHECK(Slice(trace, 0, 0, "B1").at("dur") == 2.0);
  CHECK(Slice(trace, 1, 0, "gradient reduction (exposed)").at("ts") == 9.0);
  CHECK(Slice(trace, 1, 0, "optimizer").at("ts") == 9.5);
  CHECK(Slice(trace, 1, 0, "optimizer").at("dur") == 0.25);

  // The op-by-op process comes after the stages (pid 2): the all-to-all on the communication
  // track from 0 for 1.234 us, the FFN on the compute track after it, each to the nanosecond.
  const nlohmann::json first = Slice(trace, 2, 1, odd + " L3 forward");
  CHECK(first.at("ts") == 0.0);
  CHECK(first.at("dur") == 1.234);
  CHECK(Slice(trace, 2, 0, "expert FFN L3 forward").at("ts") == 1.234);
  bool named = false;
  for (const nlohmann::json& e : trace.at("traceEvents")) {
    if (e.at("ph") == "M" && e.at("pid") == 2 && e.at("name") == "process_name") {
      named = e.at("args").at("name") == "one micro-batch, stage 1";
    }
  }
  CHECK(named);
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("The step report prints MFU against the model dtype's peak and against BF16's") {
  // 10 ms a step: an FP8 model at 27.04 % of the FP8 peak is at 54.08 % of the BF16 one (half
  // the FLOP/s); a BF16 model prints one figure and names its peak.
  pb::StepResult r;
  r.set_mode("prefill");
  r.set_step_ns(10'000'000);
  r.set_mfu(0.2704);
  r.set_mfu_bf16(0.5408);
  r.set_mfu_dtype("FP8");
  StepConfig c;
  std::ostringstream fp8;
  PrintStepReport(r, c, fp8);
  CHECK_THAT(fp8.str(), Catch::Contains("10.000 ms   MFU 27.0 % of FP8 peak, 54.1 % of BF16"));
  r.set_mfu(0.5408);
  r.set_mfu_dtype("BF16");
  std::ostringstream bf16;
  PrintStepReport(r, c, bf16);
  CHECK_THAT(bf16.str(), Catch::Contains("10.000 ms   MFU 54.1 % (BF16 peak)"));
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("PipelineSlices: 1F1B at the slowest stage's times, ending at the report's pipeline") {
  // 2 stages, 3 micro-batches, F 20, B 40, P 60 (no overlap), bubble (p - 1)(F + B) = 60: warm-up
  // forwards take 60 x 20/60 = 20, the drain's backwards 40. Stage 0 warms up with min(3, 1) = 1
  // forward (F0 F1 B0 F2 B1 B2), stage 1 with none (F0 B0 F1 B1 F2 B2).
  // Sweep 1, stage 0: F0 0-20, F1 20-40, then B0 waits for stage 1's. Stage 1: F0 20-40, B0 40-80,
  // F1 80-100, B1 100-140, then F2 waits. Sweep 2, stage 0: B0 80-120, F2 120-140, B1
  // max(140, 140) 140-180, then B2 waits; stage 1: F2 140-160, B2 160-200. Sweep 3: stage 0's B2
  // 200-240 = bubble 60 + (F + B) 60 + (m - 1) P 120, the report's pipeline.
  pb::StepResult r;
  r.set_mode("training");
  r.set_micro_batches(3);
  r.add_stage_forward_ns(10);  // the stages' own times: drawn at the slowest's, as priced
  r.add_stage_forward_ns(20);
  r.add_stage_backward_ns(30);
  r.add_stage_backward_ns(40);
  r.set_forward_ns(20);
  r.set_backward_ns(40);
  r.set_pair_ns(60);
  r.set_bubble_ns(60);
  const std::vector<PipelineSlice> got = PipelineSlices(r);
  struct Want {
    uint32_t stage;
    bool forward;
    uint32_t mb;
    int64_t start, end;
  };
  const std::vector<Want> want = {
      {0, true, 0, 0, 20},    {0, true, 1, 20, 40},    {1, true, 0, 20, 40},
      {1, false, 0, 40, 80},  {1, true, 1, 80, 100},   {1, false, 1, 100, 140},
      {0, false, 0, 80, 120}, {0, true, 2, 120, 140},  {0, false, 1, 140, 180},
      {1, true, 2, 140, 160}, {1, false, 2, 160, 200}, {0, false, 2, 200, 240}};
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("slice " << i);
    CHECK(got[i].stage == want[i].stage);
    CHECK(got[i].forward == want[i].forward);
    CHECK(got[i].micro_batch == want[i].mb);
    CHECK(got[i].start_ns == want[i].start);
    CHECK(got[i].end_ns == want[i].end);
  }
  // Inference: forwards only, each stage after the one before: stage 1's F2 ends at 20 + 3 x 20.
  r.set_mode("prefill");
  const std::vector<PipelineSlice> prefill = PipelineSlices(r);
  REQUIRE(prefill.size() == 6);
  CHECK(prefill.back().end_ns == 80);
  // A result without stage times (a hand-written file): nothing laid out.
  r.clear_stage_forward_ns();
  CHECK(PipelineSlices(r).empty());
}

TEST_CASE("SumOps adds one micro-batch's ops by pass and name, in the order they first run") {
  pb::StepResult r;
  auto add = [&](const char* pass, const char* name, int64_t ns, bool comm) {
    pb::StepOp* op = r.add_ops();
    op->set_pass(pass);
    op->set_name(name);
    op->set_time_ns(ns);
    op->set_communication(comm);
  };
  add("forward", "expert", 5, false);
  add("forward", "dispatch", 2, true);
  add("forward", "expert", 7, false);
  add("backward", "expert", 11, false);
  const std::vector<OpSum> sums = SumOps(r);
  REQUIRE(sums.size() == 3);
  CHECK(sums[0].name == "expert");
  CHECK(sums[0].count == 2);
  CHECK(sums[0].ns == 12);
  CHECK(sums[1].communication);
  CHECK(sums[2].pass == "backward");
  CHECK(sums[2].ns == 11);
}

}  // namespace moesim::sim
