// Speed of the two fidelities against the engine issue's bars (not a test; Release build):
//
//   cmake --build build --target moesim_bench_flow && build/tests/moesim_bench_flow
//
// With no argument it runs every configuration below; with names, those. Each runs in a process of
// its own (this binary, with --one NAME), so that the peak RSS printed is that run's alone.
//
//   a2a-flow-128, a2a-flow-1024                 the all-to-all, flow fidelity (its bars)
//   a2a-flow-2048, a2a-flow-4096                the same, larger (the datacenter issue's, #21)
//   a2a-analytical-1024, -16384                 the same, analytical fidelity
//   moe-flow-128, moe-flow-1024                 the whole MoE layer, flow fidelity
//   moe-analytical-128, -1024, -2048, -4096, -16384   the same, analytical fidelity
//   a2a-analytical-16384-v2, a2a-flow-1024-v2   the all-to-all with routing_version 2 (counts
//   moe-analytical-16384-v2                     per rank and expert, models/count_routing.h)
//   uniform-flow-1024                           a uniform all-to-all, flow fidelity
//   uniform-flow-1024-node                      the same fabric written as one 1,024-GPU node
//   a2a-flow-1024-tol, -2048-tol, -4096-tol,    flow fidelity with --flow-tolerance 0.01
//   moe-flow-1024-tol                           (sim/network/flow_model.h), each also run exact
//                                               to print the error: every rank's end (a2a) or the
//                                               layer's (moe) against the exact run's
//
// The workload: one MoE layer, Zipf-skewed routing (alpha 1.2, experts shuffled), top-8 of
// 256 experts, 4,096 tokens per GPU, hidden 7168 (BF16), EP over every GPU (at most 256), DGX H100
// nodes on a rail-optimized fabric (groups of 32 nodes). The issue's bars name "an imbalanced
// all-to-all": a2a-* time the layer's dispatch alone (AllToAllFlows / AllToAllCosts on its token
// matrix; "predicted ms" is its slowest rank). moe-* time the whole layer (router, dispatch,
// experts, combine: two all-to-alls). "load" is parsing, building the cluster, drawing the routing
// and expanding it.
//
// The uniform all-to-all: nccl-tests' alltoall of 64 MiB per GPU (64 KiB to each peer), direct, on
// 1,024 GPUs each behind one 450 GB/s port of a single switch (1,024 one-GPU nodes with a 3,600
// Gb/s NIC; PCIe at 900 GB/s so that it is not the bottleneck), timed by the flow model with the
// protocol NCCL's tuner picks. Every port carries 1,023 flows that all end together, so the flow
// time must equal the closed form (n - 1) S / (B x efficiency) + latency to rounding (1 ps).
//
// "cpu s" is the process's user + system time over the simulation: on a shared machine it is the
// steadier figure; "simulate s" is wall time.
#include <fmt/format.h>
#include <google/protobuf/text_format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench_util.h"
#include "models/model_spec.h"
#include "proto/cluster.pb.h"
#include "sim/moe/moe_layer.h"
#include "sim/moe/scenario_loader.h"
#include "sim/network/alltoall_cost.h"
#include "sim/network/collective_time.h"
#include "sim/network/collectives.h"
#include "sim/network/flow_model.h"
#include "sim/network/network_model.h"

extern char** environ;

