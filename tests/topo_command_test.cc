#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <sstream>

#include "moesim_runner.h"
#include "proto/cluster.pb.h"
#include "sim/cli/cli.h"
#include "test_paths.h"

namespace moesim::sim {
namespace {

using Run = testing::MoesimRun;
using testing::Moesim;

std::string SharedXml(const std::string& name) {
  return testing::SharedData("nccl_topology/" + name);
}

}  // namespace

TEST_CASE("moesim topo list names every preset and GPU") {
  const Run r = Moesim({"topo", "list"});
  CHECK(r.status == 0);
  for (const char* name :
       {"dgx-a100", "dgx-h100", "dgx-h200", "hgx-h800", "gb200-nvl72", "pcie-8gpu", "a100-sxm",
        "h100-sxm", "h200-sxm", "h800-sxm", "b200", "gb200"}) {
    CHECK_THAT(r.out, Catch::Contains(name));
  }
}

TEST_CASE("moesim topo show prints what was understood") {
  const Run r = Moesim({"topo", "show", "dgx-h100"});
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("1 node(s) x 8 GPUs = 8 h100-sxm"));
  CHECK_THAT(r.out, Catch::Contains("intra-node 450.0 GB/s, inter-node 50.0 GB/s"));
  CHECK_THAT(r.out, Catch::Contains("diameter: 2 hops"));
  CHECK_THAT(r.out, Catch::Contains("18 NVLinks per GPU"));
  // NCCL's constants it prices collectives with, each named (sim/network/nccl_model.h).
  for (const char* line :
       {"LL / LL128 / Simple carry 50 % / 92 % / 100 %",
        "141 GB/s bus bandwidth in one node, 39 on 2 nodes, 20.4",
        "ring, us      base 6.6 / 14 / 8.4; a step over NVLink 0.6 / 1.9 / 3.4, PCIe 1 / 2.5 / "
        "5.7, the network 2.7 / 4 / 14",
        "tree, us      base 6.8 / 14 / 8.4", "Simple ring latency x 1.4 (plateau)",
        "NVLS          85 % of NVLink (nvlsEfficiency), 25 us"}) {
    CHECK_THAT(r.out, Catch::Contains(line));
  }
  // An EFA fabric's transport latency (20 us) rides on every network step, twice for Simple; an
  // A100 has no NVLS.
  const Run efa =
      Moesim({"topo", "show", testing::SourcePath("scenarios/clusters/aws-p5-efa-2.pbtxt")});
  CHECK_THAT(efa.out, Catch::Contains("the network 22.7 / 24 / 54"));
  const Run a100 = Moesim({"topo", "show", "dgx-a100"});
  CHECK_THAT(a100.out, Catch::Contains("NVLS          none: a100-sxm is older than Hopper"));
  CHECK_THAT(a100.out, Catch::Contains("87.7 GB/s bus bandwidth in one node"));
  CHECK_THAT(a100.out, Catch::Contains("CollNet       none: the fabric's switches do not reduce"));
  // A fabric whose switches reduce (SHARP): CollNet Direct's figures, NCCL's (tuning.cc), and the
  // JSON summary says so.
  const std::string sharp =
      testing::SourcePath("scenarios/clusters/hgx-b200-ndr-rail-64-sharp.pbtxt");
  const Run b200 = Moesim({"topo", "show", sharp});
  CHECK_THAT(b200.out, Catch::Contains("CollNet Direct all-reduces across nodes at 85 % of the "
                                       "links; 3.7 us a hop in the node, 31 us a network hop"));
  // The file names NCCL 2.28 (Together's report): a pipeline pair 2 channels (2 x 2 <= 4 x 2), all
  // 512 GPUs 1 (2 x 512 > 4 x 16).
  CHECK_THAT(b200.out, Catch::Contains("send/recv     to another node: NCCL 2.28's channels a peer "
                                       "(paths.cc; cluster.nccl_version), 2 for a pipeline pair, 1 "
                                       "among all 512 GPUs; 14 GB/s a channel"));
  // One node: no such line.
  CHECK_THAT(Moesim({"topo", "show", "dgx-h100"}).out, !Catch::Contains("send/recv"));
  const Run json = Moesim({"topo", "show", sharp, "--json"});
  pb::TopologySummary s;
  REQUIRE(google::protobuf::util::JsonStringToMessage(json.out, &s).ok());
  CHECK(s.sharp());
  CHECK(s.nccl_version() == "2.28");  // the file says so (Together's 2.28.9)
  const Run plain = Moesim({"topo", "show", "dgx-h100", "--json"});
  pb::TopologySummary p;
  REQUIRE(google::protobuf::util::JsonStringToMessage(plain.out, &p).ok());
  CHECK_FALSE(p.sharp());
  CHECK(p.nccl_version() == "2.29");  // absent: the release moesim models
}

