// Reading a scenario file into everything a run needs: the parsed file (for error locations), the
// cluster graph and the resolved per-rank workload.
//
//   MOESIM_ASSIGN_OR_RETURN(LoadedScenario s, LoadScenario("scenarios/seed_example.pbtxt"));
//   SimulateMoeLayers(s.cluster, s.workload);
#pragma once

#include <string>

#include "models/workload.h"
#include "proto/scenario.pb.h"
#include "proto/status.h"
#include "proto/text_file.h"
#include "topology/cluster.h"

namespace moesim::sim {

struct LoadedScenario {
  pb::Scenario spec;
  TextFile file;
  topology::Cluster cluster;
  models::Workload workload;
};

StatusOr<LoadedScenario> LoadScenario(const std::string& path);
// The same from text in memory, named `name` in errors (tests).
StatusOr<LoadedScenario> LoadScenarioFromString(std::string_view text, const std::string& name);
// The same from a parsed scenario: the cluster built and the workload resolved, errors located in
// `file` (a scenario edited after parsing, `moesim sweep`: see TextFile::WithValueFrom).
StatusOr<LoadedScenario> ResolveScenario(pb::Scenario spec, TextFile file);

}  // namespace moesim::sim