namespace {

using moesim::bench::Clock;
using moesim::bench::CpuSeconds;
using moesim::bench::PeakRssMiB;
using moesim::bench::Seconds;

// What a configuration times.
enum class Workload {
  kAllToAll,        // the MoE layer's dispatch all-to-all alone: what the bars name
  kLayer,           // the whole MoE layer: router, dispatch, experts, combine (two all-to-alls)
  kUniform,         // nccl-tests' uniform alltoall
  kUniformOneNode,  // the same on the same fabric, written as one node of every GPU
};

struct Config {
  const char* name;
  uint32_t gpus;
  const char* fidelity;  // "flow" or "analytical"
  Workload workload;
  double bar_seconds;  // the bar on "simulate" (0: none)
  double bar_rss_mib;  // the bar on peak RSS (0: none)
  bool counts = false;  // routing_version 2: counts per (rank, expert), not per token
  double tolerance = 0;  // the flow model's (FlowOptions); > 0: also run exact, print the error
};

constexpr Config kConfigs[] = {
    {"a2a-flow-128", 128, "flow", Workload::kAllToAll, 0.5, 0},
    {"a2a-flow-1024", 1024, "flow", Workload::kAllToAll, 10, 4096},
    {"a2a-analytical-1024", 1024, "analytical", Workload::kAllToAll, 0, 0},
    {"a2a-analytical-16384", 16384, "analytical", Workload::kAllToAll, 2, 0},
    {"a2a-analytical-16384-v2", 16384, "analytical", Workload::kAllToAll, 2, 0, true},
    {"a2a-flow-1024-v2", 1024, "flow", Workload::kAllToAll, 10, 4096, true},
    {"a2a-flow-2048", 2048, "flow", Workload::kAllToAll, 0, 4096},
    {"a2a-flow-4096", 4096, "flow", Workload::kAllToAll, 10, 4096},
    {"a2a-flow-1024-tol", 1024, "flow", Workload::kAllToAll, 2, 4096, false, 0.01},
    {"a2a-flow-2048-tol", 2048, "flow", Workload::kAllToAll, 0, 4096, false, 0.01},
    {"a2a-flow-4096-tol", 4096, "flow", Workload::kAllToAll, 10, 4096, false, 0.01},
    {"moe-flow-1024-tol", 1024, "flow", Workload::kLayer, 4, 4096, false, 0.01},
    {"moe-analytical-128", 128, "analytical", Workload::kLayer, 0, 0},
    {"moe-flow-128", 128, "flow", Workload::kLayer, 0, 0},
    {"moe-analytical-1024", 1024, "analytical", Workload::kLayer, 0, 0},
    {"moe-flow-1024", 1024, "flow", Workload::kLayer, 0, 0},
    {"moe-analytical-2048", 2048, "analytical", Workload::kLayer, 0, 0},
    {"moe-analytical-4096", 4096, "analytical", Workload::kLayer, 0, 0},
    {"moe-analytical-16384", 16384, "analytical", Workload::kLayer, 0, 0},
    {"moe-analytical-16384-v2", 16384, "analytical", Workload::kLayer, 0, 0, true},
    {"uniform-flow-1024", 1024, "flow", Workload::kUniform, 5, 0},
    {"uniform-flow-1024-node", 1024, "flow", Workload::kUniformOneNode, 5, 0},
};

std::string MoeScenario(uint32_t nodes, bool counts) {
  return "cluster { node_preset: \"dgx-h100\" nodes: " + std::to_string(nodes) +
         " fabric { rail_optimized { nodes_per_group: " + std::to_string(nodes < 32 ? nodes : 32) +
         " } } }\n"
         "model_spec { name: \"bench\" hidden_size: 7168 expert_ffn_size: 2048 num_experts: 256 "
         "top_k: 8 num_layers: 1 dtype: BF16 }\n"
         "plan { ep: " +
         std::to_string(std::min<uint32_t>(nodes * 8, 256)) +
         " }\n"
         "workload { tokens_per_gpu: 4096 }\n"
         "routing { synthetic { distribution: ZIPF zipf_alpha: 1.2 shuffle_experts: true seed: 1" +
         std::string(counts ? " routing_version: 2" : "") + " } }\n";
}

// `one_node`: the same fabric as one node whose GPUs all sit on one NVSwitch at 450 GB/s (the
// datacenter issue's "one big node"), which the router builds from the node's structure.
// At line rate (`line_rate: true`, no achieved-rate derating, topology/achieved.h), so that the
// uniform case's closed form below holds with the datasheet's 450 GB/s.
std::string UniformCluster(uint32_t gpus, bool one_node) {
  if (one_node) {
    return "node { name: \"big-nvlink-450\" gpu: \"h100-sxm\" gpus: " + std::to_string(gpus) +
           " nvlink { bandwidth_gbps: 450 } pcie { bandwidth_gbps: 900 } } nodes: 1 "
           "line_rate: true\n";
  }
  return "node { name: \"one-gpu-450\" gpu: \"h100-sxm\" gpus: 1 "
         "pcie { bandwidth_gbps: 900 } nics { count: 1 gbit_per_s: 3600 } } nodes: " +
         std::to_string(gpus) + " fabric { single_switch {} } line_rate: true\n";
}

// MemAvailable from /proc/meminfo, MiB (0 if unknown).
double AvailableMiB() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  double kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib / 1024;
  }
  return 0;
}

