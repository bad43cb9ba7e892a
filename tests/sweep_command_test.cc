// `moesim sweep` on the command line (sim/cli/sweep_command.cc), run in-process.
#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>

#include "moesim_runner.h"
#include "proto/input_file.h"
#include "proto/sweep.pb.h"
#include "test_paths.h"

namespace moesim {
namespace {

using testing::Moesim;

std::vector<std::string> SweepArgs(std::vector<std::string> extra) {
  std::vector<std::string> args = {
      "sweep", testing::SourcePath("scenarios/mixtral_layer_ep4_small.pbtxt"), "--threads", "2"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::string SweepSlurp(const std::string& path) {
  const StatusOr<std::string> text = ReadInputFile(path);
  REQUIRE(text.ok());
  return *text;
}

}  // namespace

TEST_CASE("moesim sweep prints one aligned row per point, in point order") {
  const auto run = Moesim(SweepArgs({"--set", "workload.tokens_per_gpu=128,256", "--set",
                                     "cluster.node.nvlink.bandwidth_gbps=100,450"}));
  REQUIRE(run.status == 0);
  CHECK(run.err.empty());  // no progress when the output is captured
  std::istringstream lines(run.out);
  std::string line;
  std::vector<std::string> rows;
  while (std::getline(lines, line)) rows.push_back(line);
  REQUIRE(rows.size() == 8);  // 3 comment lines, the header, 2 x 2 points
  CHECK(rows[0].find("MoE layers, analytical: 4 points") != std::string::npos);
  CHECK(rows[3].rfind("# point  workload.tokens_per_gpu  cluster.node.nvlink.bandwidth_gbps  "
                      "total us  change %",
                      0) == 0);
  // Point 1: 128 tokens, 450 GB/s; the last flag varies fastest.
  CHECK(rows[5].rfind("      1  128                      450  ", 0) == 0);
  CHECK(rows[4].find("+0.0") != std::string::npos);  // point 0 against itself
}

TEST_CASE("moesim sweep --csv, --json and --html write the same rows") {
  const std::string csv = testing::TempPath("sweep.csv"), html = testing::TempPath("sweep.html");
  const auto run = Moesim(SweepArgs({"--set", "workload.tokens_per_gpu=128,256", "--json", "-",
                                     "--csv", csv, "--html", html, "--quiet"}));
  REQUIRE(run.status == 0);
  pb::SweepTable t;
  REQUIRE(google::protobuf::util::JsonStringToMessage(run.out, &t).ok());
  REQUIRE(t.rows_size() == 2);
  CHECK(t.fields(0).path() == "workload.tokens_per_gpu");
  CHECK(t.rows(1).values(0) == "256");
  const std::string text = SweepSlurp(csv);
  CHECK(text.rfind("point,workload.tokens_per_gpu,total_ns,delta_pct,router ns,dispatch ns,", 0) ==
        0);
  CHECK(text.find("\n1,256," + std::to_string(t.rows(1).total_ns()) + ",") != std::string::npos);
  const std::string page = SweepSlurp(html);
  CHECK(page.find("<figure id=\"sweep-total\">") != std::string::npos);
  CHECK(page.find("<figure id=\"sweep-components\">") != std::string::npos);
  CHECK(page.find("<table id=\"sweep-table\">") != std::string::npos);
  std::filesystem::remove(csv);
  std::filesystem::remove(html);
}

TEST_CASE("moesim sweep --fidelity flow --flow-tolerance: every point with the tolerance") {
  // The tolerance reaches every point (sim/network/flow_model.h; its error bound is
  // tests/flow_tolerance_test.cc's): the table records it and the header says it.
  const auto json =
      Moesim(SweepArgs({"--set", "workload.tokens_per_gpu=128,256", "--fidelity", "flow",
                        "--flow-tolerance", "0.01", "--json", "-", "--quiet"}));
  REQUIRE(json.status == 0);
  pb::SweepTable t;
  REQUIRE(google::protobuf::util::JsonStringToMessage(json.out, &t).ok());
  CHECK(t.fidelity() == "flow");
  CHECK(t.flow_tolerance() == 0.01);
  REQUIRE(t.rows_size() == 2);
  CHECK(t.failed() == 0);
  const auto text = Moesim(SweepArgs({"--set", "workload.tokens_per_gpu=128,256", "--fidelity",
                                      "flow", "--flow-tolerance", "0.01"}));
  REQUIRE(text.status == 0);
  CHECK_THAT(text.out, Catch::Contains("MoE layers, flow, tolerance 1 % on direct all-to-alls: 2 "
                                       "points"));
  const auto analytical =
      Moesim(SweepArgs({"--set", "workload.tokens_per_gpu=128", "--flow-tolerance", "0.01"}));
  CHECK(analytical.status == 1);
  CHECK_THAT(analytical.err, Catch::Contains("--flow-tolerance = 0.01: applies to the flow model"));
}

TEST_CASE("moesim sweep: a bad field path or value is one located error, exit 1") {
  auto run = Moesim(SweepArgs({"--set", "workload.tokens=128"}));
  CHECK(run.status == 1);
  CHECK(run.err ==
        "moesim: error: --set workload.tokens=128: workload.tokens: no field \"tokens\" in "
        "workload (Workload); valid: tokens_per_gpu, moe_layers, alltoall_algo, dispatch_dtype, "
        "combine_dtype, alltoall_chunk_tokens, capacity_factor, dispatch_kernel_gbps, "
        "combine_kernel_gbps, dispatch_rdma_kernel_gbps, combine_rdma_kernel_gbps\n");
  run = Moesim(SweepArgs({"--set", "workload.tokens_per_gpu=128:512:x0.5"}));
  CHECK(run.status == 1);
  CHECK(run.err.find("the factor after x must be a number above 1") != std::string::npos);
  // Every point refused: the error, not an empty table.
  run = Moesim(SweepArgs({"--set", "plan.ep=3"}));
  CHECK(run.status == 1);
  CHECK(run.err.rfind("moesim: error: --set plan.ep=3: plan.ep = 3: ", 0) == 0);
  // --set is required.
  CHECK(Moesim({"sweep", testing::SourcePath("scenarios/mixtral_layer_ep4_small.pbtxt")}).status ==
        2);
}

}  // namespace moesim

namespace moesim {

TEST_CASE("moesim sweep of a step: the host's issue time, and the host as the bottleneck") {
  // The Mixtral step at no host cost and at 100 ms a kernel: there the GPU waits for the host far
  // longer than any op runs, and the row says so; the total grows.
  const auto run = Moesim({"sweep", testing::SourcePath("scenarios/mixtral-8x7b-h100-64.pbtxt"),
                           "--set", "step.host_us_per_kernel=0,100000", "--json", "-", "--quiet"});
  REQUIRE(run.status == 0);
  pb::SweepTable t;
  REQUIRE(google::protobuf::util::JsonStringToMessage(run.out, &t).ok());
  REQUIRE(t.rows_size() == 2);
  CHECK(t.rows(0).bottleneck() != "host (issuing kernels)");
  CHECK(t.rows(1).bottleneck() == "host (issuing kernels)");
  CHECK(t.rows(1).total_ns() > t.rows(0).total_ns());
}

}  // namespace moesim
