#include "models/score_routing.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <string>

#include "models/field_errors.h"
#include "models/npy.h"
#include "models/routers.h"
#include "proto/checked.h"

namespace moesim::models {
namespace {

using Spec = pb::ScoreRouting;

std::string RouterName(Spec::Router r) {
  const std::string name = Spec::Router_Name(r);
  return name.empty() ? std::to_string(static_cast<int>(r)) : name;
}

// Errors about routing.scores.<field>.
using Errors = FieldErrors;

// The router of a ScoreRouting, resolved and checked.
struct Router {
  Spec::Router kind = Spec::TOPK_SOFTMAX;  // never ROUTER_UNSPECIFIED
  ScoreFunction score = ScoreFunction::kSoftmax;
  uint32_t k = 1;  // selections per token (expert choice: the model's top_k, for its capacity)
  std::optional<RouterGroupLimit> group;
  std::optional<double> capacity_factor;
  std::vector<double> bias;  // empty or one per expert
  double gamma = 0;          // > 0 only where the bias update runs
};

Spec::Router ResolveKind(const Spec& spec, const RoutingShape& shape) {
  if (spec.router() != Spec::ROUTER_UNSPECIFIED) return spec.router();
  return shape.router == pb::ModelSpec::SIGMOID ? Spec::TOPK_SIGMOID : Spec::TOPK_SOFTMAX;
}

// Rejects each field given with a router that does not use it.
Status CheckApplicable(const Spec& spec, Spec::Router kind, ScoreFunction score,
                       const Errors& errors) {
  using R = std::vector<int>;
  const R biased = {Spec::TOPK_SOFTMAX, Spec::TOPK_SIGMOID, Spec::GROUP_LIMITED, Spec::SWITCH_TOP1},
          sigmoid = {Spec::TOPK_SIGMOID, Spec::GROUP_LIMITED}, grouped = {Spec::GROUP_LIMITED},
          capacity = {Spec::SWITCH_TOP1, Spec::GSHARD_TOP2, Spec::EXPERT_CHOICE};
  const FieldUse fields[] = {
      {"bias", spec.bias_size() > 0, std::to_string(spec.bias_size()) + " values", biased},
      {"gamma", spec.has_gamma(), NumberText(spec.gamma()), sigmoid},
      {"groups", spec.has_groups(), std::to_string(spec.groups()), grouped},
      {"top_groups", spec.has_top_groups(), std::to_string(spec.top_groups()), grouped},
      {"score_top", spec.has_score_top(), std::to_string(spec.score_top()), grouped},
      {"capacity_factor", spec.has_capacity_factor(), NumberText(spec.capacity_factor()), capacity},
  };
  const std::string name =
      RouterName(kind) + (spec.router() == Spec::ROUTER_UNSPECIFIED ? " (the model's router)" : "");
  MOESIM_RETURN_IF_ERROR(RejectUnused(
      fields, kind, "router", name, [](int r) { return RouterName(static_cast<Spec::Router>(r)); },
      errors));
  if (spec.has_gamma() && score != ScoreFunction::kSigmoid) {
    return errors.At("gamma", NumberText(spec.gamma()),
                     "the bias update runs on sigmoid scores; this GROUP_LIMITED router scores "
                     "with the model's softmax",
                     "a model with router: SIGMOID, or no gamma");
  }
  return Status::Ok();
}

// A real field, given or not, checked against the range proto/scenario.proto declares for it (as
// TextFile does on parsing; here too for specs built in code).
StatusOr<double> Real(bool given, double value, double fallback, const char* field,
                      const Errors& errors) {
  if (!given) return fallback;
  MOESIM_RETURN_IF_ERROR(CheckFigure(value, DeclaredRange<pb::ScoreRouting>(field),
                                     errors.Locate(field), errors.Path(field)));
  return value;
}

StatusOr<Router> ResolveRouter(const Spec& spec, const RoutingShape& shape, const Errors& errors) {
  Router r;
  r.kind = ResolveKind(spec, shape);
  const uint32_t experts = shape.num_experts;
  const bool sigmoid_model = shape.router == pb::ModelSpec::SIGMOID;
  switch (r.kind) {
    case Spec::TOPK_SOFTMAX:
      r.k = shape.top_k;
      break;
    case Spec::TOPK_SIGMOID:
      r.score = ScoreFunction::kSigmoid;
      r.k = shape.top_k;
      break;
    case Spec::GROUP_LIMITED:
      r.score = sigmoid_model ? ScoreFunction::kSigmoid : ScoreFunction::kSoftmax;
      r.k = shape.top_k;
      break;
    case Spec::SWITCH_TOP1:
      r.k = 1;
      break;
    case Spec::GSHARD_TOP2:
      r.k = 2;
      break;
    case Spec::EXPERT_CHOICE:
      r.k = shape.top_k;
      break;
    default:
      return errors.At("router", RouterName(spec.router()), "unknown router",
                       "TOPK_SOFTMAX, TOPK_SIGMOID, GROUP_LIMITED, SWITCH_TOP1, GSHARD_TOP2 or "
                       "EXPERT_CHOICE");
  }
  MOESIM_RETURN_IF_ERROR(CheckApplicable(spec, r.kind, r.score, errors));
  if (r.k == 0 || r.k > experts) {
    return errors.At("router", RouterName(r.kind),
                     "chooses " + std::to_string(r.k) + " experts per token; the model has " +
                         std::to_string(experts),
                     "a router choosing at most " + std::to_string(experts) + " experts");
  }
  if (spec.bias_size() > 0) {
    if (static_cast<uint32_t>(spec.bias_size()) != experts) {
      return errors.At(
          "bias", std::to_string(spec.bias_size()) + " values",
          "one bias per expert (the model has " + std::to_string(experts) + " experts)",
          std::to_string(experts) + " values, or none");
    }
    for (int e = 0; e < spec.bias_size(); ++e) {
      if (!std::isfinite(spec.bias(e))) {
        return errors.At("bias[" + std::to_string(e) + "]", NumberText(spec.bias(e)), "not finite",
                         "finite numbers");
      }
    }
    r.bias.assign(spec.bias().begin(), spec.bias().end());
  }
  if (r.score == ScoreFunction::kSigmoid) {
    // DeepSeek-V3 §2.1.2 (its bias update speed in pre-training: 0.001).
    MOESIM_ASSIGN_OR_RETURN(r.gamma,
                            Real(spec.has_gamma(), spec.gamma(), 0.001, "gamma", errors));
  }
  if (r.kind == Spec::GROUP_LIMITED) {
    if (!spec.has_groups() || !spec.has_top_groups()) {
      return errors.At(spec.has_groups() ? "top_groups" : "groups", "",
                       "missing: GROUP_LIMITED needs groups and top_groups",
                       "groups: G (dividing the experts) and top_groups: M");
    }
    const uint32_t g = spec.groups();
    if (g == 0 || experts % g != 0) {
      return errors.At("groups", std::to_string(g),
                       "does not divide the " + std::to_string(experts) + " experts",
                       "a divisor of " + std::to_string(experts));
    }
    const uint32_t size = experts / g;
    const uint32_t least = (r.k + size - 1) / size;
    if (spec.top_groups() < std::max(least, 1u) || spec.top_groups() > g) {
      return errors.At("top_groups", std::to_string(spec.top_groups()),
                       "outside the groups, or too few experts for top_k = " + std::to_string(r.k),
                       std::to_string(std::max(least, 1u)) + " to " + std::to_string(g));
    }
    const uint32_t score_top = spec.has_score_top() ? spec.score_top() : 1;
    if (score_top == 0 || score_top > size) {
      return errors.At("score_top", std::to_string(score_top),
                       "outside a group's " + std::to_string(size) + " experts",
                       "1 to " + std::to_string(size));
    }
    r.group = RouterGroupLimit{g, spec.top_groups(), score_top};
  }
  if (r.kind == Spec::EXPERT_CHOICE) {
    MOESIM_ASSIGN_OR_RETURN(
        const double cf, Real(spec.has_capacity_factor(), spec.capacity_factor(), r.k,
                              "capacity_factor", errors));
    r.capacity_factor = cf;
  } else if (spec.has_capacity_factor()) {
    MOESIM_ASSIGN_OR_RETURN(const double cf, Real(true, spec.capacity_factor(), 0,
                                                  "capacity_factor", errors));
    r.capacity_factor = cf;
  }
  if (r.kind == Spec::GSHARD_TOP2 && experts < 2) {
    return errors.At("router", "GSHARD_TOP2", "top-2 routing needs two experts",
                     "a model with at least 2 experts");
  }
  return r;
}

// One rank's batch through the router.
StatusOr<RouterOutput> RouteBatch(const Router& r, const Logits& logits,
                                  const std::vector<double>& bias, uint64_t gate_seed) {
  switch (r.kind) {
    case Spec::GSHARD_TOP2: {
      Rng gate(gate_seed);
      MOESIM_ASSIGN_OR_RETURN(RouterOutput out, GShardTop2(logits, gate));
      if (!r.capacity_factor) return out;
      // GShard Algorithm 1: every first choice claims its place before any second choice.
      return ApplyCapacity(out, {.capacity_factor = *r.capacity_factor,
                                 .top_k = 2,
                                 .order = ClaimOrder::kChoiceRankThenToken});
    }
    case Spec::EXPERT_CHOICE:
      return ExpertChoice(logits, *r.capacity_factor);
    default: {
      TopKOptions options{.top_k = r.k, .score = r.score, .selection_bias = bias};
      options.normalize = r.score == ScoreFunction::kSigmoid;
      options.group_limit = r.group;
      MOESIM_ASSIGN_OR_RETURN(RouterOutput out, RouteTopK(logits, options));
      if (!r.capacity_factor) return out;
      return ApplyCapacity(out, {.capacity_factor = *r.capacity_factor, .top_k = r.k});
    }
  }
}

// Sums over every rank's tokens of one layer in one step, from which its figures follow.
struct Tally {
  explicit Tally(uint32_t experts)
      : selected(experts, 0),
        dispatched(experts, 0),
        dropped(experts, 0),
        probability(experts, 0) {}
  std::vector<uint64_t> selected;    // the router's selections of e, dropped or not
  std::vector<uint64_t> dispatched;  // token copies sent to e
  std::vector<uint64_t> dropped;
  std::vector<double> probability;  // sum over tokens of P_e(token)
  double z = 0;                     // sum over tokens of lse(x)^2
  uint64_t tokens = 0;
};

void AddBatch(const RouterOutput& out, const std::vector<double>& x, ScoreFunction score,
              Tally& tally) {
  const uint32_t experts = out.num_experts;
  for (uint32_t e = 0; e < experts; ++e) {
    tally.dispatched[e] += out.expert_tokens[e];
    tally.dropped[e] += out.dropped_per_expert[e];
    tally.selected[e] += out.expert_tokens[e] + out.dropped_per_expert[e];
  }
  std::vector<double> p(experts);
  for (uint64_t t = 0; t < out.tokens(); ++t) {
    const double* row = x.data() + t * experts;
    const double max = *std::max_element(row, row + experts);
    double sum = 0;
    for (uint32_t e = 0; e < experts; ++e) sum += std::exp(row[e] - max);
    const double lse = max + std::log(sum);
    tally.z += lse * lse;
    // P_e: the softmax, or the sigmoids normalized to sum 1 (DeepSeek-V3's balance loss, eq. 19).
    double total = 0;
    for (uint32_t e = 0; e < experts; ++e) {
      total += p[e] = score == ScoreFunction::kSoftmax ? std::exp(row[e] - max) / sum
                                                       : 1.0 / (1.0 + std::exp(-row[e]));
    }
    for (uint32_t e = 0; e < experts; ++e) tally.probability[e] += total > 0 ? p[e] / total : 0;
  }
  tally.tokens += out.tokens();
}

pb::RouterFigures Figures(const Tally& tally, uint32_t layer, uint64_t step) {
  pb::RouterFigures f;
  f.set_layer(layer);
  f.set_step(step);
  const size_t experts = tally.selected.size();
  uint64_t selections = 0, copies = 0, busiest = 0, dropped = 0;
  for (size_t e = 0; e < experts; ++e) {
    selections += tally.selected[e];
    copies += tally.dispatched[e];
    busiest = std::max(busiest, tally.dispatched[e]);
    dropped += tally.dropped[e];
    f.add_dropped_per_expert(tally.dropped[e]);
  }
  double aux = 0;
  if (selections > 0 && tally.tokens > 0) {
    for (size_t e = 0; e < experts; ++e) {
      const double fraction = static_cast<double>(tally.selected[e]) / selections;
      aux += fraction * (tally.probability[e] / static_cast<double>(tally.tokens));
    }
  }
  f.set_aux_loss(static_cast<double>(experts) * aux);
  f.set_z_loss(tally.tokens > 0 ? tally.z / static_cast<double>(tally.tokens) : 0);
  f.set_max_over_mean(copies > 0 ? static_cast<double>(busiest) * experts / copies : 0);
  f.set_dropped(dropped);
  return f;
}

// DeepSeek-V3 §2.1.2: b_e += gamma * sign(mean load - load_e), load = selections.
void UpdateBias(const Tally& tally, double gamma, std::vector<double>& bias) {
  const size_t experts = tally.selected.size();
  if (bias.empty()) bias.assign(experts, 0.0);
  uint64_t sum = 0;
  for (uint64_t s : tally.selected) sum += s;
  const double mean = static_cast<double>(sum) / static_cast<double>(experts);
  for (size_t e = 0; e < experts; ++e) {
    const double load = static_cast<double>(tally.selected[e]);
    bias[e] += gamma * (load < mean ? 1.0 : load > mean ? -1.0 : 0.0);
  }
}

// A router output's experts per token, in choice order (the layer's slots are filled later).
struct Chosen {
  std::vector<uint64_t> offsets;
  std::vector<uint32_t> ids;
};

Chosen Keep(const RouterOutput& out) {
  Chosen c{out.offsets, {}};
  c.ids.reserve(out.choices.size());
  for (const Choice& choice : out.choices) c.ids.push_back(choice.expert);
  return c;
}

// A layer's routing with `k` slots per token, the unused ones kNotDispatched.
LayerRouting Flatten(const std::vector<Chosen>& ranks, uint32_t layer, uint32_t k) {
  LayerRouting out;
  out.layer = layer;
  out.top_k = k;
  for (const Chosen& c : ranks) {
    const uint64_t tokens = c.offsets.size() - 1;
    std::vector<uint32_t> slots(tokens * k, kNotDispatched);
    for (uint64_t t = 0; t < tokens; ++t) {
      std::copy(c.ids.begin() + c.offsets[t], c.ids.begin() + c.offsets[t + 1],
                slots.begin() + t * k);
    }
    out.experts.push_back(std::move(slots));
  }
  return out;
}

// logits_file: the .npy of router logits, checked against the shape: E columns and steps x layers
// x ranks x tokens rows. Drawing fields do not apply with it.
StatusOr<NpyMatrix> ReadLogitsFile(const Spec& spec, const RoutingShape& shape, uint32_t steps,
                                   const TextFile* file, const Errors& errors) {
  const std::pair<const char*, bool> drawing[] = {
      {"skew", spec.has_skew()},
      {"skew_growth", spec.has_skew_growth()},
      {"logit_std", spec.has_logit_std()},
      {"drift", spec.has_drift()},
      {"layer_correlation", spec.has_layer_correlation()}};
  for (const auto& [field, given] : drawing) {
    if (given) {
      return errors.At(field, "", "shapes drawn logits; logits_file gives them",
                       "no " + std::string(field) + " with logits_file");
    }
  }
  std::filesystem::path path(spec.logits_file());
  if (path.is_relative() && file != nullptr) {
    path = std::filesystem::path(file->path()).parent_path() / path;
  }
  path = path.lexically_normal();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return errors.At("logits_file", "\"" + spec.logits_file() + "\"",
                     "no such file: " + path.string() +
                         (file ? " (relative paths start at the scenario's folder)" : ""),
                     "a .npy float array [rows, experts]");
  }
  MOESIM_ASSIGN_OR_RETURN(NpyMatrix m, ReadNpyFloats(path.string()));
  const uint64_t rows = uint64_t{steps} * shape.layers * shape.ranks * shape.tokens_per_rank;
  if (m.columns != shape.num_experts || m.rows != rows) {
    return errors.At("logits_file", "\"" + spec.logits_file() + "\"",
                     "holds [" + std::to_string(m.rows) + ", " + std::to_string(m.columns) + "]",
                     "[" + std::to_string(rows) + ", " + std::to_string(shape.num_experts) +
                         "]: steps " + std::to_string(steps) + " x layers " +
                         std::to_string(shape.layers) + " x GPUs " + std::to_string(shape.ranks) +
                         " x tokens_per_gpu " + std::to_string(shape.tokens_per_rank) +
                         " rows, one column per expert");
  }
  return m;
}

}  // namespace

