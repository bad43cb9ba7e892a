#include "models/plan.h"

#include <catch2/catch.hpp>

#include "proto/text_file.h"

namespace moesim::models {
namespace {

using Groups = std::vector<std::vector<uint32_t>>;

pb::ModelSpec Experts(uint32_t n) {
  pb::ModelSpec m;
  m.set_num_experts(n);
  return m;
}

pb::ParallelPlan PlanSpec(std::optional<uint32_t> ep, std::optional<uint32_t> dp = {},
                          std::optional<uint32_t> tp = {}) {
  pb::ParallelPlan p;
  if (ep) p.set_ep(*ep);
  if (dp) p.set_dp(*dp);
  if (tp) p.set_tp(*tp);
  return p;
}

}  // namespace

TEST_CASE("RankGrid: the first dimension varies fastest") {
  // dims a=2, b=3, c=2: rank = a + 2*b + 6*c.
  RankGrid grid({{"a", 2}, {"b", 3}, {"c", 2}});
  CHECK(grid.size() == 12);
  // rank 9 = 1 + 2*1 + 6*1.
  CHECK(grid.Coordinate(9, "a") == 1);
  CHECK(grid.Coordinate(9, "b") == 1);
  CHECK(grid.Coordinate(9, "c") == 1);
  CHECK(grid.Group(9, "a") == std::vector<uint32_t>{8, 9});
  CHECK(grid.Group(9, "b") == std::vector<uint32_t>{7, 9, 11});
  CHECK(grid.Group(9, "c") == std::vector<uint32_t>{3, 9});
  // Over a and c, a fastest whatever order they are named in: base 9 - 1 - 6 = 2, then
  // 2 + a + 6c for (a, c) = (0,0), (1,0), (0,1), (1,1).
  CHECK(grid.GroupOver(9, {"c", "a"}) == std::vector<uint32_t>{2, 3, 8, 9});
}

TEST_CASE("RankGrid reproduces the groups of Megatron-Core's docstrings") {
  // generate_masked_orthogonal_rank_groups: sizes [tp, dp, pp] = [2, 3, 4], mask dp:
  // dp_group[0] = [0, 2, 4], dp_group[1] = [1, 3, 5], ..., dp_group[7] = [19, 21, 23].
  const RankGrid grid({{"tp", 2}, {"dp", 3}, {"pp", 4}});
  const Groups dp = grid.AllGroups({"dp"});
  REQUIRE(dp.size() == 8);
  CHECK(dp[0] == std::vector<uint32_t>{0, 2, 4});
  CHECK(dp[1] == std::vector<uint32_t>{1, 3, 5});
  CHECK(dp[7] == std::vector<uint32_t>{19, 21, 23});

  // initialize_model_parallel: 16 GPUs, tp 2, pp 4 (so dp 2), default order: 8 data-parallel
  // groups [g0, g2], [g1, g3], [g4, g6], ...; 8 tensor groups [g0, g1], [g2, g3], ...; 4 pipeline
  // groups [g0, g4, g8, g12], [g1, g5, g9, g13], ...
  pb::ParallelPlan spec;
  spec.set_tp(2);
  spec.set_pp(4);
  auto plan = ResolvePlan(spec, 16, Experts(8), nullptr);
  REQUIRE(plan.ok());
  CHECK(plan->order() == "tp-cp-ep-dp-pp");
  const Groups dps = plan->attention_grid().AllGroups({"dp"});
  CHECK(dps == Groups{{0, 2}, {1, 3}, {4, 6}, {5, 7}, {8, 10}, {9, 11}, {12, 14}, {13, 15}});
  const Groups tps = plan->attention_grid().AllGroups({"tp"});
  CHECK(tps == Groups{{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}, {10, 11}, {12, 13}, {14, 15}});
  CHECK(plan->attention_grid().AllGroups({"pp"}) ==
        Groups{{0, 4, 8, 12}, {1, 5, 9, 13}, {2, 6, 10, 14}, {3, 7, 11, 15}});
  CHECK(plan->PpStage(9) == 2);  // 9 = 1 (tp) + 0 (dp) * 2 + 2 (pp) * 4
}

TEST_CASE("MoE parallel folding: attention and MoE grids over the same 16 GPUs") {
  // tp 2, cp 2, pp 2, so dp = 16 / 8 = 2; MoE layers: ep 4, etp 1, edp = tp*cp*dp / ep = 2.
  // Attention grid (default order): rank = tp + 2 cp + 4 dp + 8 pp.
  // MoE grid: rank = ep + 4 edp + 8 pp. Expected groups as Megatron-Core's RankGenerator gives
  // them (get_ranks("dp-cp") lists cp fastest, as the order does).
  pb::ParallelPlan spec;
  spec.set_tp(2);
  spec.set_cp(2);
  spec.set_pp(2);
  spec.set_ep(4);
  auto plan = ResolvePlan(spec, 16, Experts(8), nullptr);
  REQUIRE(plan.ok());
  CHECK(plan->sizes().dp == 2);
  CHECK(plan->sizes().edp == 2);
  // Rank 5: tp 1, cp 0, dp 1, pp 0; in the MoE grid ep 1, edp 1, pp 0.
  CHECK(plan->TpGroup(5) == std::vector<uint32_t>{4, 5});
  CHECK(plan->CpGroup(5) == std::vector<uint32_t>{5, 7});
  CHECK(plan->DpGroup(5) == std::vector<uint32_t>{1, 5});
  CHECK(plan->DpCpGroup(5) == std::vector<uint32_t>{1, 3, 5, 7});
  CHECK(plan->PpGroup(5) == std::vector<uint32_t>{5, 13});
  CHECK(plan->EpGroup(5) == std::vector<uint32_t>{4, 5, 6, 7});
  CHECK(plan->EpRank(5) == 1);
  CHECK(plan->EdpGroup(5) == std::vector<uint32_t>{1, 5});
  CHECK(plan->EtpGroup(5) == std::vector<uint32_t>{5});
  CHECK(plan->PpStage(13) == 1);
  // Both grids put the same GPUs in each pipeline, as Megatron-Core asserts.
  CHECK(plan->moe_grid().AllGroups({"pp"}) == plan->attention_grid().AllGroups({"pp"}));
}

TEST_CASE("The order string decides the strides: dp before ep spreads an EP group out") {
  // 8 GPUs, ep 4: edp = 8 / 4 = 2. Order tp-dp-ep-pp: MoE rank = edp + 2 ep, so EP group 0 is
  // {0, 2, 4, 6} and the expert-data-parallel pairs are neighbours (Megatron-Core gives the same).
  pb::ParallelPlan spec;
  spec.set_ep(4);
  spec.set_order("tp-dp-ep-pp");
  auto plan = ResolvePlan(spec, 8, Experts(8), nullptr);
  REQUIRE(plan.ok());
  CHECK(plan->order() == "tp-dp-ep-pp-cp");  // cp left out: appended, size 1
  CHECK(plan->EpGroup(0) == std::vector<uint32_t>{0, 2, 4, 6});
  CHECK(plan->EpGroup(3) == std::vector<uint32_t>{1, 3, 5, 7});
  CHECK(plan->EdpGroup(3) == std::vector<uint32_t>{2, 3});
  CHECK(plan->EpRank(3) == 1);

  // tp-pp-dp (Megatron's docstring: 8 GPUs, sizes 2-2-2: dp groups [0, 4], [1, 5], [2, 6],
  // [3, 7]). pp is not last, so MoE layers need edp = dp: etp 2 gives edp = 8 / (2*1*2) = 2.
  pb::ParallelPlan tpd;
  tpd.set_tp(2);
  tpd.set_pp(2);
  tpd.set_etp(2);
  tpd.set_order("TP-PP-DP");  // case is ignored, as RankGenerator lowercases
  auto p2 = ResolvePlan(tpd, 8, Experts(8), nullptr);
  REQUIRE(p2.ok());
  CHECK(p2->attention_grid().AllGroups({"dp"}) == Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}});
  CHECK(p2->PpGroup(1) == std::vector<uint32_t>{1, 3});
  CHECK(p2->EdpGroup(1) == std::vector<uint32_t>{1, 5});
}

