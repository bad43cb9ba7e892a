// Fuzzes a measured Result (what `moebench run/gemm --out` writes and `moesim calibrate` and
// `moesim validate` read; binary protobuf, or its JSON when the input starts with '{'): ReadMeasured,
// then the observations calibration fits: a gemm sweep's alone, a scenario run's after
// CheckSameScenario against scenarios/calibration/fit/uniform-t128.pbtxt (whose measurement,
// results/calibration/fit/uniform-t128.pb, is a seed). A `moebench a2a --json` sweep (the other
// file calibrate reads) goes through A2aSweepObservations.
#include <cstdint>
#include <optional>
#include <string>

#include "sim/calibration/calibration_data.h"
#include "sim/moe/scenario_loader.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

const moesim::sim::LoadedScenario* FitScenario() {
  static const std::optional<moesim::sim::LoadedScenario> scenario =
      [] () -> std::optional<moesim::sim::LoadedScenario> {
    auto s = moesim::sim::LoadScenario(MOESIM_SOURCE_DIR "/scenarios/calibration/fit/uniform-t128.pbtxt");
    if (!s.ok()) return std::nullopt;
    return std::move(s).value();
  }();
  return scenario ? &*scenario : nullptr;
}

bool LooksLikeJson(const uint8_t* data, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == ' ' || data[i] == '\n' || data[i] == '\t' || data[i] == '\r') continue;
    return data[i] == '{';
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static moesim::fuzz::InputFile binary(".pb");
  static moesim::fuzz::InputFile json(".json");
  const std::string& path = (LooksLikeJson(data, size) ? json : binary).Write(data, size);
  if (moesim::sim::IsA2aSweepFile(path)) {
    (void)moesim::sim::A2aSweepObservations(path, "nvlink");
    return 0;
  }
  auto measured = moesim::sim::ReadMeasured(path);
  if (!measured.ok()) return 0;
  if (moesim::sim::IsGemmSweep(measured->result)) {
    (void)moesim::sim::ObservationsOf(*measured, nullptr);
    return 0;
  }
  const moesim::sim::LoadedScenario* scenario = FitScenario();
  if (scenario == nullptr || !moesim::sim::CheckSameScenario(*measured, *scenario).ok()) return 0;
  (void)moesim::sim::ObservationsOf(*measured, scenario);
  return 0;
}
