#include "models/synthetic_spec.h"

#include <catch2/catch.hpp>
#include <numeric>
#include <string>

#include "models/expert_counts.h"
#include "models/synthetic.h"
#include "test_paths.h"

namespace moesim::models {
namespace {

const std::string kCsv = std::string(MOESIM_SHARED_DATA_DIR) + "/routing/expert_counts_topk.csv";

const RoutingShape kMixtral{
    .ranks = 4, .layers = 1, .tokens_per_rank = 256, .num_experts = 8, .top_k = 2};
const RoutingShape kOlmoe{
    .ranks = 2, .layers = 1, .tokens_per_rank = 512, .num_experts = 64, .top_k = 8};

// Resolves `synthetic { <body> }` written on line 2 of a scenario named `name`.
StatusOr<std::vector<LayerRouting>> Resolve(const std::string& body, const RoutingShape& shape,
                                            const std::string& name = "s.pbtxt") {
  pb::Scenario scenario;
  const std::string text = "routing {\n  synthetic { " + body + " }\n}\n";
  auto file = TextFile::ParseString(text, name, &scenario);
  if (!file.ok()) return file.error();  // a figure outside its declared range (proto/range.proto)
  return ResolveRouting(scenario.routing(), shape, &*file);
}

std::string ErrorOf(const std::string& body, const RoutingShape& shape) {
  auto r = Resolve(body, shape);
  REQUIRE_FALSE(r.ok());
  return r.error().message();
}

std::string Measured(const std::string& model, const std::string& domain,
                     const std::string& extra = "") {
  return "distribution: MEASURED counts_file: \"" + kCsv + "\" counts_model: \"" + model +
         "\" counts_domain: \"" + domain + "\" " + extra;
}

std::vector<uint64_t> SpecLoads(const LayerRouting& r, uint32_t experts) {
  std::vector<uint64_t> load(experts, 0);
  for (const auto& ids : r.experts) {
    for (uint32_t e : ids) ++load.at(e);
  }
  return load;
}

}  // namespace

TEST_CASE("Synthetic routing blocks call their generators") {
  // UNIFORM is UniformRouting itself: the default scenario's numbers do not move.
  auto uniform = Resolve("distribution: UNIFORM seed: 1", kMixtral);
  REQUIRE(uniform.ok());
  CHECK((*uniform)[0].experts == UniformRouting(kMixtral, 1, 0).experts);

  auto zipf = Resolve("distribution: ZIPF zipf_alpha: 1.2 shuffle_experts: true seed: 4", kMixtral);
  REQUIRE(zipf.ok());
  CHECK((*zipf)[0].experts ==
        ZipfRouting(kMixtral, {.alpha = 1.2, .shuffle_experts = true}, 4, 0).experts);

  auto drift = Resolve(
      "distribution: COLLAPSE collapse_fraction: 0.25 collapse_hot_experts: 3 "
      "drift_period_steps: 100 step: 250 seed: 2",
      kMixtral);
  REQUIRE(drift.ok());
  CHECK((*drift)[0].experts ==
        CollapseRouting(
            kMixtral,
            {.fraction = 0.25, .hot_experts = 3, .drift = {.step = 250, .period_steps = 100}}, 2, 0)
            .experts);

  // Two layers, correlated: the same as generating both and correlating them.
  RoutingShape two = kMixtral;
  two.layers = 2;
  auto correlated = Resolve("distribution: UNIFORM seed: 5 layer_correlation: 0.4", two);
  REQUIRE(correlated.ok());
  std::vector<LayerRouting> expected = {UniformRouting(two, 5, 0), UniformRouting(two, 5, 1)};
  CorrelateLayers(expected, 0.4, 5);
  CHECK((*correlated)[1].experts == expected[1].experts);
}

TEST_CASE("Measured routing takes the counts of each simulated layer scaled to the scenario") {
  // Two simulated layers from OLMoE's layers 0 and 15 on GitHub code: 2 ranks x 512 tokens x
  // top-8 = 8,192 selections per layer, scaled from 1,671,168 by largest remainder.
  RoutingShape two = kOlmoe;
  two.layers = 2;
  auto r = Resolve(Measured("olmoe", "github", "counts_layers: [0, 15] seed: 3"), two);
  REQUIRE(r.ok());
  auto table = ExpertCounts::ReadCsv(kCsv);
  REQUIRE(table.ok());
  CHECK(SpecLoads((*r)[0], 64) == ScaleCounts(*table->Find("olmoe", "github", 0), 8'192));
  CHECK(SpecLoads((*r)[1], 64) == ScaleCounts(*table->Find("olmoe", "github", 15), 8'192));
  CHECK_THAT((*r)[1].note, Catch::Contains("olmoe/github/15"));
  CHECK_THAT((*r)[1].note,
             Catch::Contains("scaled to this layer's 8192 (tokens x top_k) by largest "
                             "remainder"));

  // A relative counts_file starts at the scenario file's folder.
  auto relative = Resolve(
      "distribution: MEASURED counts_file: \"../../shared/data/routing/expert_counts_topk.csv\" "
      "counts_model: \"mistral\" counts_domain: \"c4\"",
      kMixtral, testing::SourcePath("scenarios/inline.pbtxt"));
  REQUIRE(relative.ok());
  CHECK(SpecLoads((*relative)[0], 8) == ScaleCounts(*table->Find("mistral", "c4", 0), 2'048));
}

TEST_CASE("Synthetic parameters out of range get located errors") {
  // Line 2 is `  synthetic { <body> }`: the body starts at column 15, so a field's column is 15
  // plus the characters of the body before it.
  CHECK(ErrorOf("distribution: ZIPF seed: 1", kMixtral) ==
        "s.pbtxt:2:3: routing.synthetic.zipf_alpha: missing: ZIPF needs it; valid: a number > 0, "
        "e.g. 1.0 (classic Zipf)");
  CHECK(ErrorOf("distribution: ZIPF zipf_alpha: -1", kMixtral) ==
        "s.pbtxt:2:34: routing.synthetic.zipf_alpha = -1: out of range; valid: more than 0 to 100");
  CHECK(ErrorOf("distribution: COLLAPSE collapse_fraction: 1.5", kMixtral) ==
        "s.pbtxt:2:38: routing.synthetic.collapse_fraction = 1.5: out of range; valid: 0 to 1");
  CHECK(
      ErrorOf("distribution: COLLAPSE collapse_fraction: 0.5 collapse_hot_experts: 1", kMixtral) ==
      "s.pbtxt:2:61: routing.synthetic.collapse_hot_experts = 1: must hold a token's top_k = 2 "
      "experts and be no more than the model's; valid: 2 to 8");
  CHECK_THAT(
      ErrorOf("distribution: UNIFORM layer_correlation: 2", kMixtral),
      Catch::StartsWith("s.pbtxt:2:37: routing.synthetic.layer_correlation = 2: out of range; "
                                       "valid: 0 to 1"));
  CHECK_THAT(ErrorOf("distribution: ZIPF zipf_alpha: 1 drift_period_steps: 0", kMixtral),
             Catch::Contains("routing.synthetic.drift_period_steps = 0: a period of no steps"));
  CHECK_THAT(
      ErrorOf("distribution: ZIPF zipf_alpha: 1 step: 4", kMixtral),
      Catch::Contains("routing.synthetic.step = 4: has no effect without drift_period_steps"));
}

TEST_CASE("Synthetic parameters given to a distribution that does not use them are rejected") {
  CHECK(ErrorOf("distribution: UNIFORM zipf_alpha: 1.2", kMixtral) ==
        "s.pbtxt:2:37: routing.synthetic.zipf_alpha = 1.2: does not apply to distribution UNIFORM; "
        "valid: only with distribution ZIPF");
  CHECK_THAT(ErrorOf(Measured("olmoe", "arxiv", "layer_correlation: 0.5"), kOlmoe),
             Catch::Contains("routing.synthetic.layer_correlation = 0.5: does not apply to "
                             "distribution MEASURED; valid: only with distribution UNIFORM or "
                             "ZIPF or COLLAPSE"));
  CHECK_THAT(ErrorOf("distribution: ZIPF zipf_alpha: 1 counts_model: \"olmoe\"", kMixtral),
             Catch::Contains("routing.synthetic.counts_model = \"olmoe\": does not apply"));
}

TEST_CASE("Measured routing errors name what the counts file holds") {
  CHECK_THAT(ErrorOf(Measured("olmo", "arxiv"), kOlmoe),
             Catch::Contains("routing.synthetic.counts_model = \"olmo\": not in ") &&
                 Catch::EndsWith("; valid: mistral, olmoe, olmoe-dpo, olmoe-sft"));
  CHECK_THAT(ErrorOf(Measured("olmoe", "news"), kOlmoe),
             Catch::EndsWith("routing.synthetic.counts_domain = \"news\": no counts of olmoe for "
                             "it; valid: arxiv, book, c4, github, tulu, wikipedia"));
  CHECK_THAT(ErrorOf(Measured("olmoe", "arxiv", "counts_layers: 3"), kOlmoe),
             Catch::EndsWith("routing.synthetic.counts_layers[0] = 3: no counts of olmoe/arxiv for "
                             "this layer; valid: 0, 7, 15"));
  CHECK_THAT(ErrorOf(Measured("mistral", "arxiv"), kOlmoe),
             Catch::EndsWith("routing.synthetic.counts_model = \"mistral\": the counts of "
                             "mistral/arxiv/0 name 8 experts; the model has 64; valid: counts "
                             "measured on a model with 64 experts"));
  // OLMoE's expert 0 takes 204,013 of 1,671,168 selections (12.2%); with top-16 that would be 1.95
  // selections per token.
  RoutingShape top16 = kOlmoe;
  top16.top_k = 16;
  CHECK_THAT(ErrorOf(Measured("olmoe", "arxiv"), top16),
             Catch::Contains("routing.synthetic.counts_layers = absent (layer 0): expert 0 of "
                             "olmoe/arxiv/0 has 204013 of 1671168 selections (2000 of 16384 "
                             "here), more than the layer's 1024 tokens"));
  RoutingShape two = kOlmoe;
  two.layers = 2;
  CHECK_THAT(
      ErrorOf(Measured("olmoe", "arxiv", "counts_layers: [0, 7, 15]"), two),
      Catch::Contains("routing.synthetic.counts_layers = 3 values: neither one layer for all "
                      "nor one per simulated layer"));
  CHECK_THAT(ErrorOf("distribution: MEASURED counts_file: \"nowhere.csv\" counts_model: \"olmoe\" "
                     "counts_domain: \"arxiv\"",
                     kOlmoe),
             Catch::StartsWith("s.pbtxt:2:38: routing.synthetic.counts_file = \"nowhere.csv\": no "
                               "such file: nowhere.csv"));
  CHECK_THAT(ErrorOf("distribution: MEASURED counts_model: \"olmoe\"", kOlmoe),
             Catch::Contains("routing.synthetic.counts_file: missing"));
}

TEST_CASE("Group-limited routing: both fields, groups that divide the experts, room for top-k") {
  // OLMoE-like: 64 experts, top-8. Valid: 8 groups of 8, tokens within 1 to 8 of them.
  auto ok = Resolve("distribution: UNIFORM router_groups: 8 router_group_topk: 1", kOlmoe);
  REQUIRE(ok.ok());
  for (const auto& ids : ok->front().experts) {
    for (size_t t = 0; t < ids.size(); t += 8) {
      for (size_t j = 1; j < 8; ++j) CHECK(ids[t + j] / 8 == ids[t] / 8);  // one group of 8
    }
  }
  CHECK_THAT(ErrorOf("distribution: UNIFORM router_groups: 8", kOlmoe),
             Catch::Contains("routing.synthetic.router_group_topk = absent: missing: "
                             "router_groups is given; valid: both, or neither"));
  CHECK_THAT(ErrorOf("distribution: UNIFORM router_groups: 6 router_group_topk: 2", kOlmoe),
             Catch::Contains("routing.synthetic.router_groups = 6: must divide the model's 64 "
                             "experts into at most 64 groups of consecutive ids; valid: a divisor "
                             "of 64 from 1 to 64"));
  // 16 groups of 4: a token's 8 experts need at least 2 groups.
  CHECK_THAT(
      ErrorOf("distribution: ZIPF zipf_alpha: 1 router_groups: 16 router_group_topk: 1", kOlmoe),
      Catch::Contains("routing.synthetic.router_group_topk = 1: must be 1 to router_groups "
                      "= 16 and hold a token's top_k = 8 experts (4 per group); valid: 2 "
                      "to 16"));
  CHECK_THAT(ErrorOf("distribution: COLLAPSE collapse_fraction: 0.5 router_groups: 8 "
                     "router_group_topk: 2",
                     kOlmoe),
             Catch::Contains("routing.synthetic.router_groups = 8: does not apply to "
                             "distribution COLLAPSE; valid: only with distribution UNIFORM or "
                             "ZIPF"));
}

}  // namespace moesim::models

namespace moesim::models {

TEST_CASE("routing_version 2: counts for UNIFORM and ZIPF, located errors for the rest") {
  SECTION("ZIPF: every rank's counts add up to T k, the hottest expert first") {
    pb::Scenario scenario;
    auto file = TextFile::ParseString(
        "routing { synthetic { distribution: ZIPF zipf_alpha: 1.2 routing_version: 2 } }",
        "s.pbtxt", &scenario);
    REQUIRE(file.ok());
    REQUIRE(DrawsCounts(scenario.routing()));
    auto counts = ResolveSyntheticCounts(scenario.routing().synthetic(), kMixtral, &*file);
    REQUIRE(counts.ok());
    REQUIRE(counts->size() == 1);
    // 4 ranks of 256 tokens, top-2: 512 selections each. Zipf 1.2 over 8: expert 0's pi is
    // 2 / H = 2 / 2.333 = 0.857 (mean 219 tokens), expert 7's 2 x 8^-1.2 / H = 0.071 (mean 18).
    for (const std::vector<uint64_t>& rank : counts->front().counts) {
      CHECK(std::accumulate(rank.begin(), rank.end(), uint64_t{0}) == 512);
      CHECK(rank[0] > rank[7]);
    }
    // The per-token path ignores the version (plan search samples tokens from the same spec).
    auto tokens = ResolveRouting(scenario.routing(), kMixtral, &*file);
    REQUIRE(tokens.ok());
    CHECK(tokens->front().experts.front().size() == 512);
  }
  SECTION("version 1 (absent) draws no counts") {
    pb::Routing routing;
    routing.mutable_synthetic()->set_distribution(pb::SyntheticRouting::UNIFORM);
    CHECK_FALSE(DrawsCounts(routing));
    routing.mutable_synthetic()->set_routing_version(1);
    CHECK_FALSE(DrawsCounts(routing));
  }
  SECTION("what counts cannot draw") {
    CHECK(ErrorOf("distribution: COLLAPSE collapse_fraction: 0.5 routing_version: 2", kMixtral) ==
          "s.pbtxt:2:61: routing.synthetic.routing_version = 2: draws counts only for UNIFORM and "
          "ZIPF, not COLLAPSE; valid: 1 (every token's experts), or distribution UNIFORM or ZIPF");
    CHECK_THAT(ErrorOf("distribution: UNIFORM layer_correlation: 0.5 routing_version: 2", kMixtral),
               Catch::Contains("routing.synthetic.layer_correlation = 0.5: needs each token's "
                               "experts, which routing_version 2 does not draw; valid: leave it "
                               "out, or routing_version 1"));
    CHECK_THAT(ErrorOf("distribution: UNIFORM router_groups: 2 router_group_topk: 1 "
                       "routing_version: 2",
                       kMixtral),
               Catch::Contains("routing.synthetic.router_groups = 2: needs each token's experts"));
    CHECK_THAT(
        ErrorOf("distribution: UNIFORM routing_version: 3", kMixtral),
        Catch::Contains("routing.synthetic.routing_version = 3: out of range; valid: 1 to 2"));
  }
}

}  // namespace moesim::models
