#include "sim/moe/moe_layer.h"

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

#include "sim/moe/scenario_loader.h"
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
  // 0, 1 from GPU 2, 2 from GPU 3) = 40,960 B, the most any GPU sends or receives. An H100's NVLink
  // achieves 18 x 20.6 = 370.8 GB/s (NCCL's SM90 figure, topology/achieved.h), not 450:
  // 40,960 B / 370.8e9 B/s = 110,463.9 ps -> 110,464 ps; plus GPU -> NVSwitch -> GPU, 2 x 500 ns:
  // 1,110,464 ps -> 1,111 ns.
  const pb::Phase& dispatch = PhaseNamed(r, "dispatch");
  CHECK(dispatch.time_ns() == 1111);
  CHECK(dispatch.bound() == "link");
  CHECK(dispatch.bottleneck_link() == "node0/nvswitch -> node0/gpu1");
  // Off-diagonal tokens: 3 per row = 12 tokens x 8192 B cross links.
  CHECK(dispatch.bytes() == 98'304);
  // Every GPU sends to GPU 1, so every GPU waits for GPU 1's NVLink to drain: all 1111 ns (the
  // critical rank is the lowest of the tied ones).
  for (int rank = 0; rank < 4; ++rank) CHECK(dispatch.rank_time_ns(rank) == 1111);
  CHECK(dispatch.critical_rank() == 0);
  // Combine is the transpose: GPU 1 now sends 5 tokens; same time, on GPU 1's outgoing link.
  CHECK(PhaseNamed(r, "combine").time_ns() == 1111);
  CHECK(PhaseNamed(r, "combine").bottleneck_link() == "node0/gpu1 -> node0/nvswitch");
  // Per-link load: GPU 1's incoming NVLink carries 5 tokens = 40,960 B, which takes 110.5 ns of
  // the 1,110,464 ps phase (9.9%; the rest is route latency). Its NVLink bytes count each token's
  // two hops.
  REQUIRE(dispatch.busiest_links_size() >= 1);
  CHECK(dispatch.busiest_links(0).link() == "node0/nvswitch -> node0/gpu1");
  CHECK(dispatch.busiest_links(0).link_class() == "nvlink");
  CHECK(dispatch.busiest_links(0).bytes() == 40'960);
  CHECK(dispatch.busiest_links(0).utilization() == Approx(110'463.9 / 1'110'464).epsilon(1e-5));
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
  // 29,364 + 1,110,464 + 210,693,350 + 1,110,464 = 212,943,642 ps -> 212,944 ns.
  CHECK(r.total_ns() == 212'944);
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
  // 158 us at the 370.8 GB/s an H100's NVLink achieves (topology/achieved.h), plus 1 us latency;
  // random routing puts a few per cent more on the busiest GPU.
  const pb::Phase& dispatch = PhaseNamed(a, "dispatch");
  CHECK(dispatch.time_ns() > 155'000);
  CHECK(dispatch.time_ns() < 170'000);
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
  // link never idles, so the last one is through after 40,960 B / 370.8 GB/s = 110,463.9 ps, then
  // 1 us of route latency: 1,111 ns, as the analytical model says.
  for (int p : {1, 3}) {
    CHECK(flow.phases(p).time_ns() == 1111);
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

namespace moesim::sim {
namespace {

// A scenario on 2 nodes x 4 GPUs (tests/fixtures/two_nodes_4gpu.pbtxt: NVLink 400 GB/s, one
// 50 GB/s NIC per GPU, line rates), a toy model of hidden 4096 in BF16 with `experts` experts
// (top-2), EP 8, one token per GPU: `workload` fields after tokens_per_gpu, `ranks` the explicit
// routing's rank entries. The workload block is line 17.
std::string TwoNodeScenario(uint32_t experts, const std::string& workload,
                            const std::string& ranks, uint32_t tokens = 1) {
  return R"(cluster {
  node {
    name: "test-4gpu" gpu: "h100-sxm" gpus: 4
    nvlink { bandwidth_gbps: 400 }
    pcie { switches: 4 cpus: 1 }
    nics { count: 4 gbit_per_s: 400 }
  }
  nodes: 2
  fabric { single_switch {} }
  line_rate: true  # round numbers: the relay's mechanics, not topology/achieved.h
}
model_spec {
  name: "toy" source: "test" hidden_size: 4096 expert_ffn_size: 14336
  num_experts: )" +
         std::to_string(experts) + R"( top_k: 2 num_layers: 1 dtype: BF16
}
plan { ep: 8 }
workload { tokens_per_gpu: )" +
         std::to_string(tokens) + " " + workload + R"( }
routing {
  explicit {
)" + ranks +
         R"(  }
}
)";
}

// The explicit routing's entries: rank r's one token goes to experts[r].
std::string OneTokenEach(const std::vector<std::pair<uint32_t, uint32_t>>& experts) {
  std::string text;
  for (uint32_t r = 0; r < experts.size(); ++r) {
    text += "    rank { rank: " + std::to_string(r) + " experts: [" +
            std::to_string(experts[r].first) + ", " + std::to_string(experts[r].second) + "] }\n";
  }
  return text;
}

// 8 experts, one per GPU (expert e on GPU e). GPU 0's token goes to experts 5 and 6, both on node
// 1; every other token to its own GPU's expert and a neighbour's in its node. One token = 4096 x
// 2 B = 8192 B. `extra`: more workload fields.
std::string DedupScenario(const std::string& algo, const std::string& extra = "") {
  return TwoNodeScenario(
      8, "alltoall_algo: \"" + algo + "\" " + extra,
      OneTokenEach({{5, 6}, {1, 2}, {2, 3}, {3, 0}, {4, 5}, {5, 6}, {6, 7}, {7, 4}}));
}

}  // namespace

TEST_CASE("Hierarchical dispatch: a token for two GPUs of a remote node crosses the network once") {
  auto h = LoadScenarioFromString(DedupScenario("hierarchical"), "hier.pbtxt");
  auto d = LoadScenarioFromString(DedupScenario("direct"), "direct.pbtxt");
  REQUIRE(h.ok());
  REQUIRE(d.ok());
  CHECK(h->workload.alltoall_algo == models::AllToAllAlgo::kHierarchical);
  // Distinct tokens per (rank, node): GPU 0's one token goes to node 1 once (2 copies); GPU 1's
  // token stays in node 0.
  const models::LayerWork& layer = h->workload.layers[0];
  CHECK(layer.dispatch_tokens.at(0, 5) + layer.dispatch_tokens.at(0, 6) == 2);
  CHECK(layer.node_tokens.at(0, 1) == 1);
  CHECK(layer.node_tokens.at(0, 0) == 0);
  CHECK(layer.node_tokens.at(1, 0) == 1);

  const pb::Result hier = SimulateMoeLayers(h->cluster, h->workload);
  const pb::Result direct = SimulateMoeLayers(d->cluster, d->workload);
  // InfiniBand bytes (a crossing counts on both NIC-to-switch links): direct sends both copies,
  // 2 x 2 x 8192 = 32,768 B; hierarchical the token once, 16,384 B, and GPU 4 copies it to GPUs 5
  // and 6 over NVLink. Combine: GPUs 5 and 6 send to GPU 4, which reduces and sends back once.
  for (const char* phase : {"dispatch", "combine"}) {
    INFO(phase);
    CHECK(PhaseNamed(direct, phase).link_class_bytes().at("infiniband") == 32'768);
    CHECK(PhaseNamed(hier, phase).link_class_bytes().at("infiniband") == 16'384);
  }
  // Bytes GPUs send: direct 9 copies leave their GPU (2 from GPU 0, 1 from each other GPU);
  // hierarchical 7 in-node copies + 1 crossing + 2 forwards = 10 x 8192.
  CHECK(PhaseNamed(direct, "dispatch").bytes() == 9 * 8192);
  CHECK(PhaseNamed(hier, "dispatch").bytes() == 10 * 8192);

  // Time, analytical. Direct: GPU 0's NIC carries 2 x 8192 B: 16,384 / 50e9 = 327,680 ps, plus the
  // 2,000 ns route (PCIe, NIC, switch, NIC, PCIe): 2,327,680 ps -> 2,328 ns.
  // Hierarchical: GPU 4 waits for the crossing (NIC link 8192 / 50e9 = 163,840 ps, the busiest of
  // its links) and its latency chain is the crossing's route then its NVLink forward: 2,000 +
  // 1,000 ns. 3,163,840 ps -> 3,164 ns: one token is latency-bound, and the relay adds a hop.
  const topology::Router& router = h->cluster.router();
  REQUIRE(router.Latency(0, 4) == Duration::Picoseconds(2'000'000));
  REQUIRE(router.Latency(4, 5) == Duration::Picoseconds(1'000'000));
  CHECK(PhaseNamed(direct, "dispatch").time_ns() == 2328);
  CHECK(PhaseNamed(hier, "dispatch").time_ns() == 3164);
  CHECK(PhaseNamed(hier, "dispatch").critical_rank() == 4);
  // Combine reversed: the gather 5 -> 4, 6 -> 4 (1,000 ns) then 4 -> 0 (163,840 ps + 2,000 ns);
  // GPU 0 and GPU 4 both see that chain: 3,164 ns.
  CHECK(PhaseNamed(hier, "combine").time_ns() == 3164);

  // The flow model runs the same schedules and is never below the analytical bound; the same
  // input gives the same result.
  const pb::Result flow = SimulateMoeLayers(h->cluster, h->workload, Fidelity::kFlow);
  const pb::Result again = SimulateMoeLayers(h->cluster, h->workload, Fidelity::kFlow);
  CHECK(flow.executor() == "flow");
  for (const char* phase : {"dispatch", "combine"}) {
    INFO(phase);
    CHECK(PhaseNamed(flow, phase).time_ns() >= PhaseNamed(hier, phase).time_ns());
    CHECK(PhaseNamed(flow, phase).link_class_bytes().at("infiniband") == 16'384);
    CHECK(PhaseNamed(again, phase).time_ns() == PhaseNamed(flow, phase).time_ns());
  }
}

TEST_CASE("Hierarchical dispatch, bandwidth-bound: fewer bytes cross when tokens repeat") {
  // DeepSeek-V3 on 32 H800 (4 nodes): top-8 of 256 experts, so most tokens have several experts
  // on one remote node. The deduplicated crossing carries fewer bytes than the copies.
  auto s = LoadScenario(testing::SourcePath("scenarios/deepseek-v3-h800-ep32.pbtxt"));
  REQUIRE(s.ok());
  const pb::Result direct = SimulateMoeLayers(s->cluster, s->workload);
  s->workload.alltoall_algo = models::AllToAllAlgo::kHierarchical;
  const pb::Result hier = SimulateMoeLayers(s->cluster, s->workload);
  const pb::Result flow = SimulateMoeLayers(s->cluster, s->workload, Fidelity::kFlow);
  REQUIRE(hier.phases_size() == direct.phases_size());
  for (const char* phase : {"dispatch", "combine"}) {
    INFO(phase);
    const auto& h = PhaseNamed(hier, phase).link_class_bytes();
    const auto& d = PhaseNamed(direct, phase).link_class_bytes();
    CHECK(h.at("infiniband") < d.at("infiniband"));
    CHECK(PhaseNamed(flow, phase).time_ns() >= PhaseNamed(hier, phase).time_ns());
  }
  // deepep_normal: the same analytical times; its flow forwards 80-token chunks as they arrive,
  // between the analytical bound and the whole-message flow.
  s->workload.alltoall_algo = models::AllToAllAlgo::kDeepEpNormal;
  const pb::Result normal = SimulateMoeLayers(s->cluster, s->workload);
  const pb::Result normal_flow = SimulateMoeLayers(s->cluster, s->workload, Fidelity::kFlow);
  for (const char* phase : {"dispatch", "combine"}) {
    INFO(phase);
    CHECK(PhaseNamed(normal, phase).time_ns() == PhaseNamed(hier, phase).time_ns());
    CHECK(PhaseNamed(normal_flow, phase).time_ns() >= PhaseNamed(normal, phase).time_ns());
    CHECK(PhaseNamed(normal_flow, phase).time_ns() < PhaseNamed(flow, phase).time_ns());
  }
}

TEST_CASE("The all-to-all algorithm of a scenario is checked, with valid values named") {
  std::string text = DedupScenario("ring");
  auto bad = LoadScenarioFromString(text, "algo.pbtxt");
  REQUIRE_FALSE(bad.ok());
  // Line 17 is the workload block; its field starts at column 30.
  CHECK_THAT(bad.error().message(),
             Catch::Equals("algo.pbtxt:17:30: workload.alltoall_algo = ring: unknown all-to-all "
                           "algorithm; valid: direct, per_rank, hierarchical, deepep_normal, "
                           "deepep_low_latency"));
  // A chunk only where the relay chunks, and never of no tokens.
  auto hier = LoadScenarioFromString(DedupScenario("hierarchical", "alltoall_chunk_tokens: 4"),
                                     "chunk.pbtxt");
  REQUIRE_FALSE(hier.ok());
  CHECK_THAT(hier.error().message(),
             Catch::Contains("workload.alltoall_chunk_tokens = 4: only deepep_normal forwards in "
                             "chunks (the algorithm is hierarchical)"));
  auto zero = LoadScenarioFromString(DedupScenario("deepep_normal", "alltoall_chunk_tokens: 0"),
                                     "chunk.pbtxt");
  REQUIRE_FALSE(zero.ok());
  CHECK_THAT(zero.error().message(),
             Catch::Contains("workload.alltoall_chunk_tokens = 0: out of range; valid: 1 to "
                             "16777216"));
}

namespace {

// 16 experts, two per GPU (experts 2g and 2g + 1 on GPU g). GPU 0's token goes to experts 10 and
// 11, both on GPU 5 (node 1); GPU 1's to experts 4 and 5, both on GPU 2 (its own node); every
// other GPU's token to its own two experts (kept). `extra`: more workload fields.
std::string PerRankScenario(const std::string& algo, const std::string& extra = "") {
  return TwoNodeScenario(
      16, "alltoall_algo: \"" + algo + "\" " + extra,
      OneTokenEach({{10, 11}, {4, 5}, {4, 5}, {6, 7}, {8, 9}, {10, 11}, {12, 13}, {14, 15}}));
}

}  // namespace

TEST_CASE("Per-rank dispatch: a token for two experts on one GPU crosses once") {
  auto p = LoadScenarioFromString(PerRankScenario("per_rank"), "per_rank.pbtxt");
  auto d = LoadScenarioFromString(PerRankScenario("direct"), "direct.pbtxt");
  REQUIRE(p.ok());
  REQUIRE(d.ok());
  CHECK(p->workload.alltoall_algo == models::AllToAllAlgo::kPerRank);
  // GPU 0 sends 2 copies to GPU 5 but 1 distinct token; GPU 1 likewise to GPU 2.
  const models::LayerWork& layer = p->workload.layers[0];
  CHECK(layer.dispatch_tokens.at(0, 5) == 2);
  CHECK(layer.rank_tokens.at(0, 5) == 1);
  CHECK(layer.dispatch_tokens.at(1, 2) == 2);
  CHECK(layer.rank_tokens.at(1, 2) == 1);
  CHECK(layer.rank_tokens.at(2, 2) == 1);  // kept: on the diagonal, crossing nothing

  const pb::Result per_rank = SimulateMoeLayers(p->cluster, p->workload);
  const pb::Result direct = SimulateMoeLayers(d->cluster, d->workload);
  for (const char* phase : {"dispatch", "combine"}) {
    INFO(phase);
    // Bytes leaving their GPU: direct 4 copies (2 from GPU 0, 2 from GPU 1) x 8192 = 32,768 B;
    // per_rank 2 tokens, 16,384 B. Combine sends the same back (GPU 5 reduces its two experts'
    // outputs for GPU 0's token and returns one row).
    CHECK(PhaseNamed(direct, phase).bytes() == 32'768);
    CHECK(PhaseNamed(per_rank, phase).bytes() == 16'384);
    // InfiniBand (a crossing counts on both NIC-to-switch links): direct 2 x 16,384 = 32,768 B,
    // per_rank 2 x 8192 = 16,384 B.
    CHECK(PhaseNamed(direct, phase).link_class_bytes().at("infiniband") == 32'768);
    CHECK(PhaseNamed(per_rank, phase).link_class_bytes().at("infiniband") == 16'384);
    // Time, analytical: GPU 0 and GPU 5 wait for GPU 0's NIC link (50 GB/s, the slowest on the
    // route) plus the 2,000 ns route. Direct: 16,384 B / 50e9 = 327,680 ps + 2,000,000 ps =
    // 2,327,680 ps -> 2,328 ns. Per rank: 8192 B / 50e9 = 163,840 ps + 2,000,000 ps = 2,163,840 ps
    // -> 2,164 ns. (GPU 1 -> GPU 2 over NVLink: 16,384 B / 400e9 = 40,960 ps + 1,000 ns direct,
    // 20,480 ps + 1,000 ns per rank: 1,041 and 1,021 ns, not the slowest.)
    CHECK(PhaseNamed(direct, phase).time_ns() == 2328);
    CHECK(PhaseNamed(per_rank, phase).time_ns() == 2164);
  }
  // The rest of the layer is the same: the experts compute every copy either way. The layer
  // saves 2 x (2,327,680 - 2,163,840) = 327,680 ps: 327 ns between the two totals, each the sum
  // of its phases' picoseconds rounded up to whole ns.
  CHECK(PhaseNamed(per_rank, "expert").time_ns() == PhaseNamed(direct, "expert").time_ns());
  CHECK(direct.total_ns() - per_rank.total_ns() == 327);
  // The Result's send matrices are what crossed: 1 token of 8192 B from GPU 0 to GPU 5, and back.
  REQUIRE(per_rank.send_matrices_size() == 2);
  const pb::SendMatrix& sent = per_rank.send_matrices(0);
  CHECK(sent.phase() == "dispatch");
  CHECK(sent.tokens(0).values(5).number_value() == 1);
  CHECK(sent.bytes(0).values(5).number_value() == 8192);
  CHECK(per_rank.send_matrices(1).bytes(5).values(0).number_value() == 8192);

  // The flow model runs the same exchange: one flow per pair, alone on GPU 0's NIC, so it drains
  // at 50 GB/s as the closed form says; never below it.
  const pb::Result flow = SimulateMoeLayers(p->cluster, p->workload, Fidelity::kFlow);
  for (const char* phase : {"dispatch", "combine"}) {
    INFO(phase);
    CHECK(PhaseNamed(flow, phase).time_ns() >= PhaseNamed(per_rank, phase).time_ns());
    CHECK(PhaseNamed(flow, phase).link_class_bytes().at("infiniband") == 16'384);
  }
}

TEST_CASE("FP8 dispatch and BF16 combine: each direction priced at its own bytes per token") {
  auto f = LoadScenarioFromString(
      PerRankScenario("per_rank", "dispatch_dtype: \"fp8\" combine_dtype: \"bf16\""), "fp8.pbtxt");
  REQUIRE(f.ok());
  CHECK(f->workload.dispatch_dtype == models::WireDtype::kFp8);
  CHECK(f->workload.combine_dtype == models::WireDtype::kBf16);
  const pb::Result r = SimulateMoeLayers(f->cluster, f->workload);
  // Dispatch in FP8: 4096 x 1 B + 4096 / 128 = 32 fp32 scales x 4 B = 4,224 B a token. 2 tokens
  // cross: 8,448 B, on InfiniBand 2 x 4,224 = 8,448 B. GPU 0's NIC: 4,224 / 50e9 = 84,480 ps +
  // 2,000,000 ps = 2,084,480 ps -> 2,085 ns.
  const pb::Phase& dispatch = PhaseNamed(r, "dispatch");
  CHECK(dispatch.bytes() == 8'448);
  CHECK(dispatch.link_class_bytes().at("infiniband") == 8'448);
  CHECK(dispatch.time_ns() == 2085);
  // Combine in BF16, as without the fields: 8,192 B a token, 16,384 B, 2,164 ns.
  const pb::Phase& combine = PhaseNamed(r, "combine");
  CHECK(combine.bytes() == 16'384);
  CHECK(combine.link_class_bytes().at("infiniband") == 16'384);
  CHECK(combine.time_ns() == 2164);
  // The send matrices carry each direction's bytes.
  CHECK(r.send_matrices(0).bytes(0).values(5).number_value() == 4224);
  CHECK(r.send_matrices(1).bytes(5).values(0).number_value() == 8192);

  SECTION("direct: both copies in FP8") {
    // 2 x 4,224 = 8,448 B on GPU 0's NIC: 168,960 ps + 2,000,000 ps = 2,168,960 ps -> 2,169 ns;
    // 4 copies leave their GPU: 16,896 B.
    auto d = LoadScenarioFromString(PerRankScenario("direct", "dispatch_dtype: \"fp8\""),
                                    "direct-fp8.pbtxt");
    REQUIRE(d.ok());
    CHECK_FALSE(d->workload.combine_dtype.has_value());
    const pb::Result dr = SimulateMoeLayers(d->cluster, d->workload);
    CHECK(PhaseNamed(dr, "dispatch").time_ns() == 2169);
    CHECK(PhaseNamed(dr, "dispatch").bytes() == 16'896);
    CHECK(PhaseNamed(dr, "combine").time_ns() == 2328);  // the model's BF16, as before
  }

  SECTION("hierarchical: the relay's crossing and forwards in FP8, combine in BF16") {
    // DedupScenario's hierarchical layer: GPU 0's token crosses once to GPU 4 (4,224 B on its
    // NIC: 84,480 ps), then NVLink to GPUs 5 and 6; GPU 4 waits for the crossing plus the chain
    // 2,000 + 1,000 ns: 3,084,480 ps -> 3,085 ns. Combine in BF16 as without the fields: 3,164 ns.
    auto h = LoadScenarioFromString(DedupScenario("hierarchical", "dispatch_dtype: \"fp8\""),
                                    "hier-fp8.pbtxt");
    REQUIRE(h.ok());
    const pb::Result hr = SimulateMoeLayers(h->cluster, h->workload);
    CHECK(PhaseNamed(hr, "dispatch").time_ns() == 3085);
    CHECK(PhaseNamed(hr, "dispatch").link_class_bytes().at("infiniband") == 2 * 4224);
    CHECK(PhaseNamed(hr, "combine").time_ns() == 3164);
    CHECK(PhaseNamed(hr, "combine").link_class_bytes().at("infiniband") == 16'384);
  }
}

TEST_CASE("Dispatch and combine dtypes of a scenario are checked, with valid values named") {
  auto bad =
      LoadScenarioFromString(PerRankScenario("direct", "combine_dtype: \"fp4\""), "dtype.pbtxt");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error().message(), Catch::StartsWith("dtype.pbtxt:17:"));
  CHECK_THAT(bad.error().message(),
             Catch::EndsWith("workload.combine_dtype = fp4: unknown dtype for the all-to-all; "
                             "valid: bf16, fp8 (absent: the model's dtype)"));
}

}  // namespace moesim::sim

namespace moesim::sim {
namespace {

// 16 experts, two per GPU (experts 2g and 2g + 1 on GPU g), 4 tokens per GPU. GPU 0's four tokens
// each go to experts 10 (GPU 5) and 12 (GPU 6), both on node 1; every other GPU's tokens to its
// own two experts (kept). A token is 4096 x 2 B = 8192 B.
std::string ChunkScenario(const std::string& algo, const std::string& extra = "") {
  std::string ranks;
  for (uint32_t r = 0; r < 8; ++r) {
    const std::string pair = r == 0 ? "10, 12" : std::to_string(2 * r) + ", " +
                                                     std::to_string(2 * r + 1);
    ranks += "    rank { rank: " + std::to_string(r) + " experts: [" + pair + ", " + pair + ", " +
             pair + ", " + pair + "] }\n";
  }
  return TwoNodeScenario(16, "alltoall_algo: \"" + algo + "\" " + extra, ranks, /*tokens=*/4);
}

}  // namespace

TEST_CASE("DeepEP normal dispatch: deduplicated per node, the relay forwarding chunk by chunk") {
  auto n = LoadScenarioFromString(ChunkScenario("deepep_normal", "alltoall_chunk_tokens: 1"),
                                  "normal.pbtxt");
  auto h = LoadScenarioFromString(ChunkScenario("hierarchical"), "hier.pbtxt");
  REQUIRE(n.ok());
  REQUIRE(h.ok());
  CHECK(n->workload.alltoall_algo == models::AllToAllAlgo::kDeepEpNormal);
  CHECK(n->workload.chunk_tokens == 1);
  CHECK(h->workload.chunk_tokens == models::kDeepEpChunkTokens);  // 80, DeepEP's 10 x 8
  // GPU 0's 4 tokens cross to node 1 once each (node_tokens 4), though 8 copies go there.
  const models::LayerWork& layer = n->workload.layers[0];
  CHECK(layer.node_tokens.at(0, 1) == 4);
  CHECK(layer.dispatch_tokens.at(0, 5) + layer.dispatch_tokens.at(0, 6) == 8);

  // Analytical, the same for both (every transfer on its links at once): GPU 4's busiest link is
  // its NIC's 4 x 8192 = 32,768 B: 655,360 ps at 50 GB/s; its chain of routes 2,000 + 1,000 ns.
  // 3,655,360 ps -> 3,656 ns. InfiniBand carries the 4 tokens once (counted on both NIC links).
  const pb::Result na = SimulateMoeLayers(n->cluster, n->workload);
  const pb::Result ha = SimulateMoeLayers(h->cluster, h->workload);
  for (const char* phase : {"dispatch", "combine"}) {
    INFO(phase);
    CHECK(PhaseNamed(na, phase).time_ns() == 3656);
    CHECK(PhaseNamed(ha, phase).time_ns() == 3656);
    CHECK(PhaseNamed(na, phase).link_class_bytes().at("infiniband") == 2 * 32'768);
  }

  // Flow. deepep_normal in chunks of 1 token: GPU 0's NIC sends the 4 chunks back to back, 8192 B
  // / 50e9 = 163,840 ps each, the last through at 655,360 ps and at GPU 4 at 2,655,360 ps. GPU 4
  // forwards each chunk as it arrives: 8192 B to GPU 5 and 8192 B to GPU 6 sharing its 400 GB/s
  // NVLink, 40,960 ps, done long before the next chunk. The last: 2,655,360 + 40,960 + 1,000,000
  // = 3,696,320 ps -> 3,697 ns.
  // hierarchical (whole messages): the same crossing, then both 32,768 B forwards sharing the
  // NVLink: 163,840 ps: 2,655,360 + 163,840 + 1,000,000 = 3,819,200 ps -> 3,820 ns.
  // Combine backwards: GPUs 5 and 6 send chunk 3 first (40,960 ps, arriving at 1,040,960 ps), GPU
  // 4 sends each chunk across as it has it, back to back from there: 1,040,960 + 4 x 163,840 +
  // 2,000,000 = 3,696,320 ps again; whole messages: 163,840 + 1,000,000 + 655,360 + 2,000,000 =
  // 3,819,200 ps. The flows may end up to a picosecond late each: within the nanosecond.
  const pb::Result nf = SimulateMoeLayers(n->cluster, n->workload, Fidelity::kFlow);
  const pb::Result hf = SimulateMoeLayers(h->cluster, h->workload, Fidelity::kFlow);
  for (const char* phase : {"dispatch", "combine"}) {
    INFO(phase);
    CHECK(PhaseNamed(nf, phase).time_ns() == 3697);
    CHECK(PhaseNamed(hf, phase).time_ns() == 3820);
    CHECK(PhaseNamed(nf, phase).time_ns() >= PhaseNamed(na, phase).time_ns());
  }
  // What the GPUs sent: 4 chunks of 8192 B across, 8 forwards of 8192 B: 12 x 8192.
  CHECK(PhaseNamed(nf, "dispatch").bytes() == 12 * 8192);
  CHECK(PhaseNamed(hf, "dispatch").bytes() == 12 * 8192);

  // DeepEP's default chunk, 80 tokens, holds all 4 tokens: one chunk, whole messages, 3,820 ns.
  auto d = LoadScenarioFromString(ChunkScenario("deepep_normal"), "default.pbtxt");
  REQUIRE(d.ok());
  const pb::Result df = SimulateMoeLayers(d->cluster, d->workload, Fidelity::kFlow);
  CHECK(PhaseNamed(df, "dispatch").time_ns() == 3820);
}

TEST_CASE("DeepEP normal on one node runs its intranode kernels: once per GPU") {
  // 4 GPUs of one node (plan ep 4 on the 2-node cluster uses node 0 only). PerRankScenario's
  // routing on 16 experts would put experts on 8 GPUs; here 8 experts, two per GPU: GPU 0's token
  // goes to experts 2 and 3, both on GPU 1: one copy crosses under per_rank, two under direct.
  std::string text = TwoNodeScenario(
      8, "alltoall_algo: \"deepep_normal\"",
      "    rank { rank: 0 experts: [2, 3] }\n    rank { rank: 1 experts: [2, 3] }\n"
      "    rank { rank: 2 experts: [4, 5] }\n    rank { rank: 3 experts: [6, 7] }\n");
  text.replace(text.find("plan { ep: 8 }"), 14, "plan { ep: 4 }");
  text.replace(text.find("nodes: 2"), 8, "nodes: 1");
  auto one = LoadScenarioFromString(text, "one-node.pbtxt");
  REQUIRE(one.ok());
  const pb::Result r = SimulateMoeLayers(one->cluster, one->workload);
  // One token of 8192 B crosses GPU 0's NVLink (400 GB/s): 20,480 ps + the 1 us NVLink route ->
  // 1,021 ns (direct would send 2 copies: 40,960 ps -> 1,041 ns).
  CHECK(PhaseNamed(r, "dispatch").bytes() == 8192);
  CHECK(PhaseNamed(r, "dispatch").time_ns() == 1021);
}

TEST_CASE("DeepEP low-latency dispatch: a message per token and expert, no relay") {
  auto l = LoadScenarioFromString(ChunkScenario("deepep_low_latency"), "ll.pbtxt");
  REQUIRE(l.ok());
  CHECK(l->workload.alltoall_algo == models::AllToAllAlgo::kDeepEpLowLatency);
  const pb::Result r = SimulateMoeLayers(l->cluster, l->workload);
  // Dispatch: no deduplication, 8 messages from GPU 0 (4 tokens x experts 10 and 12), each the
  // token and DeepEP's 16 B header: 8 x 8,208 = 65,664 B through GPU 0's NIC: 1,313,280 ps at 50
  // GB/s, + the 2 us route: 3,313,280 ps -> 3,314 ns. Its NIC's messages: to each GPU of node 1
  // one count per expert (2 each, 8) plus the 8 tokens: 16, 16 / 330e6 s = 48,485 ps + 2 us: well
  // below. InfiniBand: 65,664 B, counted on both NIC links.
  const pb::Phase& dispatch = PhaseNamed(r, "dispatch");
  CHECK(dispatch.time_ns() == 3314);
  CHECK(dispatch.bytes() == 8 * 8208);
  CHECK(dispatch.link_class_bytes().at("infiniband") == 2 * 8 * 8208);
  // Combine: the 8 outputs back, 8,192 B each (no header): 65,536 B, 1,310,720 ps + 2 us.
  const pb::Phase& combine = PhaseNamed(r, "combine");
  CHECK(combine.time_ns() == 3311);
  CHECK(combine.bytes() == 8 * 8192);
  // deepep_normal sends 4 tokens across and forwards; low-latency 8 messages across: twice the
  // InfiniBand bytes, and no NVLink forward.
  auto n = LoadScenarioFromString(ChunkScenario("deepep_normal"), "normal.pbtxt");
  REQUIRE(n.ok());
  const pb::Result nr = SimulateMoeLayers(n->cluster, n->workload);
  CHECK(PhaseNamed(nr, "dispatch").link_class_bytes().at("infiniband") == 2 * 4 * 8192);
  // The flow model: GPU 0's 8 messages to GPUs 5 and 6 share its NIC, the same 3,314 ns.
  const pb::Result f = SimulateMoeLayers(l->cluster, l->workload, Fidelity::kFlow);
  CHECK(PhaseNamed(f, "dispatch").time_ns() == 3314);
}

TEST_CASE("The kernels' own rates bind a workload's all-to-alls on top of the links") {
  // ChunkScenario: GPU 0's 4 tokens each reach node 1 only; every other GPU's 4 tokens stay on it.
  // A token is 8192 B. 0.001 GB/s = 1e6 B/s, so a kernel floor of B bytes is B us.
  // RDMA (test_internode.py's count): a GPU's tokens x the nodes each reaches, its own included:
  // 4 on every GPU (GPU 0: 4 x node 1; the others: 4 x their own node), 32,768 B: 32,768 us at
  // 0.001 GB/s in dispatch, 16,384 us at 0.002 in combine; far above the links' 3,656 ns.
  auto n = LoadScenarioFromString(
      ChunkScenario("deepep_normal",
                    "dispatch_rdma_kernel_gbps: 0.001 combine_rdma_kernel_gbps: 0.002"),
      "rdma.pbtxt");
  REQUIRE(n.ok());
  CHECK(*n->workload.dispatch_rdma_kernel_gbps == 0.001);
  const pb::Result r = SimulateMoeLayers(n->cluster, n->workload);
  CHECK(PhaseNamed(r, "dispatch").time_ns() == 32'768'000);
  CHECK(PhaseNamed(r, "dispatch").bound() == "kernel");
  // GPU 1's tokens never leave node 0, yet its own node counts: the same floor.
  CHECK(PhaseNamed(r, "dispatch").rank_time_ns(1) == 32'768'000);
  CHECK(PhaseNamed(r, "combine").time_ns() == 16'384'000);
  // Each direction at its own token: FP8 dispatch is 4096 + 32 scales x 4 B = 4,224 B a token,
  // 4 x 4,224 = 16,896 B: 16,896 us at 0.001 GB/s; combine stays BF16, 32,768 B at 0.002: 16,384
  // us.
  auto fp8 = LoadScenarioFromString(
      ChunkScenario("deepep_normal",
                    "dispatch_dtype: \"fp8\" dispatch_rdma_kernel_gbps: 0.001 "
                    "combine_rdma_kernel_gbps: 0.002"),
      "fp8.pbtxt");
  REQUIRE(fp8.ok());
  const pb::Result f8 = SimulateMoeLayers(fp8->cluster, fp8->workload);
  CHECK(PhaseNamed(f8, "dispatch").time_ns() == 16'896'000);
  CHECK(PhaseNamed(f8, "combine").time_ns() == 16'384'000);
  // Above the links' time only: at 1e6 GB/s the floor is 0.03 ns and the links' 3,656 ns stand.
  auto fast = LoadScenarioFromString(
      ChunkScenario("deepep_normal", "dispatch_rdma_kernel_gbps: 1000000"), "fast.pbtxt");
  REQUIRE(fast.ok());
  const pb::Result f = SimulateMoeLayers(fast->cluster, fast->workload);
  CHECK(PhaseNamed(f, "dispatch").time_ns() == 3656);
  CHECK(PhaseNamed(f, "dispatch").bound() == "link");

  // The intranode kernels' rate (test_intranode.py's count): the copies a GPU receives, its own
  // included. GPUs 5 and 6 keep their own 4 tokens x 2 experts (8) and get 4 of GPU 0's: 12 x
  // 8192 = 98,304 B: 98,304 us at 0.001 GB/s. Combine has no rate: the links' 3,311 ns (GPU 0's
  // 8 copies back, 65,536 B over its NIC: 1,310,720 ps, + the 2 us route).
  auto d =
      LoadScenarioFromString(ChunkScenario("direct", "dispatch_kernel_gbps: 0.001"), "intra.pbtxt");
  REQUIRE(d.ok());
  const pb::Result dr = SimulateMoeLayers(d->cluster, d->workload);
  CHECK(PhaseNamed(dr, "dispatch").time_ns() == 98'304'000);
  CHECK(PhaseNamed(dr, "combine").time_ns() == 3311);

  // The RDMA rate needs a relay by node; a rate of 0 is out of its declared range.
  auto direct = LoadScenarioFromString(ChunkScenario("direct", "dispatch_rdma_kernel_gbps: 43"),
                                       "direct.pbtxt");
  REQUIRE_FALSE(direct.ok());
  CHECK_THAT(direct.error().message(),
             Catch::Contains("workload.dispatch_rdma_kernel_gbps = 43: the internode kernels' "
                             "rate needs a relay by node (the algorithm is direct); valid: "
                             "alltoall_algo: \"hierarchical\" or \"deepep_normal\", or leave "
                             "it out"));
  auto zero =
      LoadScenarioFromString(ChunkScenario("direct", "combine_kernel_gbps: 0"), "zero.pbtxt");
  REQUIRE_FALSE(zero.ok());
  CHECK_THAT(zero.error().message(),
             Catch::Contains("workload.combine_kernel_gbps = 0: out of range"));
}

}  // namespace moesim::sim