BatchLogits::BatchLogits(const LogitModel& model, uint64_t step, uint32_t rank, uint64_t tokens)
    : model_(model), step_(step), tokens_(tokens), rng_(Rng::Mix(model.seed, step, rank)) {
  const uint32_t experts = model.experts;
  mu_.resize(experts);
  const double shift = model.drift * static_cast<double>(step);
  const double skew = model.skew + model.skew_growth * static_cast<double>(step);
  for (uint32_t e = 0; e < experts; ++e) {
    // Popularity position in [0, E): 0 is the hottest.
    double position = std::fmod(static_cast<double>(e) - shift, static_cast<double>(experts));
    if (position < 0) position += experts;
    mu_[e] = skew == 0 ? 0.0 : -skew * std::log1p(position);
  }
}

const std::vector<double>& BatchLogits::NextLayer() {
  constexpr double kSqrt3 = 1.7320508075688772;  // scales Irwin-Hall(4) to variance 1
  const uint32_t experts = model_.experts;
  const uint64_t n = tokens_ * experts;
  const double rho = first_ ? 0.0 : model_.layer_correlation;
  const double fresh = first_ ? 1.0 : std::sqrt(1.0 - rho * rho);
  z_.resize(n, 0.0);
  x_.resize(n);
  for (uint64_t i = 0; i < n; ++i) {
    double u = 0;
    for (int j = 0; j < 4; ++j) u += static_cast<double>(rng_.Next() >> 11) * 0x1p-53;
    z_[i] = rho * z_[i] + fresh * ((u - 2.0) * kSqrt3);
    x_[i] = mu_[i % experts] + model_.logit_std * z_[i];
  }
  first_ = false;
  return x_;
}

