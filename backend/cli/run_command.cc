// `moebench run SCENARIO [--device cpu|gpu] [--dtype bf16|fp8] [--gpus N] [--warmup W] [--iters I]
// [--out FILE] [--json] [--check] [--seed S] [--timeout-s T]`: a scenario's MoE layers, measured.
#include <fmt/format.h>
#include <mpi.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include "backend/cli/command.h"
#include "backend/comm/watchdog.h"
#include "backend/run/bench_scenario.h"
#include "backend/run/gpu_run.h"
#include "backend/run/moe_run.h"
#include "backend/run/run_report.h"
#include "proto/progress.h"

namespace moesim::backend {
namespace {

// The longest --timeout-s: one week (7 x 86,400 s). A limit, not a measurement: a step that makes
// no progress for a week has hung; anything longer is a typo (1e300 used to overflow the
// milliseconds and abort a healthy job at once).
constexpr double kMaxTimeoutS = 7 * 86400;

struct RunCommandOptions {
  std::string scenario;
  std::string device = "cpu";
  std::optional<uint32_t> gpus;
  uint32_t warmup = 2;
  uint32_t iters = 10;
  std::string out;
  bool json = false;
  bool check = false;
  uint64_t seed = 1;
  gpu::GemmApi gemm_api = gpu::GemmApi::kAuto;
  std::string dtype = "bf16";  // --device gpu: the expert GEMMs' ("fp8": GpuEpLayerConfig::fp8)
  double timeout_s = 300;
  // Fault injection for the tests of the watchdog (hidden options): this rank stops at its first
  // dispatch, by sleeping forever or by exiting without a word.
  std::optional<uint32_t> stall_rank, exit_rank;
  bool quiet = false;  // --quiet: no progress lines on stderr
};

// The progress hook: feeds the watchdog, and injects the test faults.
std::function<void(const std::string&)> ProgressHook(const RunCommandOptions& o, Watchdog* dog,
                                                     uint32_t rank) {
  return [&o, dog, rank](const std::string& step) {
    if (dog != nullptr) dog->Progress(step);
    if (step.find("dispatch") == std::string::npos) return;
    if (o.exit_rank == rank) std::_Exit(1);  // a crashed peer: no MPI_Finalize, no message
    if (o.stall_rank == rank) {
      for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
    }
  };
}

int Run(const RunCommandOptions& o, CommandIo& io) {
  if (o.dtype == "fp8" && o.device != "gpu") {
    return io.Fail(InputError({}, "--dtype", "fp8",
                              "FP8 expert GEMMs run on a GPU; the CPU kernels are fp32",
                              "--device gpu, or --dtype bf16"));
  }
  auto scenario = LoadBenchScenario(o.scenario);
  if (!scenario.ok()) return io.Fail(scenario.error());
  if (o.dtype == "fp8") {
    const pb::ModelSpec& m = scenario->workload.model;
    if (m.hidden_size() % 128 != 0 || m.expert_ffn_size() % 128 != 0) {
      return io.Fail(
          InputError(Location{o.scenario}, "--dtype fp8 with model " + m.name(),
                     "hidden_size " + std::to_string(m.hidden_size()) + ", expert_ffn_size " +
                         std::to_string(m.expert_ffn_size()),
                     "FP8 block scales of 128 need both multiples of 128",
                     "a scenario whose model has both multiples of 128, or --dtype bf16"));
    }
  }
  const uint32_t ranks = io.comm.size();
  if (o.iters < 1) return io.Fail(InputError({}, "--iters", "0", "nothing to time", ">= 1"));
  if (o.device == "cpu" && o.gpus) {
    // --gpus must fit the plan, and on the CPU be the number of processes.
    const Status fits = CheckRankCount(*scenario, *o.gpus, "--gpus");
    if (!fits.ok()) return io.Fail(fits.error());
  }
  if (o.device == "cpu" && o.gpus && *o.gpus != ranks) {
    return io.Fail(InputError(
        {}, "--gpus", std::to_string(*o.gpus),
        "the CPU device runs one rank per process, and this run has " + std::to_string(ranks) +
            " process(es)",
        "the number of MPI ranks: mpirun -np " + std::to_string(*o.gpus) + " moebench run ..."));
  }
  if (o.device == "cpu") {
    const Status count = CheckRankCount(*scenario, ranks, "MPI ranks (mpirun -np)");
    if (!count.ok()) return io.Fail(count.error());
  }
  // NaN fails every comparison: !(t >= 0) refuses it with the negatives.
  if (!(o.timeout_s >= 0) || o.timeout_s > kMaxTimeoutS) {
    return io.Fail(InputError(
        {}, "--timeout-s", fmt::format("{}", o.timeout_s), "not a time the watchdog can wait",
        fmt::format("0 (never) or seconds up to {} (one week)", kMaxTimeoutS)));
  }
  // Before the measurement, which may be long: an --out that cannot be written fails now.
  if (Status s = CheckOutOption(o.out, io); !s.ok()) return io.Fail(s.error());

  std::unique_ptr<Watchdog> dog;
  if (o.timeout_s > 0) {
    const uint32_t rank = io.comm.rank();
    // Rounded up, so that a limit under a millisecond is not 0 (an abort at once); at most
    // 604,800,000 ms, far inside int64.
    dog = std::make_unique<Watchdog>(
        std::chrono::milliseconds(static_cast<int64_t>(std::ceil(o.timeout_s * 1000))),
        [rank](const std::string& why) {
          std::cerr << "moebench: error: rank " << rank << ": " << why << "; aborting the job"
                    << std::endl;
          MPI_Abort(MPI_COMM_WORLD, 3);
        });
  }
  RunOptions options;
  options.warmup = o.warmup;
  options.iterations = o.iters;
  options.check = o.check;
  options.seed = o.seed;
  options.gemm_api = o.gemm_api;
  options.fp8 = o.dtype == "fp8";
  options.progress = ProgressHook(o, dog.get(), io.comm.rank());
  // Progress on rank 0's stderr, a line at each tenth of the iterations (and the last), as
  // `moesim plan` logs its candidates; --quiet: none; nor when a test captures stderr.
  const auto started = std::chrono::steady_clock::now();
  uint32_t reported_tenth = 0;
  if (io.root() && !o.quiet && &io.err == &std::cerr) {
    options.iteration_done = [&io, started, &reported_tenth](uint32_t done, uint32_t total) {
      const uint32_t tenth = static_cast<uint32_t>(uint64_t{done} * 10 / total);
      if (tenth == reported_tenth && done != total) return;
      reported_tenth = tenth;
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      io.err << "moebench run: iterations " << ProgressText(done, total, elapsed) << std::endl;
    };
  }
  auto report = o.device == "gpu" ? RunOnGpu(*scenario, io.comm, o.gpus, options)
                                  : RunMoeLayers(*scenario, io.comm, options);
  if (dog) dog->Stop();
  if (!report.ok()) return io.Fail(report.error());
  if (io.root() && !o.json) PrintRunReport(o.scenario, *report, io.out);
  if (io.root()) {
    for (const std::string& line : SpreadWarnings(report->result))
      io.err << "moebench: warning: " << line << "\n";
  }
  const Status written = WriteResult(report->result, o.out, o.json, io);
  if (!written.ok()) return io.Fail(written.error());
  return 0;
}

}  // namespace

void AddRunCommand(CLI::App& app, CommandAction* chosen) {
  auto o = std::make_shared<RunCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "run",
      "Run a scenario's MoE layers for real (router, dispatch, experts, combine), one rank per "
      "GPU, and measure each phase");
  cmd->add_option("scenario", o->scenario, "Scenario file (.pbtxt), as moesim reads it")
      ->required();
  cmd->add_option("--device", o->device, "cpu: MPI ranks with the Eigen kernels; gpu: CUDA + NCCL")
      ->check(CLI::IsMember({"cpu", "gpu"}))
      ->capture_default_str();
  cmd->add_option("--gpus", o->gpus,
                  "Ranks to run (must equal the scenario's GPUs); cpu: one per MPI process");
  cmd->add_option("--warmup", o->warmup, "Untimed iterations first")->capture_default_str();
  cmd->add_option("--iters", o->iters, "Timed iterations")->capture_default_str();
  cmd->add_option("--out", o->out, "Write the measured Result (binary protobuf) to FILE");
  cmd->add_flag("--json", o->json, "Print the measured Result as JSON instead of the table");
  cmd->add_flag("--quiet", o->quiet,
                "No progress lines on stderr (by default rank 0 prints one at each tenth of the "
                "iterations, with the time left)");
  cmd->add_flag("--check", o->check,
                "Verify dispatch (stamps) and combine (single-process reference) first");
  cmd->add_option("--seed", o->seed, "Seed of the inputs and weights")->capture_default_str();
  AddGemmApiOption(cmd, &o->gemm_api);
  cmd->add_option("--dtype", o->dtype,
                  "--device gpu: the expert GEMMs in bf16 (cuBLAS, --gemm-api) or fp8 (E4M3 with "
                  "1x128 activation and 128x128 weight block scales through cuBLASLt, a call per "
                  "expert; hidden and ffn multiples of 128); the rows move in bf16 either way")
      ->check(CLI::IsMember({"bf16", "fp8"}))
      ->capture_default_str();
  cmd->add_option("--timeout-s", o->timeout_s,
                  "Abort the whole job when a rank makes no progress for this long, in seconds "
                  "(0: never; at most 604800, one week)")
      ->capture_default_str();
  cmd->add_option("--fault-stall-rank", o->stall_rank)->group("");
  cmd->add_option("--fault-exit-rank", o->exit_rank)->group("");
  cmd->callback([o, chosen] { *chosen = [o](CommandIo& io) { return Run(*o, io); }; });
}

}  // namespace moesim::backend
