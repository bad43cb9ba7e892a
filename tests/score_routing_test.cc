#include "models/score_routing.h"

#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "models/dispatch.h"
#include "models/expected_layer.h"
#include "models/placement_spec.h"
#include "moesim_runner.h"
#include "sim/moe/scenario_loader.h"
#include "test_paths.h"

namespace moesim::models {
namespace {

using Spec = pb::ScoreRouting;

RoutingShape Shape(uint32_t ranks, uint32_t layers, uint64_t tokens, uint32_t experts,
                   uint32_t top_k) {
  return RoutingShape{ranks, layers, tokens, experts, top_k};
}

ScoreRouting Resolve(const Spec& spec, const RoutingShape& shape) {
  auto out = ResolveScoreRouting(spec, shape, nullptr);
  if (!out.ok()) FAIL(out.error().message());
  return *std::move(out);
}

std::string ErrorOf(const Spec& spec, const RoutingShape& shape) {
  auto out = ResolveScoreRouting(spec, shape, nullptr);
  REQUIRE_FALSE(out.ok());
  return out.error().message();
}

// Best first, equal scores to the lower id (the routers' order).
uint32_t Best(const std::vector<double>& s, int skip = -1) {
  int best = -1;
  for (int e = 0; e < static_cast<int>(s.size()); ++e) {
    if (e == skip) continue;
    if (best < 0 || s[e] > s[best]) best = e;
  }
  return static_cast<uint32_t>(best);
}

}  // namespace

TEST_CASE(
    "The router figures of a GShard top-2 layer with a fixed seed match a direct computation") {
  // 1 rank, 8 tokens, 4 experts, skew 0.5 (mu_e = -0.5 ln(1 + e)), capacity factor 0.5: each
  // expert has ceil(0.5 x 8 x 2 / 4) = 2 places, first choices claiming before second ones.
  // Computed here from the same logits and coin flips, as GShard (Algorithm 1) defines them:
  //   p = softmax(x); e1 = argmax p, e2 = the best other; w2 = p2 / (p1 + p2); keep e2 iff
  //   u < 2 w2, u = (Next() >> 11) x 2^-53 of Rng(GateSeed(seed, 0, 0, 0)), one draw per token;
  //   f_e = selections of e (e1 and e2, kept or not) / (8 x 2); P_e = mean p_e over the tokens;
  //   aux = E sum_e f_e P_e; z = mean (ln sum_e exp x_e)^2.
  Spec spec;
  spec.set_router(Spec::GSHARD_TOP2);
  spec.set_seed(7);
  spec.set_skew(0.5);
  spec.set_capacity_factor(0.5);
  const uint32_t experts = 4, tokens = 8;
  const ScoreRouting got = Resolve(spec, Shape(1, 1, tokens, experts, 2));

  BatchLogits batch(LogitModel{.seed = 7, .experts = experts, .skew = 0.5}, 0, 0, tokens);
  const std::vector<double> x = batch.NextLayer();
  Rng gate(GateSeed(7, 0, 0, 0));
  std::vector<double> selected(experts, 0), prob(experts, 0);
  double z = 0;
  std::vector<uint32_t> first(tokens), second(tokens);
  std::vector<bool> keep(tokens);
  for (uint32_t t = 0; t < tokens; ++t) {
    const std::vector<double> row(x.begin() + t * experts, x.begin() + (t + 1) * experts);
    double max = row[0];
    for (double v : row) max = std::max(max, v);
    double sum = 0;
    for (double v : row) sum += std::exp(v - max);
    std::vector<double> p(experts);
    for (uint32_t e = 0; e < experts; ++e) p[e] = std::exp(row[e] - max) / sum;
    first[t] = Best(p);
    second[t] = Best(p, static_cast<int>(first[t]));
    const double w2 = p[second[t]] / (p[first[t]] + p[second[t]]);
    const double u = static_cast<double>(gate.Next() >> 11) * 0x1p-53;
    keep[t] = u < 2 * w2;
    ++selected[first[t]];
    ++selected[second[t]];
    for (uint32_t e = 0; e < experts; ++e) prob[e] += p[e];
    z += (max + std::log(sum)) * (max + std::log(sum));
  }
  // Capacity 2: first choices in token order, then the kept second choices in token order.
  std::vector<uint64_t> used(experts, 0), dropped(experts, 0);
  std::vector<std::vector<uint32_t>> slots(tokens);
  for (uint32_t t = 0; t < tokens; ++t) {
    if (used[first[t]] < 2) {
      ++used[first[t]];
      slots[t].push_back(first[t]);
    } else {
      ++dropped[first[t]];
    }
  }
  for (uint32_t t = 0; t < tokens; ++t) {
    if (!keep[t]) {
      ++dropped[second[t]];  // GShard's random routing
    } else if (used[second[t]] < 2) {
      ++used[second[t]];
      slots[t].push_back(second[t]);
    } else {
      ++dropped[second[t]];
    }
  }
  double aux = 0;
  uint64_t copies = 0, busiest = 0, drops = 0;
  for (uint32_t e = 0; e < experts; ++e) {
    aux += (selected[e] / (tokens * 2)) * (prob[e] / tokens);
    copies += used[e];
    busiest = std::max(busiest, used[e]);
    drops += dropped[e];
  }
  aux *= experts;

  REQUIRE(got.figures.size() == 1);
  const pb::RouterFigures& f = got.figures[0];
  CHECK(f.layer() == 0);
  CHECK(f.step() == 0);
  CHECK(f.aux_loss() == Approx(aux).epsilon(1e-12));
  CHECK(f.z_loss() == Approx(z / tokens).epsilon(1e-12));
  CHECK(f.dropped() == drops);
  CHECK(std::vector<uint64_t>(f.dropped_per_expert().begin(), f.dropped_per_expert().end()) ==
        dropped);
  CHECK(f.max_over_mean() == Approx(static_cast<double>(busiest) * experts / copies));
  // Eight tokens cannot all fit 4 experts x 2 places with 16 selections: something is dropped.
  CHECK(drops > 0);

  // The layer's slots: each token's dispatched experts, then kNotDispatched.
  REQUIRE(got.layers.size() == 1);
  const LayerRouting& layer = got.layers[0];
  CHECK(layer.top_k == 2);
  REQUIRE(layer.experts.size() == 1);
  for (uint32_t t = 0; t < tokens; ++t) {
    std::vector<uint32_t> want = slots[t];
    want.resize(2, kNotDispatched);
    CHECK(std::vector<uint32_t>(layer.experts[0].begin() + 2 * t,
                                layer.experts[0].begin() + 2 * t + 2) == want);
  }
}

TEST_CASE("Sigmoid top-k: between steps the bias moves towards the underloaded experts by gamma") {
  // 4 experts, top-1, 16 tokens on 1 rank, skew 2 (expert 0 hot: mu = -2 ln(1 + e)), gamma 0.1.
  // Step 0 chooses with bias 0: token t's expert is the argmax of its sigmoid scores, i.e. of its
  // logits. Load l_e over the 16 tokens, mean 16 / 4 = 4; after the step
  //   b_e = 0.1 x sign(4 - l_e): -0.1 for an expert above 4 selections, +0.1 below, 0 at 4.
  // Step 1 chooses by sigmoid(x) + b on its own logits.
  Spec spec;
  spec.set_router(Spec::TOPK_SIGMOID);
  spec.set_seed(3);
  spec.set_skew(2);
  spec.set_gamma(0.1);
  spec.set_steps(2);
  const uint32_t experts = 4, tokens = 16;
  const ScoreRouting got = Resolve(spec, Shape(1, 1, tokens, experts, 1));
  const LogitModel model{.seed = 3, .experts = experts, .skew = 2};

  BatchLogits step0(model, 0, 0, tokens);
  const std::vector<double> x0 = step0.NextLayer();
  std::vector<int> load(experts, 0);
  for (uint32_t t = 0; t < tokens; ++t) {
    ++load[Best(std::vector<double>(x0.begin() + t * experts, x0.begin() + (t + 1) * experts))];
  }
  std::vector<double> bias(experts);
  for (uint32_t e = 0; e < experts; ++e) bias[e] = load[e] < 4 ? 0.1 : load[e] > 4 ? -0.1 : 0.0;
  REQUIRE(load[0] > 4);  // the skew makes expert 0 hot, so its bias must fall
  REQUIRE(got.bias.size() == 1);
  CHECK(got.bias[0] == bias);
  CHECK(got.bias[0][0] == -0.1);

  BatchLogits step1(model, 1, 0, tokens);
  const std::vector<double> x1 = step1.NextLayer();
  std::vector<uint32_t> want(tokens);
  for (uint32_t t = 0; t < tokens; ++t) {
    std::vector<double> s(experts);
    for (uint32_t e = 0; e < experts; ++e) {
      s[e] = 1.0 / (1.0 + std::exp(-x1[t * experts + e])) + bias[e];
    }
    want[t] = Best(s);
  }
  CHECK(got.layers.at(0).experts.at(0) == want);
  REQUIRE(got.figures.size() == 2);
  CHECK(got.figures[1].step() == 1);
}

TEST_CASE("Score routing is deterministic: the same seed gives the same routing") {
  Spec spec;
  spec.set_router(Spec::GSHARD_TOP2);
  spec.set_seed(11);
  spec.set_skew(1);
  spec.set_layer_correlation(0.5);
  spec.set_capacity_factor(1.0);
  const RoutingShape shape = Shape(4, 3, 64, 8, 2);
  const ScoreRouting a = Resolve(spec, shape), b = Resolve(spec, shape);
  REQUIRE(a.layers.size() == 3);
  for (uint32_t l = 0; l < 3; ++l) {
    CHECK(a.layers[l].top_k == b.layers[l].top_k);
    CHECK(a.layers[l].experts == b.layers[l].experts);
    CHECK(a.figures[l].SerializeAsString() == b.figures[l].SerializeAsString());
  }
  spec.set_seed(12);
  const ScoreRouting c = Resolve(spec, shape);
  CHECK(c.layers[0].experts != a.layers[0].experts);
}

TEST_CASE("Layer correlation 1 draws the same noise in every layer") {
  // rho = 1: z(l) = 1 x z(l - 1) + sqrt(1 - 1) x fresh = z(l - 1), and mu is the same in every
  // layer, so every layer's logits, hence its routing, are layer 0's.
  Spec spec;
  spec.set_router(Spec::TOPK_SOFTMAX);
  spec.set_seed(5);
  spec.set_skew(0.3);
  spec.set_layer_correlation(1);
  const ScoreRouting r = Resolve(spec, Shape(2, 2, 32, 8, 2));
  CHECK(r.layers[1].experts == r.layers[0].experts);
  spec.set_layer_correlation(0);
  const ScoreRouting independent = Resolve(spec, Shape(2, 2, 32, 8, 2));
  CHECK(independent.layers[1].experts != independent.layers[0].experts);
}

TEST_CASE("Balanced routing has an aux loss near 1; skew raises it and the imbalance") {
  // E sum f_e P_e = E x E x (1/E)(1/E) = 1 when both are uniform. With 4096 tokens and no skew the
  // sample is within a few percent of that; skew 2 makes expert 0 take most selections.
  Spec spec;
  spec.set_router(Spec::TOPK_SOFTMAX);
  spec.set_seed(1);
  const RoutingShape shape = Shape(1, 1, 4096, 8, 2);
  const pb::RouterFigures flat = Resolve(spec, shape).figures.at(0);
  CHECK(flat.aux_loss() == Approx(1).margin(0.05));
  CHECK(flat.max_over_mean() < 1.1);
  CHECK(flat.dropped() == 0);
  spec.set_skew(2);
  const pb::RouterFigures skewed = Resolve(spec, shape).figures.at(0);
  CHECK(skewed.aux_loss() > 1.5);
  CHECK(skewed.max_over_mean() > 2);
}

TEST_CASE("Router collapse: with skew_growth the aux loss and the imbalance rise step by step") {
  // Step s draws with skew 0.5 x s: step 0 is balanced (aux loss ~1), and each later step sends
  // more of the selections to expert 0, so both figures rise monotonically over the 5 steps.
  Spec spec;
  spec.set_router(Spec::TOPK_SOFTMAX);
  spec.set_seed(3);
  spec.set_steps(5);
  spec.set_skew_growth(0.5);
  const ScoreRouting r = Resolve(spec, Shape(2, 1, 2048, 8, 2));
  REQUIRE(r.figures.size() == 5);
  CHECK(r.figures[0].aux_loss() == Approx(1).margin(0.05));
  for (size_t s = 1; s < r.figures.size(); ++s) {
    INFO("step " << s);
    CHECK(r.figures[s].step() == s);
    CHECK(r.figures[s].aux_loss() > r.figures[s - 1].aux_loss());
    CHECK(r.figures[s].max_over_mean() > r.figures[s - 1].max_over_mean());
  }
  CHECK(r.figures[4].aux_loss() > 1.5);
}

TEST_CASE("Expert choice: slots per token are the most experts a token got") {
  // 16 tokens, 4 experts, capacity factor 1: each expert takes ceil(16 / 4) = 4 tokens, 16 copies
  // in all, and the layer has as many slots per token as the busiest token's experts.
  Spec spec;
  spec.set_router(Spec::EXPERT_CHOICE);
  spec.set_seed(2);
  spec.set_capacity_factor(1);
  const ScoreRouting r = Resolve(spec, Shape(1, 1, 16, 4, 2));
  const LayerRouting& layer = r.layers.at(0);
  uint64_t copies = 0, most = 0;
  for (uint64_t t = 0; t < 16; ++t) {
    uint64_t n = 0;
    for (uint32_t j = 0; j < layer.top_k; ++j)
      n += layer.experts[0][t * layer.top_k + j] != kNotDispatched;
    copies += n;
    most = std::max(most, n);
  }
  CHECK(copies == 16);
  CHECK(layer.top_k == most);
  CHECK(r.figures.at(0).max_over_mean() == 1.0);  // 4 tokens each
}

TEST_CASE("Readers skip kNotDispatched slots") {
  // 2 ranks, 4 experts, EP 2 (experts 0-1 on rank 0, 2-3 on rank 1), 2 slots per token:
  //   rank 0: token 0 {1, X}, token 1 {2, 3};  rank 1: token 0 {X, X}, token 1 {0, X}.
  // Dispatch: rank 0 sends 1 copy to itself and 2 to rank 1 (one token, so 1 distinct token);
  // rank 1 sends 1 to rank 0. Loads: e0 1, e1 1, e2 1, e3 1.
  const uint32_t X = kNotDispatched;
  LayerRouting routing{0, 2, {{1, X, 2, 3}, {X, X, 0, X}}};
  pb::ModelSpec model;
  model.set_num_experts(4);
  pb::ParallelPlan spec;
  spec.set_ep(2);
  auto plan = ResolvePlan(spec, 2, model, nullptr);
  REQUIRE(plan.ok());
  const ExpertPlacement placement = ExpertPlacement::Contiguous(4, 2);
  const LayerWork w = ExpandLayer(routing, *plan, placement);
  CHECK(w.dispatch_tokens.at(0, 0) == 1);
  CHECK(w.dispatch_tokens.at(0, 1) == 2);
  CHECK(w.dispatch_tokens.at(1, 0) == 1);
  CHECK(w.dispatch_tokens.at(1, 1) == 0);
  CHECK(w.rank_tokens.at(0, 1) == 1);
  CHECK(w.expert_tokens == std::vector<std::vector<uint64_t>>{{1, 1}, {1, 1}});
  CHECK(w.tokens_in == std::vector<uint64_t>{2, 2});
  CHECK(w.TotalDropped() == 0);

  std::vector<std::vector<uint64_t>> loads;
  AddRoutingLoads(routing, 4, &loads);
  CHECK(loads == std::vector<std::vector<uint64_t>>{{1, 1, 1, 1}});

  // Expected node tokens (one GPU per node, 2 nodes) from rank 0's sample: token 0 reaches node 0
  // only, token 1 node 1 only, so each of a sender's 10 tokens reaches each node half the time.
  LayerWork expected = ExpectedLayer(std::vector<uint64_t>{1, 1, 1, 1}, 2, 10, 2, placement);
  SetExpectedNodeTokens(routing.experts[0], 2, 1, 10, placement, &expected);
  CHECK(expected.node_tokens.at(0, 0) == 5);
  CHECK(expected.node_tokens.at(0, 1) == 5);
}

TEST_CASE("Score routing refuses bad input with the field, the value and what is valid") {
  const RoutingShape shape = Shape(1, 1, 8, 4, 2);
  SECTION("a field the router does not use") {
    Spec spec;
    spec.set_router(Spec::GSHARD_TOP2);
    spec.set_groups(2);
    CHECK(ErrorOf(spec, shape) ==
          "routing.scores.groups = 2: does not apply to router GSHARD_TOP2; valid: only with "
          "router GROUP_LIMITED");
  }
  SECTION("the model's router stands for an unspecified one") {
    Spec spec;
    spec.set_capacity_factor(1.25);
    CHECK(ErrorOf(spec, shape) ==
          "routing.scores.capacity_factor = 1.25: does not apply to router TOPK_SOFTMAX (the "
          "model's router); valid: only with router SWITCH_TOP1 or GSHARD_TOP2 or EXPERT_CHOICE");
  }
  SECTION("a bias of the wrong length") {
    Spec spec;
    spec.set_router(Spec::TOPK_SIGMOID);
    spec.add_bias(0.1);
    spec.add_bias(0.2);
    CHECK(ErrorOf(spec, shape) ==
          "routing.scores.bias = 2 values: one bias per expert (the model has 4 experts); valid: "
          "4 values, or none");
  }
  SECTION("gamma on softmax scores") {
    Spec spec;
    spec.set_router(Spec::TOPK_SOFTMAX);
    spec.set_gamma(0.01);
    CHECK(ErrorOf(spec, shape) ==
          "routing.scores.gamma = 0.01: does not apply to router TOPK_SOFTMAX; valid: only with "
          "router TOPK_SIGMOID or GROUP_LIMITED");
  }
  SECTION("a group count that does not divide the experts") {
    Spec spec;
    spec.set_router(Spec::GROUP_LIMITED);
    spec.set_groups(3);
    spec.set_top_groups(1);
    CHECK(ErrorOf(spec, shape) ==
          "routing.scores.groups = 3: does not divide the 4 experts; valid: a divisor of 4");
  }
  SECTION("a layer correlation outside [0, 1]") {
    Spec spec;
    spec.set_layer_correlation(1.5);
    CHECK(ErrorOf(spec, shape) ==
          "routing.scores.layer_correlation = 1.5: out of range; valid: 0 to 1");
  }
}

TEST_CASE("The example scenario carries the router figures into the Result and the report") {
  // scenarios/gshard_top2_scores.pbtxt: 4 GPUs x 256 tokens x top-2 = 2,048 selections per step,
  // 4 steps, 1 layer. Every step is replayed: step s's dispatch matrix (diagonal included) holds
  // 2,048 minus that step's dropped selections (the readers skip the drops), and the workload's
  // layers are the last step's.
  const std::string path = testing::SourcePath("scenarios/gshard_top2_scores.pbtxt");
  auto loaded = sim::LoadScenario(path);
  REQUIRE(loaded.ok());
  const std::vector<pb::RouterFigures>& figures = loaded->workload.router_figures;
  REQUIRE(figures.size() == 4);
  REQUIRE(loaded->workload.replay.size() == 4);
  for (uint64_t s = 0; s < 4; ++s) {
    INFO("step " << s);
    CHECK(loaded->workload.replay[s].step == s);
    CHECK(loaded->workload.replay[s].layers.at(0).dispatch_tokens.Total() ==
          2048 - figures[s].dropped());
  }
  CHECK(loaded->workload.layers.at(0).dispatch_tokens.Total() == 2048 - figures[3].dropped());

  const testing::MoesimRun json = testing::Moesim({"simulate", path, "--json"});
  REQUIRE(json.status == 0);
  pb::Result result;
  REQUIRE(google::protobuf::util::JsonStringToMessage(json.out, &result).ok());
  REQUIRE(result.router_figures_size() == 4);
  REQUIRE(result.steps_size() == 4);  // each step's total; the phases are the slowest step's
  for (int i = 0; i < 4; ++i) {
    CHECK(result.router_figures(i).step() == static_cast<uint64_t>(i));
    CHECK(result.router_figures(i).SerializeAsString() == figures[i].SerializeAsString());
  }

  const testing::MoesimRun text = testing::Moesim({"simulate", path});
  REQUIRE(text.status == 0);
  CHECK_THAT(text.out, Catch::Contains("aux loss"));
  // The last row: step 3, layer 0, then the figures as the report rounds them.
  char row[64];
  std::snprintf(row, sizeof row, "       3     0 %9.4f %9.4f", figures[3].aux_loss(),
                figures[3].z_loss());
  CHECK_THAT(text.out, Catch::Contains(row));
}

}  // namespace moesim::models

