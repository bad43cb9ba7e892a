// The `moebench` command line on one rank (ctest runs `mpirun -np 1 moebench_mpi_tests [mpi1]`):
// a small run end to end, and the bad inputs a user meets, each with its message.
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

#include "backend/cli/cli.h"
#include "backend_scenarios.h"
#include "proto/result.pb.h"
#include "test_paths.h"

namespace moesim::backend {
namespace {

struct Run {
  int status;
  std::string out, err;
};

Run Moebench(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int status = RunMoebench(args, out, err);
  return {status, out.str(), err.str()};
}

std::string TempFile(const std::string& name, const std::string& text) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("moebench_cli_" + std::to_string(::getpid()) + "_" + name))
                               .string();
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("mpi1: moebench run on one rank checks and measures both layers", "[mpi1]") {
  const std::string scenario = TempFile("one_gpu.pbtxt", testing::kOneGpuScenario);
  const std::string out = TempFile("one_gpu.result", "");
  const Run r =
      Moebench({"run", scenario, "--check", "--iters", "3", "--warmup", "1", "--out", out});
  REQUIRE(r.status == 0);
  // Nothing on stderr but, on a loaded machine, a wide-spread warning (SpreadWarnings: 3
  // iterations of phases of tens of microseconds).
  std::istringstream err(r.err);
  for (std::string line; std::getline(err, line);)
    CHECK_THAT(line, Catch::StartsWith("moebench: warning: layer "));
  // 32 tokens x top-2 x 2 layers = 128 rows checked.
  CHECK_THAT(r.out, Catch::Contains("check: passed: dispatch delivered all 128 rows"));
  CHECK_THAT(r.out, Catch::Contains("      1  expert"));
  pb::Result result;
  std::ifstream file(out, std::ios::binary);
  REQUIRE(result.ParseFromIstream(&file));
  CHECK(result.phases_size() == 8);  // 2 layers x router, dispatch, expert, combine
  CHECK(result.warmup_iterations() == 1);
  // One rank: nothing crosses between ranks.
  CHECK(result.phases(1).bytes() == 0);
  // --json prints the same schema.
  const Run json = Moebench({"run", scenario, "--iters", "1", "--json"});
  REQUIRE(json.status == 0);
  pb::Result parsed;
  REQUIRE(google::protobuf::util::JsonStringToMessage(json.out, &parsed).ok());
  CHECK(parsed.executor() == "measured");
  CHECK(parsed.send_matrices(0).tokens(0).values(0).number_value() == 64);
  std::filesystem::remove(scenario);
  std::filesystem::remove(out);
}

TEST_CASE("mpi1: a rank count that does not match the plan names both numbers", "[mpi1]") {
  const std::string seed = testing::SourcePath("scenarios/seed_example.pbtxt");
  const Run r = Moebench({"run", seed});
  CHECK(r.status == 1);
  CHECK(r.err == "moebench: error: " + seed +
                     ":16:1: MPI ranks (mpirun -np) = 1: the scenario's plan needs 4 ranks "
                     "(cluster.gpus = 4, one rank per GPU) but this run has 1; valid: 4 (mpirun "
                     "-np 4)\n");
  // --gpus must fit the plan ...
  const Run two = Moebench({"run", seed, "--gpus", "2"});
  CHECK(two.status == 1);
  CHECK(two.err ==
        "moebench: error: " + seed +
            ":16:1: --gpus = 2: the scenario's plan needs 4 ranks (cluster.gpus = 4, one "
            "rank per GPU) but this run has 2; valid: 4\n");
  // ... and on the CPU device, one rank per process, be the MPI world's size.
  const Run gpus = Moebench({"run", seed, "--gpus", "4"});
  CHECK(gpus.status == 1);
  CHECK(gpus.err ==
        "moebench: error: --gpus = 4: the CPU device runs one rank per process, and this run has "
        "1 process(es); valid: the number of MPI ranks: mpirun -np 4 moebench run ...\n");
}

TEST_CASE("mpi1: sizes no host can hold are refused with how much was needed", "[mpi1]") {
  // 2 experts of hidden = ffn = 2^20: 3 x 2^40 fp32 weights each = 24 TiB on the one rank.
  const std::string scenario = TempFile("absurd.pbtxt", R"(
cluster { node_preset: "dgx-h100" gpus: 1 }
model_spec { name: "absurd" hidden_size: 1048576 expert_ffn_size: 1048576 num_experts: 2
             top_k: 1 num_layers: 1 dtype: BF16 }
workload { tokens_per_gpu: 4 }
routing { synthetic { distribution: UNIFORM seed: 1 } }
)");
  const Run r = Moebench({"run", scenario});
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Catch::StartsWith("moebench: error: rank 0: out of host memory: each rank "
                                      "needs 24.0 TiB (buffers "));
  CHECK_THAT(r.err, Catch::Contains("weights 24.0 TiB), but only "));
  std::filesystem::remove(scenario);
}

