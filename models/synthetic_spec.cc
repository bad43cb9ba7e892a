#include "models/synthetic_spec.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <utility>

#include "models/count_routing.h"
#include "models/expert_counts.h"
#include "models/field_errors.h"
#include "models/synthetic.h"

namespace moesim::models {
namespace {

using Spec = pb::SyntheticRouting;

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

std::string DistributionName(Spec::Distribution d) {
  const std::string name = Spec::Distribution_Name(d);
  return name.empty() ? std::to_string(static_cast<int>(d)) : name;
}

// Errors about routing.synthetic.<field>.
using Errors = FieldErrors;

// Rejects each parameter given with a distribution that does not use it.
Status CheckApplicable(const Spec& spec, const Errors& errors) {
  using D = std::vector<int>;
  const D zipf = {Spec::ZIPF}, collapse = {Spec::COLLAPSE}, hot = {Spec::ZIPF, Spec::COLLAPSE},
          drawn = {Spec::UNIFORM, Spec::ZIPF, Spec::COLLAPSE}, measured = {Spec::MEASURED},
          limited = {Spec::UNIFORM, Spec::ZIPF}, uniform = {Spec::UNIFORM};
  const FieldUse fields[] = {
      {"zipf_alpha", spec.has_zipf_alpha(), NumberText(spec.zipf_alpha()), zipf},
      {"shuffle_experts", spec.has_shuffle_experts(), spec.shuffle_experts() ? "true" : "false",
       hot},
      {"collapse_fraction", spec.has_collapse_fraction(), NumberText(spec.collapse_fraction()),
       collapse},
      {"collapse_hot_experts", spec.has_collapse_hot_experts(),
       std::to_string(spec.collapse_hot_experts()), collapse},
      {"drift_period_steps", spec.has_drift_period_steps(),
       std::to_string(spec.drift_period_steps()), hot},
      {"step", spec.has_step(), std::to_string(spec.step()), hot},
      {"layer_correlation", spec.has_layer_correlation(), NumberText(spec.layer_correlation()),
       drawn},
      {"counts_file", !spec.counts_file().empty(), Quoted(spec.counts_file()), measured},
      {"counts_model", !spec.counts_model().empty(), Quoted(spec.counts_model()), measured},
      {"counts_domain", !spec.counts_domain().empty(), Quoted(spec.counts_domain()), measured},
      {"counts_layers", spec.counts_layers_size() > 0,
       std::to_string(spec.counts_layers_size()) + " values", measured},
      {"router_groups", spec.has_router_groups(), std::to_string(spec.router_groups()), limited},
      {"router_group_topk", spec.has_router_group_topk(), std::to_string(spec.router_group_topk()),
       limited},
      {"router_group_score_top", spec.has_router_group_score_top(),
       std::to_string(spec.router_group_score_top()), uniform},
  };
  return RejectUnused(
      fields, spec.distribution(), "distribution", DistributionName(spec.distribution()),
      [](int d) { return DistributionName(static_cast<Spec::Distribution>(d)); }, errors);
}

// x in [0, 1] (NaN is not).
bool IsFraction(double x) { return x >= 0 && x <= 1; }

// The measured counts of each simulated layer, checked against the model and the token count, and a
// note saying where they come from and whether they were scaled.
struct Measured {
  std::vector<std::vector<uint64_t>> per_layer;  // index = simulated layer
  std::vector<std::string> notes;
};

StatusOr<Measured> LoadMeasured(const Spec& spec, const RoutingShape& shape, const TextFile* file,
                                const Errors& errors) {
  const char* csv_valid = "a CSV with the header model,domain,layer,expert,count";
  if (spec.counts_file().empty()) {
    return errors.At("counts_file", "", "missing: MEASURED reads its counts from a file",
                     csv_valid);
  }
  if (spec.counts_model().empty()) {
    return errors.At("counts_model", "", "missing: which model's counts to use",
                     "a model named in " + spec.counts_file());
  }
  if (spec.counts_domain().empty()) {
    return errors.At("counts_domain", "", "missing: which domain's counts to use",
                     "a domain named in " + spec.counts_file());
  }
  const int given = spec.counts_layers_size();
  if (given > 1 && static_cast<uint32_t>(given) != shape.layers) {
    return errors.At(
        "counts_layers", std::to_string(given) + " values",
        "neither one layer for all nor one per simulated layer (workload.moe_layers = " +
            std::to_string(shape.layers) + ")",
        "none, 1 or " + std::to_string(shape.layers) + " values");
  }

  std::filesystem::path path(spec.counts_file());
  if (path.is_relative() && file != nullptr) {
    path = std::filesystem::path(file->path()).parent_path() / path;
  }
  path = path.lexically_normal();  // "scenarios/../../shared/x" -> "../shared/x", for messages
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return errors.At("counts_file", Quoted(spec.counts_file()),
                     "no such file: " + path.string() +
                         (file ? " (relative paths start at the scenario's folder)" : ""),
                     csv_valid);
  }
  MOESIM_ASSIGN_OR_RETURN(const ExpertCounts table, ExpertCounts::ReadCsv(path.string()));

