#include "sim/report/timeline.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "sim/moe/moe_layer.h"
#include "sim/moe/replay.h"
#include "sim/moe/scenario_loader.h"
#include "sim/network/network_model.h"
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

namespace moesim::sim {

TEST_CASE("A replay's timeline shows every step of the trace, one after another") {
  // scenarios/olmoe_trace_replay.pbtxt replays 4 steps of a trace on 8 GPUs (one node).
  auto s = LoadScenario(testing::SourcePath("scenarios/olmoe_trace_replay.pbtxt"));
  REQUIRE(s.ok());
  std::vector<pb::Result> steps;
  const pb::Result slowest =
      SimulateReplay(*MakeNetworkModel(s->cluster, Fidelity::kAnalytical), s->workload, &steps);
  REQUIRE(steps.size() == 4);
  REQUIRE(slowest.steps_size() == 4);
  int64_t total = 0;
  for (int i = 0; i < 4; ++i) {
    CHECK(steps[i].replayed_step() == slowest.steps(i).step());
    CHECK(steps[i].total_ns() == slowest.steps(i).total_ns());
    total += steps[i].total_ns();
  }
  std::ostringstream out;
  WriteReplayTimeline(steps, s->cluster, out);
  const nlohmann::json trace = nlohmann::json::parse(out.str());
  // The "trace steps" process (pid nodes + 1 = 2): a slice per step, back to back, ending at the
  // sum of the steps' totals; every step's phases on the GPU tracks, named with their step.
  int step_slices = 0;
  double end_us = 0;
  std::set<std::string> prefixes;
  for (const nlohmann::json& e : trace["traceEvents"]) {
    if (e["ph"] != "X") continue;
    if (e["pid"] == 2) {
      ++step_slices;
      end_us = std::max(end_us, e["ts"].get<double>() + e["dur"].get<double>());
    } else {
      const std::string name = e["name"];
      prefixes.insert(name.substr(0, name.find(':')));
    }
  }
  CHECK(step_slices == 4);
  CHECK(end_us * 1e3 == Approx(static_cast<double>(total)).margin(4));  // 4 roundings of < 1 ns
  CHECK(prefixes.size() == 4);
}

}  // namespace moesim::sim
