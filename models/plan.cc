#include "models/plan.h"

#include <stdexcept>

namespace moesim::models {

RankGrid::RankGrid(std::vector<Dim> dims_fastest_first) : dims_(std::move(dims_fastest_first)) {
  size_ = 1;
  for (const Dim& d : dims_) {
    stride_.push_back(size_);
    size_ *= d.size;
  }
}

size_t RankGrid::IndexOf(std::string_view dim) const {
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (dims_[i].name == dim) return i;
  }
  throw std::logic_error("RankGrid has no dimension " + std::string(dim));
}

uint32_t RankGrid::Coordinate(uint32_t rank, std::string_view dim) const {
  const size_t i = IndexOf(dim);
  return (rank / stride_[i]) % dims_[i].size;
}

std::vector<uint32_t> RankGrid::Group(uint32_t rank, std::string_view dim) const {
  const size_t i = IndexOf(dim);
  const uint32_t base = rank - Coordinate(rank, dim) * stride_[i];
  std::vector<uint32_t> group(dims_[i].size);
  for (uint32_t c = 0; c < dims_[i].size; ++c) group[c] = base + c * stride_[i];
  return group;
}

namespace {

std::string Divisors(uint32_t n, uint32_t also_dividing) {
  std::vector<std::string> out;
  for (uint32_t d = 1; d <= n; ++d) {
    if (n % d == 0 && also_dividing % d == 0) out.push_back(std::to_string(d));
  }
  return Join(out);
}

}  // namespace

StatusOr<Plan> ResolvePlan(const pb::ParallelPlan& spec, uint32_t world, const pb::ModelSpec& model,
                           const TextFile* file) {
  auto where = [&](std::string_view field) {
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
  if (!spec.order().empty() && spec.order() != "tp-cp-ep-dp-pp") {
    return InputError(where("order"), "plan.order", "\"" + spec.order() + "\"",
                      "unsupported rank order", "\"tp-cp-ep-dp-pp\" (Megatron-Core's default)");
  }

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

  const uint32_t stage = s.tp * s.cp * s.dp;  // GPUs of one pipeline stage
  const uint32_t experts = model.num_experts();
  if (experts % s.ep != 0 || stage % (uint64_t{s.etp} * s.ep) != 0) {
    const bool experts_bad = experts % s.ep != 0;
    return InputError(where("ep"), "plan.ep", std::to_string(s.ep),
                      experts_bad
                          ? "does not divide the model's " + std::to_string(experts) + " experts"
                          : "etp x ep = " + std::to_string(s.etp * s.ep) + " does not divide the " +
                                std::to_string(stage) + " GPUs of a pipeline stage (tp x cp x dp)",
                      Divisors(experts, stage / s.etp));
  }
  s.edp = stage / (s.etp * s.ep);

  Plan plan;
  plan.sizes_ = s;
  plan.moe_grid_ = RankGrid({{"etp", s.etp}, {"ep", s.ep}, {"edp", s.edp}, {"pp", s.pp}});
  return plan;
}

ExpertPlacement ExpertPlacement::Contiguous(uint32_t num_experts, uint32_t ep) {
  ExpertPlacement p;
  p.num_experts_ = num_experts;
  p.experts_per_rank_ = num_experts / ep;
  return p;
}

}  // namespace moesim::models