  const std::string& model = spec.counts_model();
  const std::string& domain = spec.counts_domain();
  const std::vector<std::string> models = table.Models();
  if (std::find(models.begin(), models.end(), model) == models.end()) {
    return errors.At("counts_model", Quoted(model), "not in " + path.string(), Join(models));
  }
  const std::vector<std::string> domains = table.Domains(model);
  if (std::find(domains.begin(), domains.end(), domain) == domains.end()) {
    return errors.At("counts_domain", Quoted(domain), "no counts of " + model + " for it",
                     Join(domains));
  }
  const std::vector<uint32_t> layers = table.Layers(model, domain);
  std::vector<std::string> layer_names;
  for (uint32_t l : layers) layer_names.push_back(std::to_string(l));

  const uint64_t tokens = uint64_t{shape.ranks} * shape.tokens_per_rank;
  const uint64_t selections = tokens * shape.top_k;
  Measured out;
  for (uint32_t l = 0; l < shape.layers; ++l) {
    const int index = given == 0 ? -1 : given == 1 ? 0 : static_cast<int>(l);
    const uint32_t source = index < 0 ? 0 : spec.counts_layers(index);
    const std::string field =
        index < 0 ? "counts_layers" : "counts_layers[" + std::to_string(index) + "]";
    const std::string value = index < 0 ? "absent (layer 0)" : std::to_string(source);
    const std::string name = model + "/" + domain + "/" + std::to_string(source);
    const std::vector<uint64_t>* counts = table.Find(model, domain, source);
    if (counts == nullptr) {
      return errors.At(field, value, "no counts of " + model + "/" + domain + " for this layer",
                       Join(layer_names));
    }
    if (counts->size() != shape.num_experts) {
      return errors.At(
          "counts_model", Quoted(model),
          "the counts of " + name + " name " + std::to_string(counts->size()) +
              " experts; the model has " + std::to_string(shape.num_experts),
          "counts measured on a model with " + std::to_string(shape.num_experts) + " experts");
    }
    uint64_t sum = 0;
    for (uint64_t c : *counts) sum += c;
    if (sum == 0) {
      return errors.At(field, value, "every count of " + name + " is 0", "a layer with selections");
    }
    const bool scaled = sum != selections;
    const std::vector<uint64_t> target = scaled ? ScaleCounts(*counts, selections) : *counts;
    for (uint32_t e = 0; e < shape.num_experts; ++e) {
      if (target[e] > tokens) {
        return errors.At(
            field, value,
            "expert " + std::to_string(e) + " of " + name + " has " + std::to_string((*counts)[e]) +
                " of " + std::to_string(sum) + " selections (" + std::to_string(target[e]) +
                " of " + std::to_string(selections) + " here), more than the layer's " +
                std::to_string(tokens) + " tokens, and a token chooses an expert at most once",
            "counts where no expert has more than 1 / top_k of all selections");
      }
    }
    out.per_layer.push_back(*counts);
    out.notes.push_back("measured expert counts " + name + " from " + path.string() + ": " +
                        std::to_string(sum) + " selections" +
                        (scaled ? ", scaled to this layer's " + std::to_string(selections) +
                                      " (tokens x top_k) by largest remainder"
                                : ", as measured"));
  }
  return out;
}

// router_groups and router_group_topk: both or neither, and a limit a token can meet.
StatusOr<GroupLimit> ResolveGroupLimit(const Spec& spec, const RoutingShape& shape,
                                       const Errors& errors) {
  if (!spec.has_router_groups() && !spec.has_router_group_topk()) {
    if (spec.has_router_group_score_top()) {
      return errors.At("router_group_score_top", std::to_string(spec.router_group_score_top()),
                       "scores the groups of a group limit, and there is none",
                       "router_groups and router_group_topk with it");
    }
    return GroupLimit{};
  }
  if (!spec.has_router_groups() || !spec.has_router_group_topk()) {
    const bool groups = spec.has_router_groups();
    return errors.At(
        groups ? "router_group_topk" : "router_groups", "absent",
        std::string("missing: ") + (groups ? "router_groups" : "router_group_topk") + " is given",
        "both, or neither for no group limit");
  }
  const uint32_t groups = spec.router_groups(), top = spec.router_group_topk();
  const uint32_t experts = shape.num_experts;
  const GroupLimitFault fault = CheckGroupLimit({groups, top}, experts, shape.top_k);
  if (fault == GroupLimitFault::kGroups) {
    return errors.At("router_groups", std::to_string(groups),
                     "must divide the model's " + std::to_string(experts) +
                         " experts into at most "
                         "64 groups of consecutive ids",
                     "a divisor of " + std::to_string(experts) + " from 1 to 64");
  }
  const uint32_t per = experts / groups;
  if (fault == GroupLimitFault::kTop) {
    return errors.At(
        "router_group_topk", std::to_string(top),
        "must be 1 to router_groups = " + std::to_string(groups) + " and hold a token's top_k = " +
            std::to_string(shape.top_k) + " experts (" + std::to_string(per) + " per group)",
        std::to_string((shape.top_k + per - 1) / per) + " to " + std::to_string(groups));
  }
  const uint32_t score_top = spec.router_group_score_top();
  if (spec.has_router_group_score_top() && (score_top == 0 || score_top > per)) {
    return errors.At("router_group_score_top", std::to_string(score_top),
                     "must be 1 to the " + std::to_string(per) + " experts of a group",
                     "1 to " + std::to_string(per) + " (DeepSeek-V3: 2)");
  }
  return GroupLimit{groups, top, score_top};
}

// Tokens drawn one by one for routing_version 2's distinct tokens, as many as plan search samples.
constexpr uint64_t kCountSampleTokens = 65'536;

// routing_version 2 draws counts: only distributions with a per-expert inclusion probability, and
// nothing that needs each token's experts (a group limit, drift, layer affinity).
Status CheckCountDraw(const Spec& spec, const Errors& errors) {
  if (spec.routing_version() != 2) return Status::Ok();
  if (spec.distribution() != Spec::UNIFORM && spec.distribution() != Spec::ZIPF) {
    return errors.At(
        "routing_version", "2",
        "draws counts only for UNIFORM and ZIPF, not " + DistributionName(spec.distribution()),
        "1 (every token's experts), or distribution UNIFORM or ZIPF");
  }
  const FieldUse per_token[] = {
      {"router_groups", spec.has_router_groups(), std::to_string(spec.router_groups()), {}},
      {"drift_period_steps",
       spec.has_drift_period_steps(),
       std::to_string(spec.drift_period_steps()),
       {}},
      {"layer_correlation",
       spec.has_layer_correlation(),
       NumberText(spec.layer_correlation()),
       {}}};
  for (const FieldUse& f : per_token) {
    if (f.given) {
      return errors.At(f.field, f.value,
                       "needs each token's experts, which routing_version 2 does not draw",
                       "leave it out, or routing_version 1");
    }
  }
  return Status::Ok();
}

// What ResolveSynthetic and ResolveSyntheticCounts draw from, once the spec is checked.
struct Checked {
  GroupLimit limit;
  uint32_t hot = 0;  // COLLAPSE's hot experts
  Measured measured;
};

StatusOr<Checked> Check(const Spec& spec, const RoutingShape& shape, const TextFile* file,
                        const Errors& errors) {
  switch (spec.distribution()) {
    case Spec::UNIFORM:
    case Spec::ZIPF:
    case Spec::COLLAPSE:
    case Spec::MEASURED:
      break;
    default:
      return errors.At("distribution", DistributionName(spec.distribution()),
                       "missing or unsupported", "UNIFORM, ZIPF, COLLAPSE, MEASURED");
  }
  MOESIM_RETURN_IF_ERROR(CheckApplicable(spec, errors));

  const Spec::Distribution kind = spec.distribution();
  if (kind == Spec::ZIPF &&
      (!spec.has_zipf_alpha() || !std::isfinite(spec.zipf_alpha()) || spec.zipf_alpha() <= 0)) {
    return errors.At("zipf_alpha", spec.has_zipf_alpha() ? NumberText(spec.zipf_alpha()) : "",
                     spec.has_zipf_alpha() ? "not a finite number > 0" : "missing: ZIPF needs it",
                     "a number > 0, e.g. 1.0 (classic Zipf)");
  }
  if (kind == Spec::COLLAPSE &&
      (!spec.has_collapse_fraction() || !IsFraction(spec.collapse_fraction()))) {
    return errors.At("collapse_fraction",
                     spec.has_collapse_fraction() ? NumberText(spec.collapse_fraction()) : "",
                     spec.has_collapse_fraction() ? "outside [0, 1]" : "missing: COLLAPSE needs it",
                     "0 to 1, the fraction of tokens that collapse");
  }
  const uint32_t hot = spec.has_collapse_hot_experts() ? spec.collapse_hot_experts() : shape.top_k;
  if (hot < shape.top_k || hot > shape.num_experts) {
    return errors.At("collapse_hot_experts", std::to_string(hot),
                     "must hold a token's top_k = " + std::to_string(shape.top_k) +
                         " experts and be no more than the model's",
                     std::to_string(shape.top_k) + " to " + std::to_string(shape.num_experts));
  }
  if (spec.has_drift_period_steps() && spec.drift_period_steps() == 0) {
    return errors.At("drift_period_steps", "0", "a period of no steps",
                     "an integer >= 1, or leave it out for no drift");
  }
  if (spec.has_step() && !spec.has_drift_period_steps()) {
    return errors.At("step", std::to_string(spec.step()),
                     "has no effect without drift_period_steps", "drift_period_steps >= 1 with it");
  }
  if (spec.has_layer_correlation() && !IsFraction(spec.layer_correlation())) {
    return errors.At("layer_correlation", NumberText(spec.layer_correlation()), "outside [0, 1]",
                     "0 (independent layers) to 1 (every layer routed like layer 0)");
  }
  MOESIM_RETURN_IF_ERROR(CheckCountDraw(spec, errors));
  Checked out;
  MOESIM_ASSIGN_OR_RETURN(out.limit, ResolveGroupLimit(spec, shape, errors));
  out.hot = hot;
  if (kind == Spec::MEASURED) {
    MOESIM_ASSIGN_OR_RETURN(out.measured, LoadMeasured(spec, shape, file, errors));
  }
  return out;
}

}  // namespace