uint64_t GateSeed(uint64_t seed, uint64_t step, uint32_t layer, uint32_t rank) {
  constexpr uint64_t kGate = 0x67617465;  // "gate": a stream apart from the logits' Mix(seed, ..)
  return Rng::Mix(Rng::Mix(seed, step, rank), layer, kGate);
}

StatusOr<ScoreRouting> ResolveScoreRouting(const pb::ScoreRouting& spec, const RoutingShape& shape,
                                           const TextFile* file) {
  const Errors errors(file, "routing.scores");
  MOESIM_ASSIGN_OR_RETURN(const Router router, ResolveRouter(spec, shape, errors));
  LogitModel model{.seed = spec.seed(), .experts = shape.num_experts};
  MOESIM_ASSIGN_OR_RETURN(model.skew,
                          Real(spec.has_skew(), spec.skew(), 0, "skew", errors));
  MOESIM_ASSIGN_OR_RETURN(model.skew_growth, Real(spec.has_skew_growth(), spec.skew_growth(), 0,
                                                  "skew_growth", errors));
  MOESIM_ASSIGN_OR_RETURN(model.logit_std, Real(spec.has_logit_std(), spec.logit_std(), 1,
                                                "logit_std", errors));
  MOESIM_ASSIGN_OR_RETURN(model.drift,
                          Real(spec.has_drift(), spec.drift(), 0, "drift", errors));
  MOESIM_ASSIGN_OR_RETURN(model.layer_correlation,
                          Real(spec.has_layer_correlation(), spec.layer_correlation(), 0,
                               "layer_correlation", errors));
  const uint32_t steps = spec.has_steps() ? spec.steps() : 1;
  MOESIM_RETURN_IF_ERROR(CheckFigure(steps, DeclaredRange<pb::ScoreRouting>("steps"),
                                     errors.Locate("steps"), errors.Path("steps")));

  const uint32_t layers = shape.layers, experts = shape.num_experts;
  std::optional<NpyMatrix> read;  // logits_file: every batch's logits, one after another
  if (!spec.logits_file().empty()) {
    MOESIM_ASSIGN_OR_RETURN(read, ReadLogitsFile(spec, shape, steps, file, errors));
  }
  std::vector<std::vector<double>> bias(layers, router.bias);  // per layer, moved by the update
  ScoreRouting out;
  std::vector<std::vector<Chosen>> chosen(layers, std::vector<Chosen>(shape.ranks));
  // One step's choices as each layer's routing (the note says which step of how many).
  auto flatten = [&](uint32_t step) {
    std::vector<LayerRouting> routed;
    for (uint32_t layer = 0; layer < layers; ++layer) {
      uint32_t k = router.k;
      if (router.kind == Spec::EXPERT_CHOICE) {
        // As many slots as the most experts one token got (at least 1).
        uint64_t most = 1;
        for (const Chosen& c : chosen[layer]) {
          for (size_t t = 0; t + 1 < c.offsets.size(); ++t) {
            most = std::max(most, c.offsets[t + 1] - c.offsets[t]);
          }
        }
        k = static_cast<uint32_t>(most);
      }
      routed.push_back(Flatten(chosen[layer], layer, k));
      routed.back().note =
          "router " + RouterName(router.kind) +
          (read ? " on the logits of " + spec.logits_file()
                : " on drawn scores (seed " + std::to_string(spec.seed()) + ")") +
          (steps > 1 ? ", step " + std::to_string(step) + " of " + std::to_string(steps)
                     : std::string()) +
          (router.kind == Spec::EXPERT_CHOICE ? ", " + std::to_string(k) + " slots per token"
                                              : std::string());
    }
    return routed;
  };
  for (uint32_t step = 0; step < steps; ++step) {
    std::vector<Tally> tallies(layers, Tally(experts));
    for (uint32_t rank = 0; rank < shape.ranks; ++rank) {
      BatchLogits batch(model, step, rank, read ? 0 : shape.tokens_per_rank);
      for (uint32_t layer = 0; layer < layers; ++layer) {
        std::vector<double> from_file;
        if (read) {
          const uint64_t n = shape.tokens_per_rank * experts;
          const uint64_t first = ((uint64_t{step} * layers + layer) * shape.ranks + rank) * n;
          from_file.assign(read->values.begin() + first, read->values.begin() + first + n);
        }
        const std::vector<double>& x = read ? from_file : batch.NextLayer();
        MOESIM_ASSIGN_OR_RETURN(const Logits logits, Logits::FromRowMajor(x, experts));
        MOESIM_ASSIGN_OR_RETURN(
            const RouterOutput routed,
            RouteBatch(router, logits, bias[layer], GateSeed(spec.seed(), step, layer, rank)));
        AddBatch(routed, x, router.score, tallies[layer]);
        chosen[layer][rank] = Keep(routed);
      }
    }
    if (step + 1 == steps) out.bias = bias;
    if (steps > 1) out.steps.push_back(flatten(step));
    for (uint32_t layer = 0; layer < layers; ++layer) {
      out.figures.push_back(Figures(tallies[layer], layer, step));
      if (router.gamma > 0) UpdateBias(tallies[layer], router.gamma, bias[layer]);
    }
  }
  out.layers = steps > 1 ? out.steps.back() : flatten(0);
  return out;
}

}  // namespace moesim::models