TEST_CASE("moesim topo show --nccl-version: the send/recv line follows the release asked") {
  const std::string file = testing::SourcePath("scenarios/clusters/dgx-h100-rail-10.pbtxt");
  const Run latest = Moesim({"topo", "show", file});
  const Run older = Moesim({"topo", "show", file, "--nccl-version", "2.28.9"});
  REQUIRE(latest.status == 0);
  REQUIRE(older.status == 0);
  CHECK_THAT(latest.out, Catch::Contains("NCCL 2.29's channels a peer"));
  CHECK_THAT(older.out, Catch::Contains("NCCL 2.28's channels a peer"));
  const Run bad = Moesim({"topo", "show", file, "--nccl-version", "2.28."});
  CHECK(bad.status == 1);
  CHECK_THAT(bad.err, Catch::Contains("--nccl-version = \"2.28.\": is not an NCCL release"));
}

TEST_CASE("moesim topo show --json on an NCCL XML, warnings on stderr") {
  const Run r = Moesim({"topo", "show", SharedXml("azure_ndv5_H100_topo.xml"), "--json"});
  REQUIRE(r.status == 0);
  pb::TopologySummary s;
  REQUIRE(google::protobuf::util::JsonStringToMessage(r.out, &s).ok());
  CHECK(s.gpus() == 8);
  CHECK(s.devices().at("nic") == 8);
  CHECK(s.intra_node_gbps() == Approx(450));
  CHECK_THAT(r.err, Catch::Contains("moesim: warning: no <nvlink> elements"));
  // --gpu chooses the model the XML does not name.
  const Run h200 =
      Moesim({"topo", "show", SharedXml("azure_ndv5_H100_topo.xml"), "--gpu", "h200-sxm"});
  CHECK_THAT(h200.out, Catch::Contains("8 h200-sxm"));
}

TEST_CASE("moesim topo route prints the path and its bottleneck") {
  const Run r = Moesim(
      {"topo", "route", testing::SourcePath("scenarios/clusters/hgx-h800-rail.pbtxt"), "0", "9"});
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::StartsWith("route gpu0 -> gpu9: 8 hops, 32 equal-cost path(s)"));
  CHECK_THAT(r.out, Catch::Contains("bottleneck 50.0 GB/s"));
  CHECK_THAT(r.out, Catch::Contains("-> group0/rail0"));
  CHECK_THAT(r.out, Catch::Contains("-> node1/gpu1"));
  const Run bad = Moesim({"topo", "route", "dgx-h100", "0", "8"});
  CHECK(bad.status == 1);
  CHECK(bad.err == "moesim: error: gpu = 8: no such GPU; valid: 0 to 7\n");
}

TEST_CASE("moesim topo dot writes a Graphviz graph") {
  const Run r = Moesim({"topo", "dot", "dgx-h100"});
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::StartsWith("// moesim topo dot: dgx-h100"));
  CHECK_THAT(r.out, Catch::Contains("graph cluster {\ngraph [\noverlap=false, splines=true];\n"
                                    "node [\nfontsize=10];\n"));
  // The node is a Graphviz cluster (a subgraph named cluster_*) holding its devices; DOT ids are
  // the graph's vertex numbers: GPUs 0-7, the NVSwitch 8, the two CPUs 9 and 10.
  CHECK_THAT(r.out, Catch::Contains("subgraph cluster_node0 {\ngraph [\nlabel=node0];\n"
                                    "0[label=\"node0/gpu0\", shape=box];\n"));
  CHECK_THAT(r.out, Catch::Contains("\n8[label=\"node0/nvswitch\", shape=hexagon];\n"));
  CHECK_THAT(r.out, Catch::Contains("\n0 -- 8[label=\"nvlink 450 GB/s\"];\n"));
  CHECK_THAT(r.out, Catch::Contains("\n9 -- 10[label=\"inter-socket 40 GB/s\"];\n"));
  // One DOT edge per duplex link: 8 NVLink + 20 PCIe + 1 inter-socket.
  size_t edges = 0;
  for (size_t at = r.out.find(" -- "); at != std::string::npos; at = r.out.find(" -- ", at + 1))
    ++edges;
  CHECK(edges == 29);
}

TEST_CASE("moesim topo errors: unknown preset, bad file") {
  const Run unknown = Moesim({"topo", "show", "dgx-h900"});
  CHECK(unknown.status == 1);
  CHECK_THAT(
      unknown.err,
      Catch::StartsWith("moesim: error: cluster.node_preset = \"dgx-h900\": unknown node preset"));
  const Run missing = Moesim({"topo", "show", "/no/such/cluster.pbtxt"});
  CHECK(missing.status == 1);
  CHECK_THAT(missing.err, Catch::Contains("cannot open file"));
  CHECK(Moesim({"topo"}).status == 2);  // a subcommand is required
}

}  // namespace moesim::sim
