#include "sim/compute/compute_model.h"

#include <catch2/catch.hpp>
#include <utility>

#include "models/model_spec.h"
#include "sim/compute/profile_model.h"
#include "sim/step/step.h"
#include "step_fixtures.h"
#include "topology/cluster.h"

namespace moesim::sim {
namespace {

using testing::Parse;

topology::Cluster OneNode() { return testing::DgxH100(1); }
pb::ModelSpec TinyForCompute() { return testing::TinyMoe(); }  // tests/step_fixtures.h: 12,288 FLOPs a token

// 100 TFLOP/s, 64 tokens at half rate, memory so fast (1 PB/s) that nothing here is bound by
// it, 2 us per launch.
pb::HardwareProfile Measured() {
  return Parse<pb::HardwareProfile>(
      "name: 'measured' gpu { gemm_peak_tflops: 100 gemm_n_half: 64 memory_bandwidth_gbps: 1e6 "
      "launch_overhead_ns: 2000 }");
}

const StepOp& Op(const StepReport& r, const std::string& name) {
  for (const StepOp& op : r.ops) {
    if (op.name == name) return op;
  }
  FAIL("no op " << name);
  return r.ops.front();
}

}  // namespace

TEST_CASE("Compute rates: the datasheet's, and a profile's fields in their place") {
  const topology::Cluster cluster = OneNode();
  const ComputeRates assumed = ComputeRates::Datasheet(cluster.gpu_spec(), pb::BF16);
  // The H100 SXM's dense BF16 peak and HBM3, no launch.
  CHECK(assumed.flops.per_second() == 989'500'000'000'000);
  CHECK(assumed.memory.per_second() == 3'350'000'000'000);
  CHECK(assumed.launch == Duration());
  CHECK(assumed.n_half == 0);

  const ComputeRates r = assumed.With(Measured().gpu());
  CHECK(r.flops.per_second() == 100'000'000'000'000);
  CHECK(r.memory.per_second() == 1'000'000'000'000'000);
  CHECK(r.launch == Duration::Nanoseconds(2000));
  CHECK(r.n_half == 64);
  // A profile without a field keeps the base's figure.
  const ComputeRates partial = assumed.With(Parse<pb::GpuProfile>("launch_overhead_ns: 500"));
  CHECK(partial.flops == assumed.flops);
  CHECK(partial.launch == Duration::Nanoseconds(500));

  // 1 TFLOP at 100 TFLOP/s: 10 ms, plus the 2 us launch. No work: no launch.
  CHECK(ComputeTime(r, 1'000'000'000'000, 0) == Duration::Nanoseconds(10'002'000));
  CHECK(ComputeTime(r, 0, 0) == Duration());
}

TEST_CASE("Expert time pays the half-rate point once per expert with tokens") {
  const ComputeRates r =
      ComputeRates::Datasheet(OneNode().gpu_spec(), pb::BF16).With(Measured().gpu());
  // Experts with 100, 0 and 28 tokens: 128 x 12,288 = 1,572,864 FLOPs; two experts have tokens,
  // each pays n_half x 12,288 = 786,432 FLOPs more: 3,145,728 FLOPs at 1e14 FLOP/s = 31,457.28
  // ps, rounded up to 31,458 ps, plus 2 us.
  CHECK(ExpertTime(r, TinyForCompute(), {100, 0, 28}) == Duration::Picoseconds(31'458 + 2'000'000));
  // Without the half-rate point: 1,572,864 FLOPs = 15,728.64 ps -> 15,729 ps.
  ComputeRates at_peak = r;
  at_peak.n_half = 0;
  CHECK(ExpertTime(at_peak, TinyForCompute(), {100, 0, 28}) == Duration::Picoseconds(15'729 + 2'000'000));
  CHECK(ExpertTime(r, TinyForCompute(), {0, 0}) == Duration());
}

TEST_CASE("A measured Result's dtype names the model it computed") {
  // moebench's CPU path works in fp32, its GPU path in bf16, or with --dtype fp8 with FP8 experts;
  // a Result from elsewhere (no dtype, or one moesim does not know) keeps the scenario's.
  pb::ModelSpec model;
  model.set_dtype(pb::BF16);
  pb::Result r;
  for (const auto& [name, want] : {std::pair<const char*, pb::DType>{"fp32", pb::FP32},
                                   {"bf16", pb::BF16},
                                   {"fp8", pb::FP8},
                                   {"", pb::BF16},
                                   {"int4", pb::BF16}}) {
    r.set_dtype(name);
    CHECK(ModelAsMeasured(model, r).dtype() == want);
  }
}

TEST_CASE("A profile's large_gemms band times the GEMMs of at least its min_flops") {
  // Band from 3,000,000 FLOPs: 50 TFLOP/s, n_half 0, launch 1 us.
  pb::HardwareProfile p = Measured();
  p.mutable_gpu()->mutable_large_gemms()->set_min_flops(3e6);
  p.mutable_gpu()->mutable_large_gemms()->set_gemm_peak_tflops(50);
  p.mutable_gpu()->mutable_large_gemms()->set_launch_overhead_ns(1000);
  const ComputeRates r = ComputeRates::Datasheet(OneNode().gpu_spec(), pb::BF16).With(p.gpu());
  // {100, 0, 28}: 1,572,864 FLOPs, below the band: as in the test above, 31,458 ps + 2 us.
  CHECK(ExpertTime(r, TinyForCompute(), {100, 0, 28}) == Duration::Picoseconds(31'458 + 2'000'000));
  // {200, 100, 0}: 300 x 12,288 = 3,686,400 FLOPs, in the band: n_half 0, so 3,686,400 FLOPs at
  // 5e13 FLOP/s = 73,728 ps, plus 1 us.
  CHECK(ExpertTime(r, TinyForCompute(), {200, 100, 0}) == Duration::Picoseconds(73'728 + 1'000'000));
  // A dense GEMM of exactly 3e6 FLOPs is in the band (60,000 ps + 1 us); one FLOP less is not
  // (2,999,999 FLOPs at 1e14 = 29,999.99 -> 30,000 ps, + 2 us).
  CHECK(ComputeTime(r, 3'000'000, 0) == Duration::Picoseconds(60'000 + 1'000'000));
  CHECK(ComputeTime(r, 2'999'999, 0) == Duration::Picoseconds(30'000 + 2'000'000));
}

TEST_CASE("Step with a profile: its GPU figures time compute, its link entry the all-to-alls") {
  const topology::Cluster cluster = OneNode();
  const pb::ModelSpec model = TinyForCompute();
  auto plan = models::ResolvePlan(Parse<pb::ParallelPlan>("ep: 4"), 8, model, nullptr);
  REQUIRE(plan.ok());
  StepConfig config;
  config.global_batch = 16;
  config.seq_len = 128;
  const pb::Routing routing =
      Parse<pb::Routing>("synthetic { distribution: ZIPF zipf_alpha: 1.2 seed: 3 }");
  auto work = StepMoeLayer(model, *plan, routing, {}, 8, config, nullptr);
  REQUIRE(work.ok());
  auto assumed = SimulateStep(cluster, model, *plan, *work, config);
  REQUIRE(assumed.ok());
  CHECK(assumed->hardware.find("per-kernel efficiencies: GEMMs 785.6 TFLOP/s, experts loop 688.0, "
                               "FlashAttention-3, memory 2979 GB/s, 4 us launch") == 0);
  CHECK(assumed->hardware.find("EP all-to-alls: network model") != std::string::npos);

  pb::HardwareProfile profile = Measured();
  *profile.add_links() = Parse<pb::LinkProfile>(
      "link_class: 'nvlink' collective: 'dispatch' latency_ns: 1000 bandwidth_gbps: 100");
  *profile.add_links() = Parse<pb::LinkProfile>(
      "link_class: 'nvlink' collective: 'combine' latency_ns: 3000 bandwidth_gbps: 50 duplex: HALF "
      "local_bandwidth_gbps: 200");
  config.hardware = profile;
  auto measured = SimulateStep(cluster, model, *plan, *work, config);
  REQUIRE(measured.ok());
  CHECK(measured->hardware ==
        "profile measured; per-kernel efficiencies: GEMMs at the profile's rate, experts loop, "
        "FlashAttention-3, memory 1000000 GB/s, 2 us launch; EP all-to-alls: profile measured: "
        "nvlink dispatch/combine");
  // The router of 128 tokens (one micro-batch of 128 tokens, tp 1): 2 x 128 x 64 x 4 = 65,536
  // FLOPs at 1e14 FLOP/s = 655.36 ps -> 656 ps, plus the 2 us launch.
  const models::OpCost router = models::RouterCost(model, 128);
  REQUIRE(router.flops == 65'536);
  CHECK(Op(*measured, "router").time == Duration::Picoseconds(656 + 2'000'000));

  // Dispatch: each rank r of the EP group takes 1 us + max(sent_r, received_r) x 128 B / 100
  // GB/s (full duplex, no local term); the op is the slowest rank's. Combine, the transpose, half
  // duplex with local copies: 3 us + (sent + received) x 128 / 50 + local x 128 / 200.
  double dispatch_ns = 0, combine_ns = 0;
  const models::TrafficMatrix& tokens = work->dispatch_tokens;
  REQUIRE(tokens.ranks() == 4);  // the EP group's ranks
  for (uint32_t r = 0; r < 4; ++r) {
    double sent = 0, received = 0, own = static_cast<double>(tokens.at(r, r));
    for (uint32_t q = 0; q < 4; ++q) {
      if (q == r) continue;
      sent += static_cast<double>(tokens.at(r, q));
      received += static_cast<double>(tokens.at(q, r));
    }
    dispatch_ns = std::max(dispatch_ns, 1000 + std::max(sent, received) * 128 / 100);
    // Combine sends what dispatch received.
    combine_ns = std::max(
        combine_ns, 3000 + (sent + received) * 128 / 50 + (sent + received + 2 * own) * 128 / 200);
  }
  CHECK(static_cast<double>(Op(*measured, "dispatch").time.picoseconds()) ==
        Approx(dispatch_ns * 1e3).margin(1));
  CHECK(static_cast<double>(Op(*measured, "combine").time.picoseconds()) ==
        Approx(combine_ns * 1e3).margin(1));

  // A profile with no entry for the group's link class: the network model times them, and the
  // report says why.
  pb::HardwareProfile other = Measured();
  *other.add_links() = Parse<pb::LinkProfile>(
      "link_class: 'infiniband' collective: 'dispatch' latency_ns: 1000 bandwidth_gbps: 100");
  config.hardware = other;
  auto fallback = SimulateStep(cluster, model, *plan, *work, config);
  REQUIRE(fallback.ok());
  CHECK(fallback->hardware.find("has no nvlink dispatch entry") != std::string::npos);
  CHECK(Op(*fallback, "dispatch").time == Op(*assumed, "dispatch").time);
  CHECK(Op(*fallback, "router").time == Op(*measured, "router").time);
}

}  // namespace moesim::sim
