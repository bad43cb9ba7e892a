#include "sim/report/timeline.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sim/moe/moe_layer.h"
#include "sim/moe/scenario_loader.h"
#include "test_paths.h"

namespace moesim::sim {

TEST_CASE(
    "The timeline is Chrome trace JSON: one track per GPU, phases in sequence, link counters") {
  auto s = LoadScenario(testing::SourcePath("scenarios/seed_example.pbtxt"));
  REQUIRE(s.ok());
  const pb::Result r = SimulateMoeLayers(s->cluster, s->workload);
  std::ostringstream out;
  WriteTimeline(r, s->cluster, out);
  google::protobuf::Struct trace;
  REQUIRE(google::protobuf::util::JsonStringToMessage(out.str(), &trace).ok());
  const auto& events = trace.fields().at("traceEvents").list_value().values();
  int spans = 0, counters = 0;
  double combine_start = -1;
  for (const auto& e : events) {
    const auto& f = e.struct_value().fields();
    const std::string ph = f.at("ph").string_value();
    if (ph == "X") {
      ++spans;
      if (f.at("name").string_value() == "combine L0" && f.at("tid").number_value() == 1) {
        combine_start = f.at("ts").number_value();
        // GPU 1's combine: 1,111 ns (tests/moe_layer_test.cc).
        CHECK(f.at("dur").number_value() == Approx(1.111));
      }
    }
    if (ph == "C") ++counters;
  }
  // 4 phases x 4 GPUs, every GPU busy in every phase.
  CHECK(spans == 16);
  // Dispatch and combine each: one NVLink counter up and one back to 0.
  CHECK(counters == 4);
  // Combine starts after router (30 ns), dispatch (1,111) and expert (210,694): 211,835 ns, so
  // 211.835 us to the last nanosecond: exactly the double nearest 211.835, as "%.3f" wrote it.
  CHECK(combine_start == 211.835);
}

TEST_CASE("The timeline escapes names: a tab, a newline, a quote and a backslash stay JSON") {
  auto s = LoadScenario(testing::SourcePath("scenarios/seed_example.pbtxt"));
  REQUIRE(s.ok());
  pb::Result r = SimulateMoeLayers(s->cluster, s->workload);
  // Names come from the scenario (phases) and the cluster (links, link classes); give one phase
  // all three a name that hand-written JSON quoting got wrong.
  const std::string odd = "gpu\t0\n\"a\" \\ b";
  pb::Phase* dispatch = r.mutable_phases(1);
  REQUIRE(dispatch->name() == "dispatch");
  dispatch->set_name(odd);
  dispatch->set_bottleneck_link(odd + " -> nvswitch0");
  (*dispatch->mutable_link_class_bytes())[odd] = 2184;
  std::ostringstream out;
  WriteTimeline(r, s->cluster, out);
  const nlohmann::json trace = nlohmann::json::parse(out.str());  // throws if it is not JSON

  int spans = 0, counters = 0;
  for (const nlohmann::json& e : trace.at("traceEvents")) {
    if (e.at("ph") == "X" && e.at("cat") == odd) {
      ++spans;
      CHECK(e.at("name") == odd + " L0");
      CHECK(e.at("args").at("busiest_link") == odd + " -> nvswitch0");
    }
    if (e.at("ph") == "C" && e.at("name") == odd) {
      // Up to the class's bytes when dispatch starts (after the router's 30 ns), back to 0 when
      // it ends 1,111 ns later: 0.030 and 1.141 us.
      CHECK(e.at("ts") == (counters == 0 ? 0.030 : 1.141));
      CHECK(e.at("args").at("bytes") == (counters == 0 ? 2184 : 0));
      ++counters;
    }
  }
  CHECK(spans == 4);  // every GPU in the dispatch
  CHECK(counters == 2);
}

}  // namespace moesim::sim
