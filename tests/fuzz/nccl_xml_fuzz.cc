// Fuzzes an NCCL topology XML (NCCL_TOPO_DUMP_FILE, what `moesim topo FILE.xml` and a cluster's
// `nccl_topology` read): NodeFromNcclXmlString, then a two-node cluster over that node (the graph
// built and routed), as a scenario with `nccl_topology` and `nodes: 2` gets.
#include <cstdint>

#include "proto/cluster.pb.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/work_cap.h"
#include "topology/cluster.h"
#include "topology/nccl_xml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static moesim::fuzz::InputFile file(".xml");
  const std::string text(moesim::fuzz::AsText(data, size));
  auto node = moesim::topology::NodeFromNcclXmlString(text, "fuzz.xml", "");
  if (!node.ok()) return 0;
  // The same bytes through the cluster builder, which reads the file itself.
  moesim::pb::Cluster spec;
  spec.set_nccl_topology(file.Write(data, size));
  spec.set_nodes(2);
  auto cluster = moesim::topology::BuildCluster(spec);
  if (cluster.ok()) moesim::fuzz::RouteSomePairs(*cluster);
  return 0;
}
