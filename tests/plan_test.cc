#include "models/plan.h"

#include <catch2/catch.hpp>

namespace moesim::models {
namespace {

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

  pb::ParallelPlan order;
  order.set_order("dp-tp");
  auto o = ResolvePlan(order, 8, Experts(8), nullptr);
  REQUIRE_FALSE(o.ok());
  CHECK_THAT(o.error().message(), Catch::Contains("tp-cp-ep-dp-pp"));

  auto indivisible = ResolvePlan(PlanSpec(1, {}, 3), 8, Experts(8), nullptr);
  REQUIRE_FALSE(indivisible.ok());
  CHECK_THAT(indivisible.error().message(), Catch::Contains("does not divide the 8 GPUs"));
}

TEST_CASE("Contiguous placement: EP rank r holds the r-th block of experts") {
  const ExpertPlacement p = ExpertPlacement::Contiguous(8, 4);
  CHECK(p.experts_per_rank() == 2);
  CHECK(p.EpRankOf(0) == 0);
  CHECK(p.EpRankOf(1) == 0);
  CHECK(p.EpRankOf(2) == 1);
  CHECK(p.EpRankOf(7) == 3);
  CHECK(p.LocalIndexOf(7) == 1);
  CHECK(p.LocalIndexOf(4) == 0);
}

}  // namespace moesim::models
