// Plan search's routing (sim/step/plan_search.h): which loads every candidate's expected layer
// takes, and DeepEP's deduplication estimated from the routing's sample.
#include "sim/step/plan_search.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <numeric>
#include <set>

#include "models/trace.h"
#include "step_fixtures.h"
#include "test_paths.h"

namespace moesim::sim {
namespace {

using testing::Parse;

// 16 experts of top-4 (tests/fixtures/models/tiny-moe-16e.pbtxt): EP 16 spans two 8-GPU nodes.
pb::ModelSpec Tiny16() {
  return Parse<pb::ModelSpec>(
      "name: 'tiny-moe-16e' hidden_size: 128 expert_ffn_size: 256 num_experts: 16 top_k: 4 "
      "num_layers: 4 dtype: BF16 vocab_size: 1000 attention { kind: MHA num_heads: 8 }");
}

pb::Routing Routing(const std::string& text) { return Parse<pb::Routing>(text); }

StepConfig Training(models::AllToAllAlgo algo) {
  StepConfig step;
  step.global_batch = 32;
  step.seq_len = 512;
  step.alltoall_algo = algo;
  return step;
}

// tp1 pp1 ep16 dp16 mb1: the one EP group spans both nodes.
PlanCandidate Ep16() {
  PlanCandidate c;
  c.plan.set_tp(1);
  c.plan.set_pp(1);
  c.plan.set_ep(16);
  c.plan.set_dp(16);
  return c;
}

// Uniform routing over Tiny16's experts, with its sample.
PlanRouting UniformRouting() {
  auto routing =
      ResolvePlanRouting(Tiny16(), Routing("synthetic { distribution: UNIFORM }"), "", nullptr);
  REQUIRE(routing.ok());
  return *std::move(routing);
}

Duration Step(const PlanRouting& routing, models::AllToAllAlgo algo,
              const PlanCandidate& candidate = Ep16()) {
  auto row = EvaluatePlan(testing::DgxH100(2), Tiny16(), routing, pb::ExpertPlacementSpec(),
                          Training(algo), candidate, 0);
  REQUIRE(row.ok());
  return row->step;
}

}  // namespace

TEST_CASE("Plan routing: exact loads where they have a closed form, the sample's under a limit") {
  const pb::ModelSpec model = Tiny16();
  SECTION("uniform, with or without a group limit: equal") {
    // M of G groups, then k of their M E / G experts: (M / G) (k G / (M E)) = k / E each.
    for (const char* text :
         {"synthetic { distribution: UNIFORM }",
          "synthetic { distribution: UNIFORM router_groups: 4 router_group_topk: 2 }"}) {
      auto r = ResolvePlanRouting(model, Routing(text), "", nullptr);
      REQUIRE(r.ok());
      CHECK(r->loads == std::vector<uint64_t>(16, 1));
      CHECK(r->source == "exact");
      CHECK(r->sample.size() == 65'536u * 4);
    }
  }
  SECTION("zipf: inclusion probabilities without a limit, the sample's counts with one") {
    auto exact = ResolvePlanRouting(
        model, Routing("synthetic { distribution: ZIPF zipf_alpha: 1.2 }"), "", nullptr);
    REQUIRE(exact.ok());
    CHECK(exact->source == "exact");
    // pi sums to k = 4, in units of 1e-12.
    const uint64_t sum = std::accumulate(exact->loads.begin(), exact->loads.end(), uint64_t{0});
    CHECK(sum == Approx(4e12).epsilon(1e-9));

    auto limited = ResolvePlanRouting(
        model,
        Routing("synthetic { distribution: ZIPF zipf_alpha: 1.2 router_groups: 2 "
                "router_group_topk: 1 }"),
        "", nullptr);
    REQUIRE(limited.ok());
    CHECK(limited->source == "a sample of 65536 tokens");
    std::vector<uint64_t> counts(16, 0);
    for (uint32_t e : limited->sample) ++counts[e];
    CHECK(limited->loads == counts);
    // One group of 8 experts per token: each token's 4 experts are all below 8 or all above.
    for (size_t t = 0; t < limited->sample.size(); t += 4) {
      const bool low = limited->sample[t] < 8;
      for (size_t j = 1; j < 4; ++j) CHECK((limited->sample[t + j] < 8) == low);
    }
  }
}

TEST_CASE("Plan routing from a trace: its counts, and its first tokens for the nodes") {
  // Two records of 3 tokens, top-4 of 16: loads are the counts of all 6 tokens; the sample is the
  // 6 tokens themselves (fewer than 65,536), in file order.
  const std::string path = testing::TempPath("plan.moetrace");
  pb::TraceHeader header;
  header.set_num_experts(16);
  header.set_top_k(4);
  auto writer = models::TraceWriter::Create(path, header);
  REQUIRE(writer.ok());
  const std::vector<std::vector<uint32_t>> records = {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
                                                      {0, 8, 9, 15, 1, 2, 3, 4, 12, 13, 14, 15}};
  for (uint32_t r = 0; r < records.size(); ++r) {
    pb::TraceRecord record;
    record.set_step(r);
    record.set_tokens(3);
    for (uint32_t e : records[r]) record.add_experts(e);
    REQUIRE(writer->Write(record).ok());
  }
  REQUIRE(writer->Close().ok());
  auto routing = ResolvePlanRouting(Tiny16(), pb::Routing(), path, nullptr);
  std::filesystem::remove(path);
  REQUIRE(routing.ok());
  std::vector<uint32_t> all = records[0];
  all.insert(all.end(), records[1].begin(), records[1].end());
  CHECK(routing->sample == all);
  CHECK(routing->top_k == 4);
  std::vector<uint64_t> counts(16, 0);
  for (uint32_t e : all) ++counts[e];
  CHECK(routing->loads == counts);
  CHECK(routing->source == "the trace's counts; nodes from its first 6 tokens");
}

TEST_CASE("Plan search deduplicates DeepEP's crossings from the sample, where EP spans nodes") {
  const pb::ModelSpec model = Tiny16();
  const PlanRouting uniform = UniformRouting();
  PlanRouting no_sample = uniform;
  no_sample.sample.clear();  // every copy crosses, as before the sample was kept
  // Top-4 of 16 experts, 8 per node: a token reaches the other node with 1 to 4 copies, so sending
  // it once per node moves less than sending every copy, and the step is shorter. The direct
  // all-to-all does not deduplicate: the sample changes nothing there.
  const Duration deduplicated = Step(uniform, models::AllToAllAlgo::kHierarchical);
  const Duration every_copy = Step(no_sample, models::AllToAllAlgo::kHierarchical);
  CHECK(deduplicated < every_copy);
  CHECK(Step(uniform, models::AllToAllAlgo::kDirect) ==
        Step(no_sample, models::AllToAllAlgo::kDirect));

  // Node-limited routing, one group of 8 (one node's experts) per token: every token reaches one
  // node only, so fewer cross than without the limit.
  auto one_node = ResolvePlanRouting(
      model, Routing("synthetic { distribution: UNIFORM router_groups: 2 router_group_topk: 1 }"),
      "", nullptr);
  REQUIRE(one_node.ok());
  CHECK(Step(*one_node, models::AllToAllAlgo::kHierarchical) < deduplicated);
}

TEST_CASE("Plan search sends each token once per GPU under per_rank, estimated from the sample") {
  const PlanRouting uniform = UniformRouting();
  PlanRouting no_sample = uniform;
  no_sample.sample.clear();
  // EP 8 (edp 2): 2 of the 16 experts on each GPU. A top-4 token has both experts of a given GPU
  // with probability C(14, 2) / C(16, 4) = 91 / 1820 = 5%, and reaches 8 x (1 - C(14, 4) /
  // C(16, 4)) = 8 x (1 - 1001 / 1820) = 3.6 GPUs for its 4 copies: 10% fewer tokens cross.
  PlanCandidate ep8 = Ep16();
  ep8.plan.set_ep(8);
  const Duration direct = Step(uniform, models::AllToAllAlgo::kDirect, ep8);
  CHECK(Step(uniform, models::AllToAllAlgo::kPerRank, ep8) < direct);
  // Without a sample the expected layer knows only copies: per_rank sends every one, so it gains
  // only what direct spends regrouping the copies by expert (two sorts a layer and pass, 2 experts
  // a GPU).
  const Duration copies = Step(no_sample, models::AllToAllAlgo::kPerRank, ep8);
  CHECK(Step(uniform, models::AllToAllAlgo::kPerRank, ep8) < copies);
  CHECK(copies < direct);
}

TEST_CASE("Plan search lists the plans the plan rules refuse, each with its rule") {
  // Tiny16 with 4 attention heads on 8 GPUs (8 a node), global batch 32. tp 1, 2 and 4 divide
  // the heads; tp 8 does not: pp 1 (8 / 8 GPUs), dp 1, ep 1, 2, 4 or 8 (dividing tp x dp = 8 and
  // the 16 experts), micro-batch 1, 2, 4 or 8 (dividing 32), selective or full recomputation:
  // 4 x 4 x 2 = 32 refused, in enumeration order (ep, then micro-batch, then recomputation).
  pb::ModelSpec model = Tiny16();
  model.mutable_attention()->set_num_heads(4);
  std::vector<RefusedPlan> refused;
  const std::vector<PlanCandidate> plans =
      EnumeratePlans(model, 8, 8, Training(models::AllToAllAlgo::kDirect), &refused);
  REQUIRE(refused.size() == 32);
  CHECK(refused[0].plan == "tp8 pp1 ep1 dp1 mb1");
  CHECK(refused[1].plan == "tp8 pp1 ep1 dp1 mb1 full-rc");
  CHECK(refused[2].plan == "tp8 pp1 ep1 dp1 mb2");
  CHECK(refused[31].plan == "tp8 pp1 ep8 dp1 mb8 full-rc");
  for (const RefusedPlan& r : refused) {
    CHECK(r.plan.rfind("tp8 ", 0) == 0);
    CHECK_THAT(r.reason, Catch::Contains("plan.tp") &&
                             Catch::Contains("does not divide the model's 4 attention heads"));
  }
  for (const PlanCandidate& c : plans) CHECK(c.plan.tp() < 8);
  // Null: the same candidates, nothing listed.
  CHECK(EnumeratePlans(model, 8, 8, Training(models::AllToAllAlgo::kDirect), nullptr).size() ==
        plans.size());
}

TEST_CASE("Plan search tries each schedule where it can run, and names it") {
  // Tiny16 (4 layers) on 16 GPUs, global batch 32: m = 32 / (dp x mb).
  const pb::ModelSpec model = Tiny16();
  const StepConfig step = Training(models::AllToAllAlgo::kDirect);
  std::vector<RefusedPlan> refused;
  const std::vector<PlanCandidate> one = EnumeratePlans(model, 16, 8, step, &refused);
  const std::vector<PlanCandidate> all =
      EnumeratePlans(model, 16, 8, step, &refused, false,
                     {{}, {PipelineSchedule::kInterleaved, 2}, {PipelineSchedule::kDualPipe, 1}});
  // The oracle: every 1F1B candidate, an interleaved one where pp >= 2 divides m (2 chunks a
  // stage, one empty where it holds a single layer), a DualPipe one where pp is even and m even
  // and >= 2 pp.
  size_t expected = 0;
  auto key = [](const PlanCandidate& c) {
    return std::to_string(c.plan.tp()) + " " + std::to_string(c.plan.pp()) + " " +
           std::to_string(c.plan.ep()) + " " + std::to_string(c.plan.dp()) + " " +
           std::to_string(c.micro_batch) + " " + std::to_string(static_cast<int>(c.recompute)) +
           " " + std::string(ToString(c.schedule.schedule));
  };
  std::set<std::string> found;
  for (const PlanCandidate& c : all) found.insert(key(c));
  for (const PlanCandidate& c : one) {
    const uint32_t pp = c.plan.pp(), m = 32 / (c.plan.dp() * c.micro_batch);
    const bool interleaved = pp >= 2 && m % pp == 0;
    const bool dualpipe = pp >= 2 && pp % 2 == 0 && m % 2 == 0 && m >= 2 * pp;
    expected += 1 + interleaved + dualpipe;
    PlanCandidate x = c;
    x.schedule = {PipelineSchedule::kInterleaved, 2};
    CHECK(found.count(key(x)) == (interleaved ? 1u : 0u));
    x.schedule = {PipelineSchedule::kDualPipe, 1};
    CHECK(found.count(key(x)) == (dualpipe ? 1u : 0u));
  }
  CHECK(all.size() == expected);
  // By hand: tp1 pp2 ep8 dp8 mb1 has m 4 (interleaved: 4 % 2 = 0, 2 layers a stage in 2 chunks;
  // DualPipe: 4 >= 2 x 2); with mb 2, m 2 < 4: no DualPipe; tp1 pp4 dp4 mb1 has m 8 >= 8 and one
  // layer a stage: DualPipe, and interleaving with an empty chunk a stage (no smaller bubble than
  // 1F1B's, more sends: it ranks below its 1F1B twin).
  CHECK(found.count("1 2 8 8 1 1 dualpipe") == 1);
  CHECK(found.count("1 2 8 8 1 1 interleaved") == 1);
  CHECK(found.count("1 2 8 8 2 1 dualpipe") == 0);
  CHECK(found.count("1 4 4 4 1 1 dualpipe") == 1);
  CHECK(found.count("1 4 4 4 1 1 interleaved") == 1);

  PlanCandidate dual = Ep16();
  dual.plan.set_pp(2);
  dual.plan.set_ep(8);
  dual.plan.set_dp(8);
  dual.schedule = {PipelineSchedule::kDualPipe, 1};
  auto row = EvaluatePlan(testing::DgxH100(2), model, UniformRouting(), pb::ExpertPlacementSpec(),
                          step, dual, 0);
  REQUIRE(row.ok());
  CHECK(row->plan == "tp1 pp2 ep8 dp8 mb1 dualpipe");
}

}  // namespace moesim::sim
