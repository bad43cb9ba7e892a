// Speed and size of `moesim export chakra` (not a test; Release build):
//
//   cmake --build build --target moesim_bench_chakra && build/tests/moesim_bench_chakra [DIR]
//
// Mixtral-8x7B on 256 H100 (scenarios/mixtral-8x7b-h100-64.pbtxt with 32 nodes and a global batch
// of 1,024: TP 1, EP 8, PP 4, DP 64, 16 micro-batches). Times, one row each: the step simulated
// (SimulateScenarioStep), every rank's trace built and serialised in memory, and the files written
// into DIR (default a new folder under the system's temp folder, removed after), each flushed to
// disk as moesim writes it (proto/atomic_file.h). Prints nodes, bytes, wall and CPU seconds and
// peak RSS.
#include <fmt/format.h>
#include <google/protobuf/util/delimited_message_util.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "bench_util.h"
#include "sim/moe/scenario_loader.h"
#include "sim/report/chakra_export.h"
#include "sim/step/scenario_run.h"

namespace {

using namespace moesim::bench;  // Clock, Seconds, CpuSeconds, PeakRssMiB
namespace sim = moesim::sim;

void Row(const std::string& what, uint64_t nodes, double mib, Clock::time_point start, double cpu) {
  fmt::print("{:<34} {:>9} {:>9.1f} {:>8.3f} {:>8.3f} {:>8.0f}\n", what, nodes, mib, Seconds(start),
             CpuSeconds() - cpu, PeakRssMiB());
}

std::string Replaced(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  std::ifstream in(MOESIM_SOURCE_DIR "/scenarios/mixtral-8x7b-h100-64.pbtxt");
  std::stringstream text;
  text << in.rdbuf();
  const std::string scenario = Replaced(Replaced(text.str(), "nodes: 8", "nodes: 32"),
                                        "global_batch: 256", "global_batch: 1024");
  const std::string dir = argc > 1 ? argv[1]
                                   : (std::filesystem::temp_directory_path() /
                                      ("moesim_bench_chakra_" + std::to_string(::getpid())))
                                         .string();
  fmt::print("{:<34} {:>9} {:>9} {:>8} {:>8} {:>8}\n", "mixtral-8x7b, 256 h100", "nodes", "MiB",
             "wall s", "CPU s", "RSS MiB");

  double cpu = CpuSeconds();
  auto start = Clock::now();
  auto s = sim::LoadScenarioFromString(scenario, "mixtral-256.pbtxt");
  if (!s.ok()) return 1;
  auto step = sim::SimulateScenarioStep(*s, sim::Fidelity::kAnalytical, std::nullopt);
  if (!step.ok()) return 1;
  auto e = sim::ChakraExport::Create(*step, s->workload.plan, s->workload.model);
  if (!e.ok()) return 1;
  Row("scenario loaded, step simulated", 0, 0, start, cpu);

  cpu = CpuSeconds();
  start = Clock::now();
  uint64_t nodes = 0, bytes = 0;
  for (uint32_t r = 0; r < e->ranks(); ++r) {
    const sim::ChakraRankTrace t = e->Rank(r);
    std::ostringstream out;
    google::protobuf::util::SerializeDelimitedToOstream(t.metadata, &out);
    for (const auto& n : t.nodes) google::protobuf::util::SerializeDelimitedToOstream(n, &out);
    nodes += t.nodes.size();
    bytes += out.str().size();
  }
  Row("256 traces built in memory", nodes, static_cast<double>(bytes) / (1 << 20), start, cpu);

  cpu = CpuSeconds();
  start = Clock::now();
  const bool fresh = !std::filesystem::exists(dir);
  auto w = sim::WriteChakraTraces(*e, dir, {});
  if (!w.ok()) {
    fmt::print(stderr, "{}\n", w.error().message());
    return 1;
  }
  Row("256 traces written", w->nodes, static_cast<double>(w->bytes) / (1 << 20), start, cpu);
  if (fresh && argc <= 1) std::filesystem::remove_all(dir);
  return 0;
}
