#include "sim/moe_layer.h"

#include <catch2/catch.hpp>

#include "sim/scenario_loader.h"
#include "test_paths.h"

namespace moesim::sim {
namespace {

const pb::Phase& PhaseNamed(const pb::Result& r, const std::string& name, uint32_t layer = 0) {
  for (const pb::Phase& p : r.phases()) {
    if (p.name() == name && p.layer() == layer) return p;
  }
  FAIL("no phase " << name);
  return r.phases(0);
}

}  // namespace

TEST_CASE("Seed example: analytical times against hand-computed values") {
  auto s = LoadScenario(testing::SourcePath("scenarios/seed_example.pbtxt"));
  REQUIRE(s.ok());
  const pb::Result r = SimulateMoeLayers(s->cluster, s->workload);
  REQUIRE(r.phases_size() == 4);
  CHECK(r.phases(0).name() == "router");
  CHECK(r.phases(1).name() == "dispatch");
  CHECK(r.phases(2).name() == "expert");
  CHECK(r.phases(3).name() == "combine");

  // Dispatch. One token = 4096 x 2 B = 8192 B. GPU 1 receives 5 tokens from other GPUs (2 from GPU
  // 0, 1 from GPU 2, 2 from GPU 3) = 40,960 B, the most any GPU sends or receives. 40,960 B / 450e9
  // B/s = 91,022.2 ps -> 91,023 ps; plus GPU -> NVSwitch -> GPU, 2 x 500 ns: 1,091,023 ps -> 1,092
  // ns.
  const pb::Phase& dispatch = PhaseNamed(r, "dispatch");
  CHECK(dispatch.time_ns() == 1092);
  CHECK(dispatch.bound() == "link");
  CHECK(dispatch.bottleneck_link() == "node0/nvswitch -> node0/gpu1");
  // Off-diagonal tokens: 3 per row = 12 tokens x 8192 B cross links.
  CHECK(dispatch.bytes() == 98'304);
  // Every GPU sends to GPU 1, so every GPU waits for GPU 1's NVLink to drain: all 1092 ns (the
  // critical rank is the lowest of the tied ones).
  for (int rank = 0; rank < 4; ++rank) CHECK(dispatch.rank_time_ns(rank) == 1092);
  CHECK(dispatch.critical_rank() == 0);
  // Combine is the transpose: GPU 1 now sends 5 tokens; same time, on GPU 1's outgoing link.
  CHECK(PhaseNamed(r, "combine").time_ns() == 1092);
  CHECK(PhaseNamed(r, "combine").bottleneck_link() == "node0/gpu1 -> node0/nvswitch");
  // Per-link load: GPU 1's incoming NVLink carries 5 tokens = 40,960 B, which takes 91.0 ns of the
  // 1,091,023 ps phase (8.3%; the rest is route latency). Its NVLink bytes count each token's two
  // hops.
  REQUIRE(dispatch.busiest_links_size() >= 1);
  CHECK(dispatch.busiest_links(0).link() == "node0/nvswitch -> node0/gpu1");
  CHECK(dispatch.busiest_links(0).link_class() == "nvlink");
  CHECK(dispatch.busiest_links(0).bytes() == 40'960);
  CHECK(dispatch.busiest_links(0).utilization() == Approx(91'022.2 / 1'091'023).epsilon(1e-5));
  CHECK(dispatch.link_class_bytes().at("nvlink") == 2 * 98'304.0);

  // Expert FFN on GPU 1: E2 and E3 process 3 tokens each (h = 4096, f = 14336).
  // FLOPs = 2 experts x 6 x 3 x 4096 x 14336 = 2,113,929,216 -> 2.136 us at 989.5 TFLOP/s.
  // Bytes = 2 x (3hf + 3nh + 6nf) x 2 B = 2 x (176,160,768 + 36,864 + 258,048) x 2 = 705,822,720 B
  // -> 705,822,720 / 3.35e12 s = 210,693,349.3 ps -> 210,694 ns: memory-bound (weights dominate).
  const pb::Phase& expert = PhaseNamed(r, "expert");
  CHECK(expert.flops() == 2'113'929'216);
  CHECK(expert.bytes() == 705'822'720);
  CHECK(expert.time_ns() == 210'694);
  CHECK(expert.bound() == "memory");
  CHECK(expert.critical_rank() == 1);

  // Router on each GPU: 4 tokens; bytes (4 x 4096 + 4096 x 8 + 4 x 8) x 2 B = 98,368 B
  // -> 98,368 / 3.35e12 = 29,363.6 ps; FLOPs 2 x 4 x 4096 x 8 = 262,144 -> 264.9 ps.
  const pb::Phase& router = PhaseNamed(r, "router");
  CHECK(router.bytes() == 98'368);
  CHECK(router.time_ns() == 30);

  // Total: the phases in sequence, summed in picoseconds and rounded up once:
  // 29,364 + 1,091,023 + 210,693,350 + 1,091,023 = 212,904,760 ps -> 212,905 ns.
  CHECK(r.total_ns() == 212'905);
  CHECK(r.gpus() == 4);
  CHECK(r.executor() == "analytical");
}

TEST_CASE("Send matrices in the Result: dispatch and combine with rows as sources") {
  auto s = LoadScenario(testing::SourcePath("scenarios/seed_example.pbtxt"));
  REQUIRE(s.ok());
  const pb::Result r = SimulateMoeLayers(s->cluster, s->workload);
  REQUIRE(r.send_matrices_size() == 2);
  const pb::SendMatrix& d = r.send_matrices(0);
  const pb::SendMatrix& c = r.send_matrices(1);
  CHECK(d.phase() == "dispatch");
  CHECK(c.phase() == "combine");
  REQUIRE(d.tokens_size() == 4);
  std::vector<double> row0;
  for (const auto& v : d.tokens(0).values()) row0.push_back(v.number_value());
  CHECK(row0 == std::vector<double>{1, 2, 0, 1});
  CHECK(d.bytes(0).values(1).number_value() == 2 * 8192);
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      CHECK(c.tokens(i).values(j).number_value() == d.tokens(j).values(i).number_value());
    }
  }
}

TEST_CASE("Tokens that stay on their GPU cost no link time") {
  // Two GPUs, each routing all its tokens to its own experts: nothing crosses a link.
  auto s = LoadScenarioFromString(R"(
    cluster { node_preset: "dgx-h100" gpus: 2 }
    model_spec { name: "t" hidden_size: 64 expert_ffn_size: 64 num_experts: 2 top_k: 1
                 num_layers: 1 dtype: BF16 }
    plan { ep: 2 }
    workload { tokens_per_gpu: 3 }
    routing { explicit { rank { rank: 0 experts: [0, 0, 0] } rank { rank: 1 experts: [1, 1, 1] } } }
  )",
                                  "local.pbtxt");
  REQUIRE(s.ok());
  const pb::Result r = SimulateMoeLayers(s->cluster, s->workload);
  CHECK(PhaseNamed(r, "dispatch").time_ns() == 0);
  CHECK(PhaseNamed(r, "dispatch").bytes() == 0);
  CHECK(PhaseNamed(r, "combine").time_ns() == 0);
}

TEST_CASE("The default scenario: Mixtral-8x7B expert FFN is compute-bound and runs are identical") {
  auto s = LoadScenario(testing::SourcePath("scenarios/default.pbtxt"));
  REQUIRE(s.ok());
  const pb::Result a = SimulateMoeLayers(s->cluster, s->workload);
  auto again = LoadScenario(testing::SourcePath("scenarios/default.pbtxt"));
  REQUIRE(again.ok());
  const pb::Result b = SimulateMoeLayers(again->cluster, again->workload);
  CHECK(a.SerializeAsString() == b.SerializeAsString());

  // About 8 x 4096 x 2 / 8 = 8192 tokens per expert; 6 x 8192 x 4096 x 14336 = 2.886e12 FLOPs
  // -> 2.92 ms at 989.5 TFLOP/s, so the expert phase is FLOP-bound and near that (routing is
  // random: the busiest expert gets a few per cent more).
  const pb::Phase& expert = PhaseNamed(a, "expert");
  CHECK(expert.bound() == "flops");
  CHECK(expert.time_ns() > 2'917'000);
  CHECK(expert.time_ns() < 3'100'000);
  // Dispatch: about 4096 x 2 x 7/8 = 7168 tokens x 8192 B = 58.7 MB leave each GPU:
  // 130 us at 450 GB/s, plus 1 us latency.
  const pb::Phase& dispatch = PhaseNamed(a, "dispatch");
  CHECK(dispatch.time_ns() > 125'000);
  CHECK(dispatch.time_ns() < 140'000);
}

TEST_CASE("Plans the analytical model does not cover yet are refused with a located error") {
  auto s = LoadScenarioFromString(R"(cluster { node_preset: "dgx-h100" }
model: "mixtral-8x7b"
plan { ep: 4 pp: 2 }
workload { tokens_per_gpu: 8 }
routing { synthetic { distribution: UNIFORM seed: 1 } }
)",
                                  "pp.pbtxt");
  REQUIRE(s.ok());
  Status support = CheckMoeLayerSupport(s->workload, s->file);
  REQUIRE_FALSE(support.ok());
  CHECK_THAT(support.error().message(), Catch::StartsWith("pp.pbtxt:3:14: plan.pp = 2: "));
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE(
    "Flow fidelity: the seed example's all-to-alls drain GPU 1's link as the analytical model "
    "says") {
  auto s = LoadScenario(testing::SourcePath("scenarios/seed_example.pbtxt"));
  REQUIRE(s.ok());
  const pb::Result flow = SimulateMoeLayers(s->cluster, s->workload, Fidelity::kFlow);
  const pb::Result analytical = SimulateMoeLayers(s->cluster, s->workload, Fidelity::kAnalytical);
  CHECK(flow.executor() == "flow");
  // GPU 1's NVLink from the NVSwitch carries 40,960 B: the flows into it share it (max-min) and the
  // link never idles, so the last one is through after 40,960 B / 450 GB/s = 91,022.2 ps, then 1 us
  // of route latency: 1,092 ns, as the analytical model says.
  for (int p : {1, 3}) {
    CHECK(flow.phases(p).time_ns() == 1092);
    CHECK(flow.phases(p).time_ns() == analytical.phases(p).time_ns());
  }
  CHECK(flow.phases(1).bottleneck_link() == "node0/nvswitch -> node0/gpu1");
  CHECK(flow.total_ns() == analytical.total_ns());
}

TEST_CASE("Flow fidelity across nodes: never faster than the analytical busiest-link bound") {
  auto s = LoadScenario(testing::SourcePath("scenarios/deepseek-v3-h800-ep32.pbtxt"));
  REQUIRE(s.ok());
  const pb::Result flow = SimulateMoeLayers(s->cluster, s->workload, Fidelity::kFlow);
  const pb::Result analytical = SimulateMoeLayers(s->cluster, s->workload, Fidelity::kAnalytical);
  for (int p : {1, 3}) {
    INFO(flow.phases(p).name());
    CHECK(flow.phases(p).time_ns() >= analytical.phases(p).time_ns());
  }
}

}  // namespace moesim::sim