TEST_CASE("dp defaults to the GPUs left by tp cp pp and EP groups are consecutive ranks") {
  auto plan = ResolvePlan(PlanSpec(4), 8, Experts(8), nullptr);
  REQUIRE(plan.ok());
  CHECK(plan->sizes().dp == 8);
  CHECK(plan->sizes().ep == 4);
  // edp = tp*cp*dp / (etp*ep) = 8 / 4 = 2 EP groups: ranks 0-3 and 4-7.
  CHECK(plan->sizes().edp == 2);
  CHECK(plan->EpGroup(5) == std::vector<uint32_t>{4, 5, 6, 7});
  CHECK(plan->EpRank(5) == 1);
  CHECK(plan->EpGroup(2) == std::vector<uint32_t>{0, 1, 2, 3});
}

TEST_CASE("With tp the MoE layers fold EP over the tp x dp GPUs") {
  auto plan = ResolvePlan(PlanSpec(8, {}, 2), 8, Experts(8), nullptr);
  REQUIRE(plan.ok());
  CHECK(plan->sizes().dp == 4);
  CHECK(plan->sizes().edp == 1);
  CHECK(plan->EpGroup(3).size() == 8);
}

TEST_CASE("Plans that do not fit the GPUs or the experts are refused with the valid choices") {
  auto product = ResolvePlan(PlanSpec(4, 2, 2), 8, Experts(8), nullptr);
  REQUIRE_FALSE(product.ok());
  CHECK_THAT(product.error().message(),
             Catch::StartsWith("plan = tp 2 x cp 1 x dp 2 x pp 1 = 4: the parallel sizes do not "
                               "multiply to the 8 GPUs of the cluster"));

  auto experts = ResolvePlan(PlanSpec(3), 6, Experts(8), nullptr);
  REQUIRE_FALSE(experts.ok());
  // Valid EP sizes divide both the 8 experts and the 6 GPUs of the stage: 1 and 2.
  CHECK(experts.error().message() ==
        "plan.ep = 3: does not divide the model's 8 experts; valid: 1, 2");

  auto stage = ResolvePlan(PlanSpec(16), 8, Experts(64), nullptr);
  REQUIRE_FALSE(stage.ok());
  CHECK_THAT(stage.error().message(), Catch::Contains("does not divide the 8 GPUs"));
  CHECK_THAT(stage.error().message(), Catch::EndsWith("valid: 1, 2, 4, 8"));

  pb::ParallelPlan zero;
  zero.set_tp(0);
  auto z = ResolvePlan(zero, 8, Experts(8), nullptr);
  REQUIRE_FALSE(z.ok());
  CHECK_THAT(z.error().message(), Catch::StartsWith("plan.tp = 0: "));

  auto indivisible = ResolvePlan(PlanSpec(1, {}, 3), 8, Experts(8), nullptr);
  REQUIRE_FALSE(indivisible.ok());
  CHECK_THAT(indivisible.error().message(), Catch::Contains("does not divide the 8 GPUs"));
}

