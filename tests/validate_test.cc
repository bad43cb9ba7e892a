#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "sim/calibration/calibrate.h"
#include "sim/calibration/validation.h"
#include "sim/compute/profile_predict.h"
#include "sim/moe/moe_layer.h"

namespace moesim::sim {
namespace {

// A 2-rank EP 2 layer as the CPU calibration scenarios (scenarios/calibration/), `tokens` per rank.
std::string ScenarioText(const std::string& name, int tokens, const std::string& routing) {
  return "name: \"" + name + "\"\n" +
         "cluster { node_preset: \"dgx-h100\" gpus: 2 }\n"
         "model_spec { name: \"m\" hidden_size: 256 expert_ffn_size: 896 num_experts: 8 top_k: 2 "
         "num_layers: 1 dtype: FP32 }\n"
         "plan { ep: 2 }\n"
         "workload { tokens_per_gpu: " +
         std::to_string(tokens) + " }\nrouting { synthetic { " + routing + " } }\n";
}

LoadedScenario Scenario(const std::string& name, int tokens,
                        const std::string& routing = "distribution: UNIFORM seed: 1") {
  auto s = LoadScenarioFromString(ScenarioText(name, tokens, routing), name + ".pbtxt");
  REQUIRE(s.ok());
  return std::move(*s);
}

pb::HardwareProfile KnownProfile() {
  pb::HardwareProfile p;
  p.set_name("known");
  p.mutable_gpu()->set_gemm_peak_tflops(0.05);
  p.mutable_gpu()->set_memory_bandwidth_gbps(5);
  p.mutable_gpu()->set_launch_overhead_ns(20'000);
  for (const char* c : {"dispatch", "combine"}) {
    pb::LinkProfile* l = p.add_links();
    l->set_link_class("nvlink");
    l->set_collective(c);
    l->set_latency_ns(c == std::string("dispatch") ? 30'000 : 50'000);
    l->set_bandwidth_gbps(2);
  }
  return p;
}

// What moebench would write if the hardware were exactly `profile`: the prediction, marked
// measured, with the scenario's send matrices.
MeasuredFile Measured(const LoadedScenario& s, const pb::HardwareProfile& profile) {
  auto r = PredictWithProfile(s.cluster, s.workload, profile);
  REQUIRE(r.ok());
  r->set_executor("measured");
  r->set_dtype("fp32");
  const pb::Result with_matrices = SimulateMoeLayers(s.cluster, s.workload);
  *r->mutable_send_matrices() = with_matrices.send_matrices();
  return MeasuredFile{s.workload.name + ".pb", *r};
}

}  // namespace

TEST_CASE("Validate: a profile that is the hardware predicts every op to rounding") {
  const LoadedScenario s = Scenario("uniform", 512);
  const MeasuredFile m = Measured(s, KnownProfile());
  const pb::HardwareProfile profile = KnownProfile();
  auto report = Validate({{&s, &m}}, &profile);
  REQUIRE(report.ok());
  // 4 phases + collectives + step; each prediction equals the "measurement" exactly.
  REQUIRE(report->rows_size() == 6);
  for (const pb::ValidationRow& row : report->rows()) CHECK(row.relative_error() == 0);
  // The datasheet model (an H100) is far faster than these CPU-like figures: error near -100%.
  CHECK(report->rows(2).datasheet_relative_error() < -0.9);
  const pb::ValidationSummary& all = report->summaries(report->summaries_size() - 1);
  CHECK(all.op() == "all");
  CHECK(all.rows() == 4);
  CHECK(all.median_abs_error() == 0);
  CHECK(all.datasheet_median_abs_error() > 0.9);
}

TEST_CASE("Calibrate then validate: fitted from runs, exact on a held-out Zipf run") {
  // Runs at 4 token counts under a known profile; the fit must give a profile that predicts a
  // Zipf-routed run (other skew, other tokens) to within time rounding (1 ns in ~1 ms).
  std::vector<Observation> obs;
  for (int tokens : {128, 256, 512, 1024}) {
    const LoadedScenario s = Scenario("fit" + std::to_string(tokens), tokens);
    const MeasuredFile m = Measured(s, KnownProfile());
    REQUIRE(CheckSameScenario(m, s).ok());
    auto o = ObservationsOf(m, &s);
    REQUIRE(o.ok());
    obs.insert(obs.end(), o->begin(), o->end());
  }
  auto fitted = FitProfile(obs, "fitted");
  REQUIRE(fitted.ok());
  const LoadedScenario zipf = Scenario("zipf", 768, "distribution: ZIPF zipf_alpha: 1.2 seed: 2");
  const MeasuredFile m = Measured(zipf, KnownProfile());
  auto report = Validate({{&zipf, &m}}, &*fitted);
  REQUIRE(report.ok());
  for (const pb::ValidationRow& row : report->rows()) {
    INFO(row.op());
    CHECK(std::abs(row.relative_error()) < 1e-4);
  }
}

TEST_CASE("Validate refuses a measurement of another scenario, naming both") {
  const LoadedScenario s = Scenario("uniform", 512);
  const LoadedScenario other = Scenario("other", 512);
  const MeasuredFile m = Measured(other, KnownProfile());
  auto report = Validate({{&s, &m}}, nullptr);
  REQUIRE_FALSE(report.ok());
  CHECK(report.error().message() ==
        "other.pb: scenario = \"other\": the measurement is of another scenario (measured "
        "other.pb, scenario uniform.pbtxt); valid: \"uniform\", the scenario's name");
}

TEST_CASE("Validate refuses a measurement whose routing is not the scenario's") {
  const LoadedScenario s = Scenario("same-name", 512);
  const LoadedScenario skewed =
      Scenario("same-name", 512, "distribution: ZIPF zipf_alpha: 1.5 seed: 2");
  const MeasuredFile m = Measured(skewed, KnownProfile());
  auto report = Validate({{&s, &m}}, nullptr);
  REQUIRE_FALSE(report.ok());
  CHECK(report.error().message().find("send_matrices (dispatch, layer 0) = other tokens: the "
                                      "measured routing is not the scenario's") !=
        std::string::npos);
}

TEST_CASE("Validate with nothing to validate is an error") {
  auto report = Validate({}, nullptr);
  REQUIRE_FALSE(report.ok());
  CHECK(report.error().message().find("nothing to validate") != std::string::npos);
}

TEST_CASE(
    "Reading a measured Result: zero times and predictions are rejected with file and field") {
  const LoadedScenario s = Scenario("uniform", 256);
  MeasuredFile m = Measured(s, KnownProfile());
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "moesim_validate_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "zero.pb").string();

  m.result.mutable_phases(2)->set_time_ns(0);
  {
    std::ofstream f(path, std::ios::binary);
    REQUIRE(m.result.SerializeToOstream(&f));
  }
  auto zero = ReadMeasured(path);
  REQUIRE_FALSE(zero.ok());
  CHECK(zero.error().message() == path +
                                      ": phases[2] (expert, layer 0).time_ns = 0: a measured time "
                                      "must be; valid: > 0");

  m.result.mutable_phases(2)->set_time_ns(1000);
  m.result.mutable_phases(1)->set_rank_time_ns(1, -3);
  {
    std::ofstream f(path, std::ios::binary);
    REQUIRE(m.result.SerializeToOstream(&f));
  }
  auto negative = ReadMeasured(path);
  REQUIRE_FALSE(negative.ok());
  CHECK(negative.error().message().find("phases[1] (dispatch, layer 0).rank_time_ns[1] = -3") !=
        std::string::npos);

  m.result.mutable_phases(1)->set_rank_time_ns(1, 10);
  m.result.set_executor("analytical");
  {
    std::ofstream f(path, std::ios::binary);
    REQUIRE(m.result.SerializeToOstream(&f));
  }
  auto prediction = ReadMeasured(path);
  REQUIRE_FALSE(prediction.ok());
  CHECK(prediction.error().message().find("executor = analytical: a prediction") !=
        std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("A profile without the all-to-all's link class: an error naming what it has") {
  const LoadedScenario s = Scenario("uniform", 256);
  pb::HardwareProfile p = KnownProfile();
  p.mutable_links(0)->set_link_class("pcie");
  auto r = PredictWithProfile(s.cluster, s.workload, p);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message() ==
        "hardware profile known: links = nvlink dispatch: no entry for the all-to-all's link "
        "class; valid: pcie dispatch, nvlink combine");
}

TEST_CASE("One GPU: dispatch and combine are timed by the profile's local entry") {
  // EP 1 on one GPU, 64 tokens, top-2: 128 rows stay on the rank. A row is 256 fp32 = 1,024 B, so
  // local bytes = sent + received + 2 * own = 2 * 128 * 1,024 = 262,144 B, and the phase takes
  // 40 us + 262,144 B / (2 B/ns) = 40 + 131.072 = 171.072 us.
  const std::string text =
      "name: \"one\"\ncluster { node_preset: \"dgx-h200\" gpus: 1 }\n"
      "model_spec { name: \"m\" hidden_size: 256 expert_ffn_size: 896 num_experts: 8 top_k: 2 "
      "num_layers: 1 dtype: FP32 }\nplan { ep: 1 }\nworkload { tokens_per_gpu: 64 }\n"
      "routing { synthetic { distribution: UNIFORM seed: 1 } }\n";
  auto s = LoadScenarioFromString(text, "one.pbtxt");
  REQUIRE(s.ok());
  pb::HardwareProfile p = KnownProfile();
  for (pb::LinkProfile& l : *p.mutable_links()) {
    l.set_link_class("local");
    l.clear_bandwidth_gbps();
    l.set_latency_ns(40'000);
    l.set_local_bandwidth_gbps(2);
  }
  auto r = PredictWithProfile(s->cluster, s->workload, p);
  REQUIRE(r.ok());
  int timed = 0;
  for (const pb::Phase& ph : r->phases()) {
    if (ph.name() != "dispatch" && ph.name() != "combine") continue;
    CHECK(ph.time_ns() == 171'072);
    ++timed;
  }
  CHECK(timed == 2);
}

TEST_CASE("Loading a profile: a local entry needs no link bandwidth, any other does") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "moesim_validate_local_profile";
  fs::create_directories(dir);
  const std::string local =
      "name: \"p\"\nlinks { link_class: \"local\" collective: \"dispatch\" "
      "latency_ns: 100 local_bandwidth_gbps: 2 }\n";
  std::ofstream(dir / "local.pbtxt") << local;
  CHECK(LoadHardwareProfile((dir / "local.pbtxt").string()).ok());
  std::string nvlink = local;
  nvlink.replace(nvlink.find("local\""), 6, "nvlink\"");
  std::ofstream(dir / "nvlink.pbtxt") << nvlink;
  auto bad = LoadHardwareProfile((dir / "nvlink.pbtxt").string());
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message().find("links[0].bandwidth_gbps") != std::string::npos);
  CHECK(bad.error().message().find("> 0") != std::string::npos);
  // A large_gemms band needs a positive rate.
  std::ofstream(dir / "band.pbtxt") << "name: \"p\"\ngpu { large_gemms { min_flops: 1e9 } }\n";
  auto band = LoadHardwareProfile((dir / "band.pbtxt").string());
  REQUIRE_FALSE(band.ok());
  CHECK(band.error().message().find("gpu.large_gemms.gemm_peak_tflops") != std::string::npos);
  fs::remove_all(dir);
}

}  // namespace moesim::sim
