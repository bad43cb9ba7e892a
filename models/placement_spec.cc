#include "models/placement_spec.h"

#include <filesystem>
#include <functional>

#include "models/eplb.h"
#include "models/placement_file.h"

namespace moesim::models {
namespace {

using Spec = pb::ExpertPlacementSpec;
using SpecWhere = std::function<Location(const std::string&)>;

std::string Resolve(const std::string& path, const TextFile* file) {
  std::filesystem::path p = path;
  if (p.is_relative() && file != nullptr) p = std::filesystem::path(file->path()).parent_path() / p;
  return p.string();
}

// Fields that only some kinds use are refused elsewhere.
Status CheckFields(const Spec& spec, const SpecWhere& where) {
  const std::string kind = Spec::Kind_Name(spec.kind());
  struct Field {
    const char* name;
    bool set;
    Spec::Kind kind;
  };
  for (const Field& f : {Field{"file", !spec.file().empty(), Spec::FROM_FILE},
                         Field{"redundant_experts", spec.has_redundant_experts(), Spec::EPLB},
                         Field{"num_groups", spec.has_num_groups(), Spec::EPLB},
                         Field{"loads_file", !spec.loads_file().empty(), Spec::EPLB}}) {
    if (f.set && spec.kind() != f.kind) {
      return InputError(where(f.name), std::string("plan.placement.") + f.name, "",
                        "does not apply to kind " + kind,
                        std::string("only with kind: ") + Spec::Kind_Name(f.kind));
    }
  }
  if (spec.kind() == Spec::FROM_FILE && spec.file().empty()) {
    return InputError(where("kind"), "plan.placement.file", "\"\"", "missing for kind FROM_FILE",
                      "a CSV `layer,expert,ep_rank` (models/placement_file.h)");
  }
  return Status::Ok();
}

// Nodes spanned by the EP group of rank 0, when its ranks fill each node in one block of equal
// size (EPLB's layout: EP ranks [n*g/N, (n+1)*g/N) on node n); else 1.
uint32_t EpNodes(const Plan& plan, uint32_t gpus_per_node) {
  if (gpus_per_node == 0) return 1;
  const std::vector<uint32_t> group = plan.EpGroup(0);
  std::vector<uint32_t> per_node;  // EP ranks on each node, in order of first appearance
  uint32_t node = group.front() / gpus_per_node;
  per_node.push_back(0);
  for (uint32_t r : group) {
    if (r / gpus_per_node != node) {
      if (r / gpus_per_node < node) return 1;  // not in node order
      node = r / gpus_per_node;
      per_node.push_back(0);
    }
    ++per_node.back();
  }
  for (uint32_t n : per_node) {
    if (n != per_node.front()) return 1;
  }
  return static_cast<uint32_t>(per_node.size());
}

StatusOr<ExpertPlacement> Eplb(const Spec& spec, const Plan& plan, const PlacementShape& shape,
                               uint32_t gpus_per_node,
                               const std::vector<std::vector<uint64_t>>& routing_loads,
                               const TextFile* file, const SpecWhere& where) {
  LoadMatrix loads;
  std::string source;
  if (!spec.loads_file().empty()) {
    const std::string path = Resolve(spec.loads_file(), file);
    MOESIM_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
    MOESIM_ASSIGN_OR_RETURN(loads, ParseLoadsCsv(text, path, shape));
    source = "loads from " + spec.loads_file();
  } else {
    for (uint32_t l = 0; l < shape.layers; ++l) {
      std::vector<float> row(shape.num_experts, 0.0f);
      for (uint32_t e = 0; l < routing_loads.size() && e < routing_loads[l].size(); ++e) {
        row[e] = static_cast<float>(routing_loads[l][e]);
      }
      loads.push_back(std::move(row));
    }
    source = "loads from this routing";
  }
  const uint32_t redundant = spec.redundant_experts();
  const uint32_t groups = spec.has_num_groups() ? spec.num_groups() : 1;
  if (groups == 0 || shape.num_experts % groups != 0) {
    return InputError(
        where("num_groups"), "plan.placement.num_groups", std::to_string(groups),
        "does not divide the model's " + std::to_string(shape.num_experts) + " experts",
        "a divisor of " + std::to_string(shape.num_experts) + " (default 1)");
  }
  const uint32_t nodes = EpNodes(plan, gpus_per_node);
  // ResolvePlan has checked that ep divides experts + redundant_experts.
  MOESIM_ASSIGN_OR_RETURN(EplbResult r, RebalanceExperts(loads, shape.num_experts + redundant,
                                                         groups, nodes, shape.ep));
  const uint32_t per_rank = (shape.num_experts + redundant) / shape.ep;
  std::vector<LayerPlacement> layers;
  for (const std::vector<uint32_t>& phy2log : r.phy2log) {
    std::vector<std::vector<uint32_t>> slots(shape.ep);
    for (uint32_t p = 0; p < phy2log.size(); ++p) slots[p / per_rank].push_back(phy2log[p]);
    layers.emplace_back(shape.num_experts, std::move(slots));
  }
  const std::string policy = r.hierarchical
                                 ? "hierarchical, " + std::to_string(groups) + " group(s) on " +
                                       std::to_string(nodes) + " node(s)"
                                 : "global";
  return ExpertPlacement::PerLayer(
      std::move(layers), "EPLB " + policy + ", " + std::to_string(shape.num_experts + redundant) +
                             " physical experts, " + source);
}

}  // namespace

void AddRoutingLoads(const LayerRouting& routing, uint32_t num_experts,
                     std::vector<std::vector<uint64_t>>* loads) {
  if (loads->size() <= routing.layer) loads->resize(routing.layer + 1);
  std::vector<uint64_t>& row = (*loads)[routing.layer];
  row.resize(std::max<size_t>(row.size(), num_experts), 0);
  for (const std::vector<uint32_t>& rank : routing.experts) {
    for (uint32_t e : rank) {
      if (e != kNotDispatched && e < row.size()) ++row[e];  // a router's drop loads no expert
    }
  }
}

StatusOr<ExpertPlacement> ResolvePlacement(const pb::ExpertPlacementSpec& spec, const Plan& plan,
                                           uint32_t num_experts, uint32_t layers,
                                           uint32_t gpus_per_node,
                                           const std::vector<std::vector<uint64_t>>& routing_loads,
                                           const TextFile* file) {
  const SpecWhere where = [&](const std::string& field) {
    return file ? file->Locate("plan.placement." + field) : Location{};
  };
  MOESIM_RETURN_IF_ERROR(CheckFields(spec, where));
  const PlacementShape shape{num_experts, plan.sizes().ep, layers};
  ExpertPlacement out;
  switch (spec.kind()) {
    case Spec::KIND_UNSPECIFIED:
    case Spec::CONTIGUOUS:
      out = ExpertPlacement::Contiguous(num_experts, shape.ep);
      break;
    case Spec::ROUND_ROBIN:
      out = ExpertPlacement::RoundRobin(num_experts, shape.ep);
      break;
    case Spec::FROM_FILE: {
      const std::string path = Resolve(spec.file(), file);
      MOESIM_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
      MOESIM_ASSIGN_OR_RETURN(std::vector<LayerPlacement> per_layer,
                              ParsePlacementCsv(text, path, shape));
      out = ExpertPlacement::PerLayer(std::move(per_layer), "from " + spec.file());
      break;
    }
    case Spec::EPLB: {
      MOESIM_ASSIGN_OR_RETURN(out,
                              Eplb(spec, plan, shape, gpus_per_node, routing_loads, file, where));
      break;
    }
    default:
      return InputError(where("kind"), "plan.placement.kind", std::to_string(spec.kind()),
                        "unknown kind", "CONTIGUOUS, ROUND_ROBIN, FROM_FILE, EPLB");
  }
  out.set_gpus_per_node(gpus_per_node);
  return out;
}

}  // namespace moesim::models
