// Reading a scenario for moebench: the same file and the same resolution as the simulator
// (topology::BuildCluster for the GPU count, models::ResolveWorkload for the plan, the routing and
// its expansion into send matrices), without anything from sim/.
//
//   MOESIM_ASSIGN_OR_RETURN(BenchScenario s, LoadBenchScenario("scenarios/seed_example.pbtxt"));
//   s.ranks;                                 // 4: cluster.gpus, one rank per GPU
//   s.workload.layers[0].dispatch_tokens;    // what every rank sends to every other
//   MOESIM_RETURN_IF_ERROR(CheckRankCount(s, /*ranks=*/comm.size(), "MPI ranks (mpirun -np)"));
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "models/workload.h"
#include "proto/scenario.pb.h"
#include "proto/status.h"
#include "proto/text_file.h"

namespace moesim::backend {

struct BenchScenario {
  std::string path;
  pb::Scenario spec;
  TextFile file;
  models::Workload workload;
  // GPUs the scenario's cluster uses (`cluster.gpus`, default all): the ranks a run needs.
  uint32_t ranks = 0;
  uint32_t gpus_per_node = 0;
};

// Parses and resolves the file; rejects what moebench does not run: pipeline stages (plan.pp > 1),
// expert tensor parallelism (plan.etp > 1) and whole training steps (`step`). Routing replayed from
// a trace runs its first step.
StatusOr<BenchScenario> LoadBenchScenario(const std::string& path);
StatusOr<BenchScenario> LoadBenchScenarioFromString(std::string_view text, const std::string& name);

// The run has exactly the ranks the scenario's plan needs; `what` names where the count came from
// ("MPI ranks (mpirun -np)", "--gpus"). The error names both numbers.
Status CheckRankCount(const BenchScenario& s, uint32_t ranks, std::string_view what);

}  // namespace moesim::backend