StatusOr<std::vector<LayerRouting>> ResolveSynthetic(const pb::SyntheticRouting& spec,
                                                     const RoutingShape& shape,
                                                     const TextFile* file) {
  const Errors errors(file, "routing.synthetic");
  MOESIM_ASSIGN_OR_RETURN(const Checked checked, Check(spec, shape, file, errors));
  const Spec::Distribution kind = spec.distribution();
  const GroupLimit& limit = checked.limit;
  const uint32_t hot = checked.hot;
  const Measured& measured = checked.measured;

  const Drift drift{spec.step(), spec.drift_period_steps()};
  std::vector<LayerRouting> layers;
  for (uint32_t l = 0; l < shape.layers; ++l) {
    switch (kind) {
      case Spec::ZIPF:
        layers.push_back(ZipfRouting(shape,
                                     {.alpha = spec.zipf_alpha(),
                                      .shuffle_experts = spec.shuffle_experts(),
                                      .drift = drift,
                                      .limit = limit},
                                     spec.seed(), l));
        break;
      case Spec::COLLAPSE:
        layers.push_back(CollapseRouting(shape,
                                         {.fraction = spec.collapse_fraction(),
                                          .hot_experts = hot,
                                          .shuffle_experts = spec.shuffle_experts(),
                                          .drift = drift},
                                         spec.seed(), l));
        break;
      case Spec::MEASURED: {
        MOESIM_ASSIGN_OR_RETURN(LayerRouting layer,
                                CountsRouting(shape, measured.per_layer[l], spec.seed(), l));
        layer.note = measured.notes[l];
        layers.push_back(std::move(layer));
        break;
      }
      default:
        layers.push_back(UniformRouting(shape, spec.seed(), l, limit));
        break;
    }
  }
  if (spec.layer_correlation() > 0) CorrelateLayers(layers, spec.layer_correlation(), spec.seed());
  return layers;
}

