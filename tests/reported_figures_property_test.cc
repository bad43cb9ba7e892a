// Issue #17's property: no command exits 0 with a negative or non-finite time, size or rate. Random
// scenarios, with every figure drawn anywhere in the range its field declares (proto/range.proto,
// log-uniform, ends included), are run through `moesim simulate --json` as a user runs it; each
// either exits 0 with a Result or StepResult whose every number passes CheckReportedFigures, or
// exits 1 with one "moesim: error:" line. Seeded: the same 20 scenarios on every run (under ASan,
// tests/sanitizer_budget.h, the first 5 and then as many more as it takes to see both outcomes).
#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <unistd.h>

#include "proto/checked.h"
#include "proto/plan.pb.h"
#include "proto/result.pb.h"
#include "sanitizer_budget.h"
#include "sim/cli/cli.h"

namespace moesim::sim {
namespace {

// Log-uniform in [lo, hi], with each end drawn 1 time in 8 (the ends are where overflow lives).
double Draw(std::mt19937_64& rng, double lo, double hi) {
  const uint64_t pick = rng() % 8;
  if (pick == 0) return lo;
  if (pick == 1) return hi;
  const double u = std::uniform_real_distribution<double>(0, 1)(rng);
  return std::exp(std::log(lo) + u * (std::log(hi) - std::log(lo)));
}

uint64_t DrawCount(std::mt19937_64& rng, double lo, double hi) {
  return static_cast<uint64_t>(std::llround(Draw(rng, lo, hi)));
}

}  // namespace

TEST_CASE("Property: no scenario exits 0 with a negative, non-finite or overflowed figure") {
  std::mt19937_64 rng(17);
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("moesim_property_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  int succeeded = 0, refused = 0;
  const int quota = static_cast<int>(testing::CasesToCheck(20));
  for (int i = 0; i < 20; ++i) {
    const bool step = i % 2 == 1;
    std::ostringstream text;
    // One 8-GPU node whose links take any bandwidth and latency their fields accept.
    text << "cluster { node { name: \"n\" gpu: \"h100-sxm\" gpus: 8\n"
         << "  nvlink { bandwidth_gbps: " << Draw(rng, 0.001, 1e6)
         << " latency_ns: " << Draw(rng, 1, 1e9) << " } } }\n"
         << "model: \"mixtral-8x7b\"\nplan { ep: 8 }\n"
         << "routing { synthetic { distribution: UNIFORM seed: " << i << " } }\n";
    if (step) {
      // dp = 8 (8 GPUs, tp = cp = pp = 1): the global batch a multiple of 8, up to the range's 2^24.
      text << "step { global_batch: " << 8 * DrawCount(rng, 1, 2097152)
           << " seq_len: " << DrawCount(rng, 1, 16777216) << " }\n";
    } else {
      // Tokens up to 2^14 here (the range goes to 2^24; the routing of 2^24 tokens x 8 GPUs takes
      // a second per scenario, too long for a unit test).
      text << "workload { tokens_per_gpu: " << DrawCount(rng, 1, 16384) << " }\n";
    }
    // Every scenario is drawn (the same ones on every build); the first `quota` are run, and more
    // only until both outcomes have occurred.
    if (i >= quota && succeeded > 0 && refused > 0) continue;
    const std::filesystem::path path = dir / ("s" + std::to_string(i) + ".pbtxt");
    std::ofstream(path) << text.str();
    std::ostringstream out, err;
    const int status = RunMoesim({"simulate", path.string(), "--json"}, out, err);
    INFO("scenario " << i << ":\n" << text.str() << "stderr: " << err.str());
    REQUIRE((status == 0 || status == 1));
    if (status == 1) {
      ++refused;
      const std::string line = err.str();
      CHECK(line.rfind("moesim: error: ", 0) == 0);
      CHECK(std::count(line.begin(), line.end(), '\n') == 1);
      continue;
    }
    ++succeeded;
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    if (step) {
      pb::StepResult result;
      REQUIRE(google::protobuf::util::JsonStringToMessage(out.str(), &result, options).ok());
      CHECK(result.step_ns() > 0);
      const Status sane = CheckReportedFigures(result, "step");
      CHECK(sane.ok());
    } else {
      pb::Result result;
      REQUIRE(google::protobuf::util::JsonStringToMessage(out.str(), &result, options).ok());
      CHECK(result.total_ns() > 0);
      const Status sane = CheckReportedFigures(result, "layer");
      CHECK(sane.ok());
    }
  }
  std::filesystem::remove_all(dir);
  // Both outcomes occur, so the property is exercised both ways.
  CHECK(succeeded > 0);
  CHECK(refused > 0);
}

}  // namespace moesim::sim
