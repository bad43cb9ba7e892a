#include "backend/run/bench_scenario.h"

#include <algorithm>

#include "models/synthetic_spec.h"
#include "topology/cluster.h"

namespace moesim::backend {
namespace {

StatusOr<BenchScenario> Resolve(std::string path, pb::Scenario spec, TextFile file) {
  MOESIM_ASSIGN_OR_RETURN(topology::Cluster cluster, topology::BuildCluster(spec.cluster(), &file));
  MOESIM_ASSIGN_OR_RETURN(models::Workload workload,
                          models::ResolveWorkload(spec, file, cluster.gpus()));
  if (spec.has_step() || workload.layers.empty()) {
    return InputError(file.Locate("step"), "step", "",
                      "moebench runs a scenario's MoE layers "
                      "(workload, routing); a whole training step is simulated only (moesim)",
                      "a scenario without `step`");
  }
  if (models::DrawsCounts(spec.routing())) {
    return InputError(
        file.Locate("routing.synthetic.routing_version"), "routing.synthetic.routing_version", "2",
        "draws only counts per expert; moebench runs every token's experts", "1 (or leave it out)");
  }
  const models::ParallelSizes& s = workload.plan.sizes();
  if (s.etp > 1) {
    return InputError(file.Locate("plan.etp"), "plan.etp", std::to_string(s.etp),
                      "moebench does not run expert tensor parallelism yet", "1");
  }
  if (s.pp > 1) {
    return InputError(file.Locate("plan.pp"), "plan.pp", std::to_string(s.pp),
                      "moebench runs one MoE layer on every rank; pipeline stages are not run yet",
                      "1");
  }
  // The ranks route with the model's top_k experts per token (backend/run/moe_layer_rank.h); a
  // router that drops or gives tokens other counts (routing.scores) is simulated only.
  for (const models::LayerRouting& layer : workload.routing) {
    const bool drops = std::any_of(layer.experts.begin(), layer.experts.end(), [](const auto& ids) {
      return std::find(ids.begin(), ids.end(), models::kNotDispatched) != ids.end();
    });
    if (drops || layer.top_k != workload.model.top_k()) {
      return InputError(file.Locate("routing"), "routing", "scores",
                        "layer " + std::to_string(layer.layer) + "'s router gives tokens " +
                            (drops ? "dropped selections"
                                   : std::to_string(layer.top_k) + " experts, the model " +
                                         std::to_string(workload.model.top_k())) +
                            "; moebench runs top_k experts per token",
                        "a router without drops choosing the model's top_k (TOPK_SOFTMAX, "
                        "TOPK_SIGMOID, GROUP_LIMITED), or synthetic routing");
    }
  }
  BenchScenario out{std::move(path),     std::move(spec), std::move(file),
                    std::move(workload), cluster.gpus(),  cluster.gpus_per_node()};
  return out;
}

}  // namespace

StatusOr<BenchScenario> LoadBenchScenario(const std::string& path) {
  pb::Scenario spec;
  MOESIM_ASSIGN_OR_RETURN(TextFile file, TextFile::Parse(path, &spec));
  return Resolve(path, std::move(spec), std::move(file));
}

StatusOr<BenchScenario> LoadBenchScenarioFromString(std::string_view text,
                                                    const std::string& name) {
  pb::Scenario spec;
  MOESIM_ASSIGN_OR_RETURN(TextFile file, TextFile::ParseString(text, name, &spec));
  return Resolve(name, std::move(spec), std::move(file));
}

Status CheckRankCount(const BenchScenario& s, uint32_t ranks, std::string_view what) {
  if (ranks == s.ranks) return Status::Ok();
  const std::string need = std::to_string(s.ranks);
  std::string problem = "the scenario's plan needs " + need + " ranks (cluster.gpus = " + need +
                        ", one rank per GPU) but this run has " + std::to_string(ranks);
  return InputError(
      s.file.Locate("cluster"), std::string(what), std::to_string(ranks), problem,
      need + (what.find("mpirun") != std::string_view::npos ? " (mpirun -np " + need + ")"
                                                            : std::string()));
}

}  // namespace moesim::backend