namespace moesim::models {
namespace {

// A float32 .npy [rows, columns] holding `values`, row-major (format version 1: the magic, the
// header length, the header dict padded with spaces to a multiple of 64 bytes with the prefix).
std::string WriteNpy(const std::string& name, uint64_t rows, uint64_t columns,
                     const std::vector<float>& values) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) +
                     ", " + std::to_string(columns) + "), }";
  while ((10 + dict.size() + 1) % 64 != 0) dict += ' ';
  dict += '\n';
  std::string bytes = "\x93NUMPY";
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(dict.size() & 0xff);
  bytes += static_cast<char>(dict.size() >> 8);
  bytes += dict;
  bytes.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  const std::string path = testing::TempPath(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

}  // namespace

TEST_CASE("Score routing from a .npy of router logits: each batch its rows, the router on them") {
  // 2 GPUs x 3 tokens, 4 experts, top-1 softmax: the largest logit of each row wins. Rank 0 takes
  // rows 0-2, rank 1 rows 3-5 (one step, one layer).
  const std::vector<float> x = {
      5, 0, 0, 0,   0, 0, 7, 0,   0, 1, 0, 0,    // rank 0: experts 0, 2, 1
      0, 0, 0, 3,   0, 0, 2, 1,   9, 0, 0, -1};  // rank 1: experts 3, 2, 0
  const std::string path = WriteNpy("moesim_logits.npy", 6, 4, x);
  Spec spec;
  spec.set_router(Spec::TOPK_SOFTMAX);
  spec.set_logits_file(path);
  const ScoreRouting r = Resolve(spec, Shape(2, 1, 3, 4, 1));
  REQUIRE(r.layers.size() == 1);
  CHECK(r.layers[0].experts[0] == std::vector<uint32_t>{0, 2, 1});
  CHECK(r.layers[0].experts[1] == std::vector<uint32_t>{3, 2, 0});
  // z-loss from the file's logits: the mean of (ln sum_e exp x_e)^2 over the 6 tokens.
  double z = 0;
  for (size_t t = 0; t < 6; ++t) {
    double sum = 0;
    for (size_t e = 0; e < 4; ++e) sum += std::exp(static_cast<double>(x[t * 4 + e]));
    z += std::log(sum) * std::log(sum);
  }
  CHECK(r.figures.at(0).z_loss() == Approx(z / 6).epsilon(1e-12));
  CHECK_THAT(r.layers[0].note, Catch::Contains("on the logits of " + path));

  // The file must hold steps x layers x GPUs x tokens rows of E columns.
  CHECK_THAT(ErrorOf(spec, Shape(2, 1, 4, 4, 1)),
             Catch::Contains("routing.scores.logits_file = \"" + path +
                             "\": holds [6, 4]; valid: [8, 4]: steps 1 x layers 1 x GPUs 2 x "
                             "tokens_per_gpu 4 rows, one column per expert"));
  // Drawing fields do not apply.
  spec.set_skew(1);
  CHECK_THAT(ErrorOf(spec, Shape(2, 1, 3, 4, 1)),
             Catch::Contains("routing.scores.skew: shapes drawn logits; logits_file gives them"));
  std::filesystem::remove(path);
  // An integer array is not logits.
  spec.clear_skew();
  spec.set_logits_file(testing::SourcePath("tests/fixtures/traces/topk_int32.npy"));
  CHECK_THAT(ErrorOf(spec, Shape(2, 1, 3, 8, 1)),
             Catch::Contains("router logits must be little-endian floats; valid: <f4, <f8"));
}

}  // namespace moesim::models