StatusOr<std::vector<LayerCounts>> ResolveSyntheticCounts(const pb::SyntheticRouting& spec,
                                                          const RoutingShape& shape,
                                                          const TextFile* file) {
  const Errors errors(file, "routing.synthetic");
  if (auto checked = Check(spec, shape, file, errors); !checked.ok()) return checked.error();
  if (spec.routing_version() != 2) {
    return errors.At("routing_version", std::to_string(spec.routing_version()),
                     "does not draw counts", "2");
  }
  const uint32_t e = shape.num_experts, k = shape.top_k;
  std::vector<double> by_rank(e, static_cast<double>(k) / e);  // UNIFORM: k / E each
  if (spec.distribution() == Spec::ZIPF) {
    by_rank = InclusionProbabilities(ZipfPopularity(e, spec.zipf_alpha()), k);
  }
  // A sample of tokens per layer, drawn one by one, for the distinct tokens per destination.
  RoutingShape sample_shape = shape;
  sample_shape.ranks = 1;
  sample_shape.tokens_per_rank = kCountSampleTokens;
  MOESIM_ASSIGN_OR_RETURN(std::vector<LayerRouting> sample,
                          ResolveSynthetic(spec, sample_shape, file));
  std::vector<LayerCounts> layers;
  for (uint32_t l = 0; l < shape.layers; ++l) {
    // Popularity rank r belongs to expert order[r], as in ZipfRouting.
    const std::vector<uint32_t> order = HotOrder(e, spec.seed(), l, 0, spec.shuffle_experts());
    std::vector<double> inclusion(e);
    for (uint32_t r = 0; r < e; ++r) inclusion[order[r]] = by_rank[r];
    layers.push_back(DrawLayerCounts(shape, inclusion, spec.seed(), l));
    layers.back().sample = std::move(sample[l].experts.front());
  }
  return layers;
}

bool DrawsCounts(const pb::Routing& routing) {
  return routing.has_synthetic() && routing.synthetic().routing_version() == 2;
}

}  // namespace moesim::models