TEST_CASE("mpi1: --device gpu without CUDA or a visible GPU is a clear error", "[mpi1]") {
  const std::string scenario = TempFile("one_gpu_dev.pbtxt", testing::kOneGpuScenario);
  const Run run = Moebench({"run", scenario, "--device", "gpu"});
  CHECK(run.status == 1);
  // Built without CUDA: gpu_kernels' stub says so; with CUDA but no GPU: the runtime's reason.
  CHECK_THAT(run.err, Catch::StartsWith("moebench: error: --device gpu: no CUDA device visible: "));
  const Run a2a = Moebench({"a2a", "--device", "gpu", "-b", "1K", "-e", "1K"});
  CHECK(a2a.status == 1);
  CHECK_THAT(a2a.err, Catch::StartsWith("moebench: error: --device gpu: "));
  const Run gemm = Moebench({"gemm", "--device", "gpu"});
  CHECK(gemm.status == 1);
  CHECK_THAT(gemm.err, Catch::StartsWith("moebench: error: --device gpu: no CUDA device visible"));
  const Run fp8 = Moebench({"gemm", "--device", "gpu", "--dtype", "fp8"});
  CHECK(fp8.status == 1);
  CHECK_THAT(fp8.err, Catch::StartsWith("moebench: error: --device gpu: no CUDA device visible"));
  // moebench run --dtype fp8: a GPU only, and a model FP8's 128-wide block scales fit; both are
  // said before looking for a GPU. The tiny model's hidden size 64 does not fit.
  const Run fp8_cpu = Moebench({"run", scenario, "--dtype", "fp8"});
  CHECK(fp8_cpu.status == 1);
  CHECK(fp8_cpu.err ==
        "moebench: error: --dtype = fp8: FP8 expert GEMMs run on a GPU; the CPU kernels are fp32; "
        "valid: --device gpu, or --dtype bf16\n");
  const Run fp8_tiny = Moebench({"run", scenario, "--device", "gpu", "--dtype", "fp8"});
  CHECK(fp8_tiny.status == 1);
  CHECK(fp8_tiny.err == "moebench: error: " + scenario +
                            ": --dtype fp8 with model tiny = hidden_size 64, expert_ffn_size 128: "
                            "FP8 block scales of 128 need both multiples of 128; valid: a scenario "
                            "whose model has both multiples of 128, or --dtype bf16\n");
  CHECK(Moebench({"run", scenario, "--dtype", "fp16"}).status == 2);
  std::filesystem::remove(scenario);
}