struct Row {
  double load = 0, simulate = 0, cpu = 0, predicted_ms = 0;
  std::string note;
};

void Print(const Config& c, const Row& row) {
  std::string verdict = "-";
  if (c.bar_seconds > 0 && row.note.rfind("skipped", 0) == 0) {
    verdict = fmt::format("< {:g} s: not run", c.bar_seconds);
  } else if (c.bar_seconds > 0) {
    verdict = fmt::format("< {:g} s: {}", c.bar_seconds,
                          row.simulate < c.bar_seconds ? "met" : "NOT met");
    if (c.bar_rss_mib > 0) {
      verdict += fmt::format("; < {:g} GiB: {}", c.bar_rss_mib / 1024,
                             PeakRssMiB() < c.bar_rss_mib ? "met" : "NOT met");
    }
  }
  fmt::print("{:<21} {:6} {:<10} {:>8.3f} {:>10.3f} {:>8.3f} {:>13.3f} {:>8.0f}  {:<30} {}\n",
             c.name, c.gpus, c.fidelity, row.load, row.simulate, row.cpu, row.predicted_ms,
             PeakRssMiB(), verdict, row.note);
  std::fflush(stdout);
}

// The MoE scenario of `c.gpus` GPUs, loaded into *out with row->load timed; false when it was not
// run (row->note says why, or the error is on stderr and *status is 1).
//
// Memory grows with GPUs: the routing's expert ids (4,096 tokens x top-8 x 4 bytes per GPU) and
// the sparse traffic matrices; measured peak RSS about 145 KiB per GPU at 4,096 and 16,384 GPUs
// (the result carries no n x n send matrix above 2,048). A run that would not fit is not started.
bool LoadMoe(const Config& c, Row* row, std::optional<moesim::sim::LoadedScenario>* out,
             int* status) {
  *status = 0;
  const double need_mib = static_cast<double>(c.gpus) * 145 / 1024;
  if (need_mib > 0.8 * AvailableMiB()) {
    row->note = fmt::format("skipped: needs ~{:.0f} GiB, {:.0f} GiB available", need_mib / 1024,
                            AvailableMiB() / 1024);
    return false;
  }
  const auto load_start = Clock::now();
  auto s = moesim::sim::LoadScenarioFromString(MoeScenario(c.gpus / 8, c.counts), "bench.pbtxt");
  if (!s.ok()) {
    fmt::print(stderr, "{}\n", s.error().message());
    *status = 1;
    return false;
  }
  *out = std::move(*s);
  row->load = Seconds(load_start);
  return true;
}

