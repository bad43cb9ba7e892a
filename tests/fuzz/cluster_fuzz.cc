// Fuzzes a cluster file (moesim.pb.Cluster in text format, what `moesim topo FILE.pbtxt` and a
// scenario's `cluster { ... }` hold): parse, build the topology graph, then route between GPUs.
#include <cstdint>

#include "proto/cluster.pb.h"
#include "proto/text_file.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/work_cap.h"
#include "topology/cluster.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  moesim::pb::Cluster spec;
  auto file = moesim::TextFile::ParseString(moesim::fuzz::AsText(data, size), "fuzz.pbtxt", &spec);
  if (!file.ok() || !moesim::fuzz::ClusterWithinCap(spec)) return 0;
  file->set_root_field("cluster");  // as LoadClusterArgument does for a .pbtxt
  auto cluster = moesim::topology::BuildCluster(spec, &*file);
  if (!cluster.ok()) return 0;
  moesim::fuzz::RouteSomePairs(*cluster);
  return 0;
}
