#include "sim/report/timeline.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
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
  // Combine starts after router (30 ns), dispatch (1,111) and expert (210,694): 211.835 us.
  CHECK(combine_start == Approx(211.835));
}

}  // namespace moesim::sim
