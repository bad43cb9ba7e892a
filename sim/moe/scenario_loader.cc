#include "sim/moe/scenario_loader.h"

namespace moesim::sim {
StatusOr<LoadedScenario> ResolveScenario(pb::Scenario spec, TextFile file) {
  MOESIM_ASSIGN_OR_RETURN(topology::Cluster cluster, topology::BuildCluster(spec.cluster(), &file));
  MOESIM_ASSIGN_OR_RETURN(
      models::Workload workload,
      models::ResolveWorkload(spec, file, cluster.gpus(), cluster.gpus_per_node()));
  return LoadedScenario{std::move(spec), std::move(file), std::move(cluster), std::move(workload)};
}

StatusOr<LoadedScenario> LoadScenario(const std::string& path) {
  pb::Scenario spec;
  MOESIM_ASSIGN_OR_RETURN(TextFile file, TextFile::Parse(path, &spec));
  return ResolveScenario(std::move(spec), std::move(file));
}

StatusOr<LoadedScenario> LoadScenarioFromString(std::string_view text, const std::string& name) {
  pb::Scenario spec;
  MOESIM_ASSIGN_OR_RETURN(TextFile file, TextFile::ParseString(text, name, &spec));
  return ResolveScenario(std::move(spec), std::move(file));
}

}  // namespace moesim::sim