int RunMoe(const Config& c) {
  Row row;
  std::optional<moesim::sim::LoadedScenario> s;
  int status = 0;
  if (!LoadMoe(c, &row, &s, &status)) {
    if (status == 0) Print(c, row);
    return status;
  }
  const auto fidelity = moesim::sim::ParseFidelity(c.fidelity);
  if (!fidelity.ok()) {
    fmt::print(stderr, "{}\n", fidelity.error().message());
    return 1;
  }
  const double cpu_start = CpuSeconds();
  const auto start = Clock::now();
  const moesim::pb::Result r = moesim::sim::SimulateMoeLayers(
      s->cluster, s->workload, *fidelity, moesim::sim::FlowOptions{c.tolerance});
  row.simulate = Seconds(start);
  row.cpu = CpuSeconds() - cpu_start;
  row.predicted_ms = r.total_ns() / 1e6;
  if (c.tolerance > 0) {
    const moesim::pb::Result exact =
        moesim::sim::SimulateMoeLayers(s->cluster, s->workload, *fidelity);
    const double error = static_cast<double>(r.total_ns() - exact.total_ns()) /
                         static_cast<double>(exact.total_ns());
    row.note =
        fmt::format("tolerance {:g}: layer {:+.2e} of the exact {:.3f} ms ({:.2f} e)", c.tolerance,
                    error, exact.total_ns() / 1e6, std::abs(error) / c.tolerance);
  }
  Print(c, row);
  return 0;
}

// The layer's dispatch alone: one imbalanced all-to-all, its slowest rank's time.
int RunAllToAll(const Config& c) {
  using namespace moesim::sim;
  Row row;
  std::optional<LoadedScenario> s;
  int status = 0;
  if (!LoadMoe(c, &row, &s, &status)) {
    if (status == 0) Print(c, row);
    return status;
  }
  const moesim::models::TrafficMatrix& tokens = s->workload.layers[0].dispatch_tokens;
  const moesim::Bytes token_bytes = moesim::models::TokenBytes(s->workload.model);
  const auto fidelity = moesim::sim::ParseFidelity(c.fidelity);
  if (!fidelity.ok()) {
    fmt::print(stderr, "{}\n", fidelity.error().message());
    return 1;
  }
  const std::unique_ptr<moesim::sim::NetworkModel> net =
      moesim::sim::MakeNetworkModel(s->cluster, *fidelity, FlowOptions{c.tolerance});
  const double cpu_start = CpuSeconds();
  const auto start = Clock::now();
  const AllToAll a = net->AllToAllV(tokens, token_bytes);
  row.simulate = Seconds(start);
  row.cpu = CpuSeconds() - cpu_start;
  moesim::Duration slowest;
  for (const RankCost& rank : a.ranks) slowest = std::max(slowest, rank.time);
  row.predicted_ms = static_cast<double>(slowest.picoseconds()) / 1e9;
  uint64_t flows = 0;  // the pairs that exchange tokens
  for (uint32_t src = 0; src < tokens.ranks(); ++src) {
    for (const auto& cell : tokens.row(src)) flows += cell.dst != src && cell.count > 0;
  }
  row.note = fmt::format("{} flows", flows);
  if (c.tolerance > 0) {
    // Every rank's end against the exact run's, over the exact slowest rank.
    const AllToAll exact = MakeNetworkModel(s->cluster, *fidelity)->AllToAllV(tokens, token_bytes);
    moesim::Duration exact_slowest;
    for (const RankCost& rank : exact.ranks) exact_slowest = std::max(exact_slowest, rank.time);
    double worst = 0;
    for (size_t r = 0; r < exact.ranks.size(); ++r) {
      worst = std::max(worst, std::abs(static_cast<double>(a.ranks[r].time.picoseconds() -
                                                           exact.ranks[r].time.picoseconds())));
    }
    const double end = static_cast<double>(exact_slowest.picoseconds());
    row.note += fmt::format(
        "; tolerance {:g}: slowest rank {:+.2e}, worst rank {:.2e} of the exact {:.3f} ms "
        "({:.2f} e)",
        c.tolerance, (static_cast<double>(slowest.picoseconds()) - end) / end, worst / end,
        end / 1e9, worst / end / c.tolerance);
  }
  Print(c, row);
  return 0;
}

