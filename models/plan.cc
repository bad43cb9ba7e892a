#include "models/plan.h"

#include <functional>

namespace moesim::models {

uint32_t Plan::StageFirstLayer(uint32_t stage) const {
  uint32_t first = 0;
  for (uint32_t s = 0; s < stage; ++s) first += stage_layers_.at(s);
  return first;
}

namespace {

std::string Divisors(uint32_t n, uint32_t also_dividing) {
  std::vector<std::string> out;
  for (uint32_t d = 1; d <= n; ++d) {
    if (n % d == 0 && also_dividing % d == 0) out.push_back(std::to_string(d));
  }
  return Join(out);
}

using Where = std::function<Location(std::string_view)>;

// Megatron-Core: every attention head (and GQA key/value head) whole on one TP rank.
Status CheckHeads(const pb::ModelSpec& model, uint32_t tp, const Where& where) {
  const pb::AttentionSpec& a = model.attention();
  struct Heads {
    const char* what;
    uint32_t count;
  };
  std::vector<Heads> heads = {{"attention heads", a.num_heads()}};
  if (a.kind() != pb::AttentionSpec::MLA) heads.push_back({"key/value heads", a.num_kv_heads()});
  for (const Heads& h : heads) {
    if (h.count == 0 || h.count % tp == 0) continue;  // 0: the spec gives no heads
    return InputError(where("tp"), "plan.tp", std::to_string(tp),
                      "does not divide the model's " + std::to_string(h.count) + " " + h.what,
                      Divisors(h.count, h.count));
  }
  return Status::Ok();
}

// Layers per pipeline stage: num_layers / pp, or Megatron-Core's uneven first/last stages.
StatusOr<std::vector<uint32_t>> StageLayers(const pb::ParallelPlan& spec, uint32_t pp,
                                            uint32_t layers, const Where& where) {
  const bool first = spec.has_pp_first_stage_layers(), last = spec.has_pp_last_stage_layers();
  if ((first || last) && pp < 2) {
    const char* field = first ? "pp_first_stage_layers" : "pp_last_stage_layers";
    return InputError(where(field), std::string("plan.") + field, "", "needs pp >= 2",
                      "leave it out with one pipeline stage");
  }
  std::vector<uint32_t> out(pp, 0);
  if (layers == 0) return out;  // a spec without layers (tests of the plan alone)
  const uint32_t given =
      (first ? spec.pp_first_stage_layers() : 0) + (last ? spec.pp_last_stage_layers() : 0);
  const uint32_t middle = pp - (first ? 1 : 0) - (last ? 1 : 0);
  const std::string model_layers = "the model's " + std::to_string(layers) + " layers";
  if (!first && !last) {
    if (layers % pp != 0) {
      return InputError(
          where("pp"), "plan.pp", std::to_string(pp), "does not divide " + model_layers,
          Divisors(layers, layers) + ", or set pp_first_stage_layers / pp_last_stage_layers");
    }
  } else {
    const bool even = given <= layers &&
                      (middle == 0 ? given == layers
                                   : (layers - given) % middle == 0 && layers - given >= middle);
    if (!even) {
      return InputError(
          where(first ? "pp_first_stage_layers" : "pp_last_stage_layers"), "plan",
          "first stage " + (first ? std::to_string(spec.pp_first_stage_layers()) : "-") +
              ", last stage " + (last ? std::to_string(spec.pp_last_stage_layers()) : "-") +
              " of " + model_layers + " over pp " + std::to_string(pp),
          "the other layers do not split evenly over the " + std::to_string(middle) +
              " stage(s) between",
          "first + last + a multiple of " + std::to_string(middle) +
              " (at least 1 each) = " + std::to_string(layers));
    }
  }
  const uint32_t each = middle == 0 ? 0 : (layers - given) / middle;
  for (uint32_t s = 0; s < pp; ++s) out[s] = each;
  if (first) out.front() = spec.pp_first_stage_layers();
  if (last) out.back() = spec.pp_last_stage_layers();
  return out;
}

}  // namespace

StatusOr<Plan> ResolvePlan(const pb::ParallelPlan& spec, uint32_t world, const pb::ModelSpec& model,
                           const TextFile* file) {
  const Where where = [&](std::string_view field) {
    return file ? file->Locate("plan." + std::string(field)) : Location{};
  };
  struct Size {
    const char* name;
    bool present;
    uint32_t value;
  };
  for (const Size& s :
       {Size{"tp", spec.has_tp(), spec.tp()}, Size{"cp", spec.has_cp(), spec.cp()},
        Size{"dp", spec.has_dp(), spec.dp()}, Size{"pp", spec.has_pp(), spec.pp()},
        Size{"ep", spec.has_ep(), spec.ep()}, Size{"etp", spec.has_etp(), spec.etp()}}) {
    if (s.present && s.value == 0) {
      return InputError(where(s.name), std::string("plan.") + s.name, "0",
                        "a parallel size is >= 1", "an integer >= 1, or leave it out for 1");
    }
  }
  MOESIM_ASSIGN_OR_RETURN(std::vector<std::string> order,
                          ParseOrder(spec.order().empty() ? kDefaultOrder : spec.order(),
                                     where("order"), "plan.order"));

  ParallelSizes s;
  s.tp = spec.has_tp() ? spec.tp() : 1;
  s.cp = spec.has_cp() ? spec.cp() : 1;
  s.pp = spec.has_pp() ? spec.pp() : 1;
  s.ep = spec.has_ep() ? spec.ep() : 1;
  s.etp = spec.has_etp() ? spec.etp() : 1;
  const uint64_t tcp = uint64_t{s.tp} * s.cp * s.pp;
  const std::string gpus = std::to_string(world) + " GPUs of the cluster";
  if (spec.has_dp()) {
    s.dp = spec.dp();
    const uint64_t product = tcp * s.dp;
    if (product != world) {
      return InputError(where("dp"), "plan",
                        "tp " + std::to_string(s.tp) + " x cp " + std::to_string(s.cp) + " x dp " +
                            std::to_string(s.dp) + " x pp " + std::to_string(s.pp) + " = " +
                            std::to_string(product),
                        "the parallel sizes do not multiply to the " + gpus,
                        "sizes whose product is " + std::to_string(world) +
                            " (leave dp out to get gpus / (tp*cp*pp))");
    }
  } else {
    if (world % tcp != 0) {
      return InputError(where("tp"), "plan", "tp x cp x pp = " + std::to_string(tcp),
                        "does not divide the " + gpus,
                        "tp, cp and pp whose product divides " + std::to_string(world));
    }
    s.dp = static_cast<uint32_t>(world / tcp);
  }

  // EP must divide the experts a placement spreads evenly: contiguous (Megatron-Core) splits the
  // model's experts, EPLB its physical experts (experts + redundant replicas).
  const pb::ExpertPlacementSpec& placement = spec.placement();
  const bool eplb = placement.kind() == pb::ExpertPlacementSpec::EPLB;
  const bool even = eplb || placement.kind() == pb::ExpertPlacementSpec::CONTIGUOUS ||
                    placement.kind() == pb::ExpertPlacementSpec::KIND_UNSPECIFIED;
  const uint32_t experts = model.num_experts() + (eplb ? placement.redundant_experts() : 0);
  const uint32_t stage = s.tp * s.cp * s.dp;  // GPUs of one pipeline stage
  if ((even && experts % s.ep != 0) || stage % (uint64_t{s.etp} * s.ep) != 0) {
    const bool experts_bad = even && experts % s.ep != 0;
    const std::string what = eplb ? "physical experts (experts + redundant_experts)" : "experts";
    return InputError(where("ep"), "plan.ep", std::to_string(s.ep),
                      experts_bad
                          ? "does not divide the model's " + std::to_string(experts) + " " + what
                          : "etp x ep = " + std::to_string(s.etp * s.ep) + " does not divide the " +
                                std::to_string(stage) + " GPUs of a pipeline stage (tp x cp x dp)",
                      Divisors(experts, stage / s.etp));
  }
  s.edp = stage / (s.etp * s.ep);
  // Expert tensor parallelism splits each expert's FFN into etp equal slices.
  if (s.etp > 1 && model.expert_ffn_size() % s.etp != 0) {
    return InputError(where("etp"), "plan.etp", std::to_string(s.etp),
                      "does not split each expert's FFN of " +
                          std::to_string(model.expert_ffn_size()) + " evenly",
                      "a divisor of " + std::to_string(model.expert_ffn_size()));
  }
  MOESIM_RETURN_IF_ERROR(CheckHeads(model, s.tp, where));

  Plan plan;
  plan.sizes_ = s;
  MOESIM_ASSIGN_OR_RETURN(plan.attention_grid_, GridFromOrder(order,
                                                              {{"tp", "tp", s.tp},
                                                               {"cp", "cp", s.cp},
                                                               {"ep", "ep", 1},
                                                               {"dp", "dp", s.dp},
                                                               {"pp", "pp", s.pp}},
                                                              where("order"), "plan.order"));
  MOESIM_ASSIGN_OR_RETURN(plan.moe_grid_, GridFromOrder(order,
                                                        {{"tp", "etp", s.etp},
                                                         {"cp", "", 1},
                                                         {"ep", "ep", s.ep},
                                                         {"dp", "edp", s.edp},
                                                         {"pp", "pp", s.pp}},
                                                        where("order"), "plan.order"));
  plan.order_ = plan.attention_grid_.Order();
  // Megatron-Core (initialize_model_parallel): unless pp is last, the two grids only agree on the
  // pipeline groups when edp = dp; and they must agree, since a stage holds both kinds of layers.
  if (order.back() != "pp" && s.pp > 1 && s.edp != s.dp) {
    return InputError(where("order"), "plan.order", "\"" + spec.order() + "\"",
                      "with pp not last, the MoE layers' edp (" + std::to_string(s.edp) +
                          ") must equal dp (" + std::to_string(s.dp) + ")",
                      "an order ending in pp, or sizes with etp x ep = tp x cp");
  }
  if (plan.attention_grid_.AllGroups({"pp"}) != plan.moe_grid_.AllGroups({"pp"})) {
    return InputError(where("order"), "plan.order", "\"" + spec.order() + "\"",
                      "the attention and MoE grids put different GPUs in one pipeline",
                      "an order ending in pp");
  }
  MOESIM_ASSIGN_OR_RETURN(plan.stage_layers_, StageLayers(spec, s.pp, model.num_layers(), where));
  return plan;
}

StatusOr<Plan> EpGroupPlan(const pb::ModelSpec& model, uint32_t ep) {
  pb::ParallelPlan group;
  group.set_ep(ep);
  return ResolvePlan(group, ep, model, nullptr);
}

}  // namespace moesim::models