TEST_CASE("Bad order strings name the valid names") {
  auto Order = [](const std::string& order, uint32_t pp = 1, uint32_t etp = 1) {
    pb::ParallelPlan p;
    p.set_order(order);
    p.set_pp(pp);
    p.set_tp(2);
    p.set_etp(etp);
    return ResolvePlan(p, 8, Experts(8), nullptr);
  };
  auto unknown = Order("dp-xp");
  REQUIRE_FALSE(unknown.ok());
  CHECK_THAT(unknown.error().message(),
             Catch::StartsWith("plan.order = \"dp-xp\": unknown name \"xp\"; valid: names from "
                               "tp, cp, ep, dp, pp"));
  CHECK_THAT(unknown.error().message(), Catch::Contains("tp-cp-ep-dp-pp"));
  CHECK_THAT(Order("tp-dp-tp").error().message(), Catch::Contains("\"tp\" appears twice"));
  CHECK_THAT(Order("tp--dp").error().message(), Catch::Contains("an empty name"));
  // tp is 2 but the order leaves it out (RankGenerator raises the same).
  CHECK_THAT(Order("dp-pp").error().message(),
             Catch::Contains("leaves out tp, but tp is 2; valid: an order that names every"));
  // A name Megatron accepts but moesim did not before: any arrangement is fine.
  CHECK(Order("dp-tp").ok());
  // pp not last with pp 2: attention dp = 8 / (2*2) = 2, MoE edp = 2*2 / 1 = 4 (etp 1).
  auto folded = Order("tp-pp-dp", 2);
  REQUIRE_FALSE(folded.ok());
  CHECK_THAT(folded.error().message(),
             Catch::Contains("with pp not last, the MoE layers' edp (4) must equal dp (2)"));
  CHECK(Order("tp-pp-dp", 2, 2).ok());
}