int RunUniform(const Config& c) {
  using namespace moesim::sim;
  Row row;
  const auto load_start = Clock::now();
  moesim::pb::Cluster spec;
  const bool one_node = c.workload == Workload::kUniformOneNode;
  if (!google::protobuf::TextFormat::ParseFromString(UniformCluster(c.gpus, one_node), &spec)) {
    return 1;
  }
  auto cluster = moesim::topology::BuildCluster(spec);
  if (!cluster.ok()) {
    fmt::print(stderr, "{}\n", cluster.error().message());
    return 1;
  }
  const uint64_t size = uint64_t{64} << 20;
  auto schedule =
      BuildCollective(CollectiveOp::kAllToAll, CollectiveAlgo::kDirect, c.gpus, size, 1);
  if (!schedule.ok()) {
    fmt::print(stderr, "{}\n", schedule.error().message());
    return 1;
  }
  const CollectiveTiming analytical = TimeCollective(*cluster, *schedule);
  row.load = Seconds(load_start);
  const double cpu_start = CpuSeconds();
  const auto start = Clock::now();
  const FlowRun flow = RunFlows(*cluster, *schedule, analytical.protocol);
  row.simulate = Seconds(start);
  row.cpu = CpuSeconds() - cpu_start;
  row.predicted_ms = static_cast<double>(flow.total.picoseconds()) / 1e9;
  // (n - 1) S / (B x efficiency) + latency, S = size / n to each peer, B = 450 GB/s.
  const double seconds = (c.gpus - 1.0) * static_cast<double>(size / c.gpus) /
                         (450e9 * NcclLatencyModel::Efficiency(analytical.protocol));
  const int64_t closed =
      analytical.latency.picoseconds() + static_cast<int64_t>(std::ceil(seconds * 1e12));
  const int64_t error = flow.total.picoseconds() - closed;
  row.note = "closed form " + std::to_string(closed) + " ps, flow " +
             std::to_string(flow.total.picoseconds()) + " ps (" + std::to_string(error) +
             " ps), analytical " + std::to_string(analytical.total.picoseconds()) +
             " ps: " + (std::llabs(error) <= 1 ? "exact to rounding" : "NOT EXACT");
  Print(c, row);
  return std::llabs(error) <= 1 ? 0 : 1;
}

int RunOne(const char* name) {
  for (const Config& c : kConfigs) {
    if (std::strcmp(c.name, name) != 0) continue;
    switch (c.workload) {
      case Workload::kAllToAll:
        return RunAllToAll(c);
      case Workload::kLayer:
        return RunMoe(c);
      case Workload::kUniform:
      case Workload::kUniformOneNode:
        return RunUniform(c);
    }
  }
  fmt::print(stderr, "unknown configuration {}\n", name);
  return 2;
}

// Runs `name` in a child process (this binary with --one) and waits for it.
int Spawn(const char* self, const char* name) {
  std::vector<char*> argv = {const_cast<char*>(self), const_cast<char*>("--one"),
                             const_cast<char*>(name), nullptr};
  pid_t pid = 0;
  if (posix_spawn(&pid, self, nullptr, nullptr, argv.data(), environ) != 0) {
    std::perror("posix_spawn");
    return 1;
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return 1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--one") == 0) return RunOne(argv[2]);
  fmt::print("{:<21} {:>6} {:<10} {:>8} {:>10} {:>8} {:>13} {:>8}  {:<30} {}\n", "configuration",
             "GPUs", "fidelity", "load s", "simulate s", "cpu s", "predicted ms", "RSS MiB", "bar",
             "note");
  std::fflush(stdout);
  std::vector<const char*> names;
  for (int i = 1; i < argc; ++i) names.push_back(argv[i]);
  if (names.empty()) {
    for (const Config& c : kConfigs) names.push_back(c.name);
  }
  int failures = 0;
  for (const char* name : names) failures += Spawn("/proc/self/exe", name) != 0;
  return failures == 0 ? 0 : 1;
}