TEST_CASE("mpi1: a2a and gemm print nccl-tests' and GFLOP/s tables and bad sizes exit 1 or 2",
          "[mpi1]") {
  const Run a2a = Moebench({"a2a", "-b", "1K", "-e", "4K", "-f", "2", "-n", "2", "-w", "1"});
  REQUIRE(a2a.status == 0);
  CHECK_THAT(a2a.out, Catch::Contains("#       size         count      type   redop    root     "
                                      "time   algbw   busbw  #wrong"));
  CHECK_THAT(a2a.out, Catch::Contains("# Out of bounds values : 0 OK\n# Avg bus bandwidth    : "));
  // 1K, 2K, 4K: three rows, 256 floats for the first; one rank: busbw = algbw x 0 = 0.
  CHECK_THAT(a2a.out, Catch::Contains("        1024           256     float    none      -1"));
  CHECK_THAT(a2a.out, Catch::Contains("        4096          1024     float"));
  // Both halves measured (one buffer for send and receive in the second), each checked: 13
  // nccl-tests columns a row, both #wrong 0.
  CHECK_THAT(a2a.out,
             Catch::Contains("# nccl-tests' layout; in-place: one buffer for send and receive"));
  std::istringstream lines(a2a.out);
  int rows = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    std::vector<std::string> w{std::istream_iterator<std::string>(words), {}};
    REQUIRE(w.size() == 13);
    CHECK(w[8] == "0");
    CHECK(w[12] == "0");
    ++rows;
  }
  CHECK(rows == 3);
  const std::string matrix = TempFile("bad_matrix.txt", "16 -32\n");
  const Run bad = Moebench({"a2a", "--matrix", matrix});
  CHECK(bad.status == 1);
  CHECK(bad.err == "moebench: error: " + matrix +
                       ":1:4: row 0 column 1 = -32: not a byte count; valid: a non-negative "
                       "number\n");
  std::filesystem::remove(matrix);
  CHECK(Moebench({"a2a", "-b", "1X"}).status == 1);
  CHECK(Moebench({"a2a", "--device", "tpu"}).status == 2);
  const Run gemm = Moebench({"gemm", "--tokens-per-expert", "4,8", "--experts", "2", "--hidden",
                             "32", "--ffn", "64", "--iters", "2"});
  REQUIRE(gemm.status == 0);
  CHECK_THAT(gemm.out, Catch::Contains("GFLOP/s"));
  // 6 x 8 x 2 x 32 x 64 = 196608 FLOPs = 0.000 GFLOP in the table's 3 decimals.
  CHECK_THAT(gemm.out, Catch::Contains("              8        2      32     64     0.000"));
  CHECK(Moebench({"gemm", "--hidden", "0"}).status == 1);
  // FP8 GEMMs run on a GPU only, with block scales of 128: checked before any device is asked.
  const Run fp8_cpu = Moebench({"gemm", "--dtype", "fp8"});
  CHECK(fp8_cpu.status == 1);
  CHECK_THAT(fp8_cpu.err, Catch::Contains("--dtype = fp8: FP8 GEMMs run on a GPU; the CPU kernels "
                                          "are fp32; valid: --device gpu, or --dtype bf16"));
  const Run fp8_odd = Moebench({"gemm", "--device", "gpu", "--dtype", "fp8", "--hidden", "100"});
  CHECK(fp8_odd.status == 1);
  CHECK_THAT(fp8_odd.err, Catch::Contains("hidden 100, ffn 1024: block scales of 128 need hidden "
                                          "and ffn multiples of 128"));
  const Run fp8_ten =
      Moebench({"gemm", "--device", "gpu", "--dtype", "fp8", "--tokens-per-expert", "10"});
  CHECK(fp8_ten.status == 1);
  CHECK_THAT(fp8_ten.err, Catch::Contains("10 tokens per expert: FP8 operands need 16-row "
                                          "multiples"));
  CHECK(Moebench({"gemm", "--dtype", "fp16"}).status == 2);
  CHECK(Moebench({"run"}).status == 2);  // the scenario is required
}

}  // namespace moesim::backend

namespace moesim::backend {

TEST_CASE("mpi1: --timeout-s refuses nan, negatives and more than a week", "[mpi1]") {
  const std::string scenario = TempFile("timeout.pbtxt", testing::kOneGpuScenario);
  // nan used to turn the watchdog off silently, -5 too; 1e300 overflowed the milliseconds and
  // aborted a healthy job at once.
  for (const auto& [value, shown] : std::vector<std::pair<std::string, std::string>>{
           {"nan", "nan"}, {"-5", "-5"}, {"1e300", "1e+300"}, {"604801", "604801"}}) {
    INFO(value);
    const Run r = Moebench({"run", scenario, "--iters", "1", "--timeout-s", value});
    CHECK(r.status == 1);
    CHECK(r.err == "moebench: error: --timeout-s = " + shown +
                       ": not a time the watchdog can wait; valid: 0 (never) or seconds up to "
                       "604800 (one week)\n");
  }
  // One week exactly, and 0 (never), are fine.
  CHECK(Moebench({"run", scenario, "--iters", "1", "--timeout-s", "604800"}).status == 0);
  CHECK(Moebench({"run", scenario, "--iters", "1", "--timeout-s", "0"}).status == 0);
  std::filesystem::remove(scenario);
}

TEST_CASE("mpi1: --out checked before the measurement, write errors with errno", "[mpi1]") {
  const std::string scenario = TempFile("out_check.pbtxt", testing::kOneGpuScenario);
  const Run missing = Moebench({"run", scenario, "--iters", "1", "--out", "/no/such/dir/r.pb"});
  CHECK(missing.status == 1);
  CHECK(missing.out.empty());  // no table: nothing was measured
  CHECK(missing.err ==
        "moebench: error: --out = /no/such/dir/r.pb: cannot write in folder /no/such/dir: No such "
        "file or directory\n");
  const Run gemm = Moebench({"gemm", "--tokens-per-expert", "4", "--experts", "2", "--hidden", "32",
                             "--ffn", "64", "--iters", "1", "--out", "/no/such/dir/g.pb"});
  CHECK(gemm.status == 1);
  CHECK(gemm.out.empty());
  // /dev/full: ENOSPC on write, as a full disk; the run used to leave a 0-byte file.
  const Run full = Moebench({"run", scenario, "--iters", "1", "--out", "/dev/full"});
  CHECK(full.status == 1);
  CHECK(full.err ==
        "moebench: error: /dev/full: cannot write the result file: No space left on device\n");
  std::filesystem::remove(scenario);
}

}  // namespace moesim::backend