TEST_CASE("tp must divide the attention heads and the key/value heads") {
  pb::ModelSpec gqa = Experts(8);
  gqa.set_num_layers(32);
  gqa.mutable_attention()->set_kind(pb::AttentionSpec::GQA);
  gqa.mutable_attention()->set_num_heads(32);
  gqa.mutable_attention()->set_num_kv_heads(8);
  auto kv = ResolvePlan(PlanSpec(1, {}, 16), 16, gqa, nullptr);
  REQUIRE_FALSE(kv.ok());
  CHECK(kv.error().message() ==
        "plan.tp = 16: does not divide the model's 8 key/value heads; valid: 1, 2, 4, 8");
  auto heads = ResolvePlan(PlanSpec(1, {}, 3), 6, gqa, nullptr);
  REQUIRE_FALSE(heads.ok());
  CHECK_THAT(heads.error().message(),
             Catch::StartsWith("plan.tp = 3: does not divide the model's 32 attention heads"));
  CHECK(ResolvePlan(PlanSpec(1, {}, 8), 8, gqa, nullptr).ok());
}

TEST_CASE("Pipeline stages split the layers evenly or as first and last stage say") {
  pb::ModelSpec m = Experts(8);
  m.set_num_layers(61);  // DeepSeek-V3: 61 layers, a prime
  pb::ParallelPlan spec;
  spec.set_pp(4);
  auto even = ResolvePlan(spec, 8, m, nullptr);
  REQUIRE_FALSE(even.ok());
  CHECK_THAT(even.error().message(),
             Catch::StartsWith("plan.pp = 4: does not divide the model's 61 layers; valid: 1, 61"));
  // First stage 13: the other 48 layers over 3 stages, 16 each.
  spec.set_pp_first_stage_layers(13);
  auto uneven = ResolvePlan(spec, 8, m, nullptr);
  REQUIRE(uneven.ok());
  CHECK(uneven->StageLayerCount(0) == 13);
  CHECK(uneven->StageLayerCount(3) == 16);
  CHECK(uneven->StageFirstLayer(2) == 29);  // 13 + 16
  // First 14 and last 15: 32 over the 2 middle stages.
  spec.set_pp_first_stage_layers(14);
  spec.set_pp_last_stage_layers(15);
  auto both = ResolvePlan(spec, 8, m, nullptr);
  REQUIRE(both.ok());
  CHECK(both->StageLayerCount(1) == 16);
  CHECK(both->StageLayerCount(3) == 15);
  // First 12: 49 over 3 stages does not split.
  spec.clear_pp_last_stage_layers();
  spec.set_pp_first_stage_layers(12);
  auto bad = ResolvePlan(spec, 8, m, nullptr);
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error().message(),
             Catch::Contains("the other layers do not split evenly over the 3 stage(s) between"));
}

TEST_CASE("EPLB placement needs ep to divide the physical experts not the logical ones") {
  // 12 experts over ep 8: contiguous placement cannot split them; EPLB with 4 redundant experts
  // has 16 physical experts, 2 per EP rank.
  pb::ParallelPlan spec = PlanSpec(8);
  auto contiguous = ResolvePlan(spec, 8, Experts(12), nullptr);
  REQUIRE_FALSE(contiguous.ok());
  CHECK_THAT(contiguous.error().message(),
             Catch::StartsWith("plan.ep = 8: does not divide the model's 12 experts"));
  spec.mutable_placement()->set_kind(pb::ExpertPlacementSpec::EPLB);
  spec.mutable_placement()->set_redundant_experts(4);
  CHECK(ResolvePlan(spec, 8, Experts(12), nullptr).ok());
  spec.mutable_placement()->set_redundant_experts(3);
  auto fifteen = ResolvePlan(spec, 8, Experts(12), nullptr);
  REQUIRE_FALSE(fifteen.ok());
  CHECK_THAT(fifteen.error().message(),
             Catch::Contains("does not divide the model's 15 physical experts"));
}

TEST_CASE("Plan errors point at the line and column of the field") {
  pb::Scenario scenario;
  auto file = TextFile::ParseString(
      "model: \"x\"\n"
      "plan {\n"
      "  ep: 8\n"
      "  order: \"tp-ep-xx\"\n"
      "}\n",
      "s.pbtxt", &scenario);
  REQUIRE(file.ok());
  auto plan = ResolvePlan(scenario.plan(), 8, Experts(8), &*file);
  REQUIRE_FALSE(plan.ok());
  CHECK_THAT(plan.error().message(),
             Catch::StartsWith("s.pbtxt:4:3: plan.order = \"tp-ep-xx\": unknown name \"xx\""));
}

}  // namespace moesim::models
