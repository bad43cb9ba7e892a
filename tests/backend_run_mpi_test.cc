// moebench's CPU path on 4 MPI ranks (run by ctest as `mpirun -np 4 moebench_mpi_tests [mpi4]`):
// the scenario's layers run for real, every rank checks what it received and what came back, and
// rank 0 compares the measured Result with the simulator's prediction of the same scenario.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "backend/bench/a2a_bench.h"
#include "backend/bench/gemm_bench.h"
#include "backend/comm/mpi_communicator.h"
#include "backend/run/bench_scenario.h"
#include "backend/run/layer_check.h"
#include "backend/run/moe_run.h"
#include "models/alltoallv_matrix.h"
#include "moesim_runner.h"
#include "sim/moe/moe_layer.h"
#include "sim/moe/scenario_loader.h"
#include "test_paths.h"

namespace moesim::backend {
namespace {

double Cell(const pb::SendMatrix& m, int i, int j, bool bytes) {
  return (bytes ? m.bytes(i) : m.tokens(i)).values(j).number_value();
}

// Runs `scenario` on the 4 ranks with --check, then on rank 0 compares with moesim's prediction.
void RunAndCompare(const std::string& scenario, uint64_t expected_rows) {
  MpiCommunicator comm;
  REQUIRE(comm.size() == 4);
  const std::string path = testing::SourcePath(scenario);
  auto s = LoadBenchScenario(path);
  REQUIRE(s.ok());
  RunOptions options;
  options.warmup = 0;
  options.iterations = 2;
  options.check = true;
  auto report = RunMoeLayers(*s, comm, options);
  REQUIRE(report.ok());  // fails on every rank together (a rank's fault stops all)
  if (comm.rank() != 0) return;

  // Dispatch delivered every (token, expert) copy: tokens x top_k over the 4 ranks.
  CHECK(report->check.ran);
  CHECK(report->check.rows_checked == expected_rows);
  CHECK(report->check.max_relative_error <= kRelativeErrorBound);

  const pb::Result& r = report->result;
  CHECK(r.executor() == "measured");
  CHECK(r.device() == "cpu");
  CHECK(r.dtype() == "fp32");
  CHECK(r.gpus() == 4);
  CHECK(r.iterations() == 2);
  REQUIRE(r.phases_size() == 4);
  const char* names[] = {"router", "dispatch", "expert", "combine"};
  int64_t total = 0;
  for (int p = 0; p < 4; ++p) {
    const pb::Phase& phase = r.phases(p);
    CHECK(phase.name() == names[p]);
    CHECK(phase.rank_time_ns_size() == 4);
    // Median of 2 iterations is their mean: between the two, which are min and max.
    CHECK(phase.time_min_ns() <= phase.time_ns());
    CHECK(phase.time_ns() <= phase.time_max_ns());
    CHECK(phase.time_ns() > 0);
    total += phase.time_ns();
  }
  CHECK(r.total_ns() == total);

  // The simulator's prediction of the same file: the same send matrices, token for token.
  auto sim = sim::LoadScenario(path);
  REQUIRE(sim.ok());
  const pb::Result predicted = sim::SimulateMoeLayers(sim->cluster, sim->workload);
  REQUIRE(r.send_matrices_size() == predicted.send_matrices_size());
  const uint32_t hidden = s->workload.model.hidden_size();
  uint64_t off_diagonal = 0;
  for (int m = 0; m < r.send_matrices_size(); ++m) {
    const pb::SendMatrix& got = r.send_matrices(m);
    const pb::SendMatrix& want = predicted.send_matrices(m);
    CHECK(got.phase() == want.phase());
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 4; ++j) {
        CHECK(Cell(got, i, j, false) == Cell(want, i, j, false));
        // moebench moves fp32 rows: hidden x 4 B per token (the prediction counts BF16, 2 B).
        CHECK(Cell(got, i, j, true) == Cell(got, i, j, false) * hidden * 4);
        if (m == 0 && i != j) off_diagonal += static_cast<uint64_t>(Cell(got, i, j, false));
      }
    }
  }
  // Communication bytes: the tokens that left their rank x hidden x 4 B, both ways.
  CHECK(r.phases(1).bytes() == off_diagonal * hidden * 4);
  CHECK(r.phases(3).bytes() == off_diagonal * hidden * 4);
  // Expert FLOPs are the critical rank's: 6 x rows x hidden x ffn (3 GEMMs of 2 n h f).
  const uint32_t critical = r.phases(2).critical_rank();
  uint64_t rows = 0;
  for (uint64_t n : s->workload.layers[0].expert_tokens[critical]) rows += n;
  CHECK(r.phases(2).flops() == 6 * rows * hidden * s->workload.model.expert_ffn_size());
  // Router FLOPs: 2 x tokens x hidden x experts of its critical rank.
  CHECK(r.phases(0).flops() == 2 * s->workload.layers[0].tokens_in[r.phases(0).critical_rank()] *
                                   hidden * s->workload.model.num_experts());
}

}  // namespace

TEST_CASE("mpi4: the seed example runs on 4 ranks as moesim predicts it", "[mpi4]") {
  // 4 ranks x 4 tokens x top-1 = 16 rows; rank 0 sends [1, 2, 0, 1].
  RunAndCompare("scenarios/seed_example.pbtxt", 16);
}

TEST_CASE("mpi4: a Mixtral-8x7B layer at 1/8 width runs on 4 ranks as moesim predicts it",
          "[mpi4]") {
  // 4 ranks x 256 tokens x top-2 = 2048 rows.
  RunAndCompare("scenarios/mixtral_layer_ep4_small.pbtxt", 2048);
}

TEST_CASE("mpi4: all-to-all of 1 MiB per rank arrives intact with nccl-tests' busbw", "[mpi4]") {
  MpiCommunicator comm;
  REQUIRE(comm.size() == 4);
  A2aOptions o;
  o.warmup = 1;
  o.iterations = 3;
  auto row = MeasureAllToAll(comm, 1 << 20, o);
  REQUIRE(row.ok());
  if (comm.rank() != 0) return;
  CHECK(row->wrong == 0);
  // 1 MiB per rank: 65536 floats to each of 4 ranks; busbw = algbw x (4 - 1) / 4.
  CHECK(row->row.size_bytes() == 1 << 20);
  CHECK(row->row.count() == 1 << 18);
  CHECK(row->row.busbw_gbps() == Approx(row->row.algbw_gbps() * 0.75));
  CHECK(row->row.algbw_gbps() == Approx((1 << 20) / (row->row.time_us() * 1e-6) / 1e9));
  // The in-place half (MPI_IN_PLACE): measured, intact, with the same bus factor.
  REQUIRE(row->in_place_wrong.has_value());
  CHECK(*row->in_place_wrong == 0);
  REQUIRE(row->row.has_in_place_time_us());
  CHECK(row->row.in_place_time_us() > 0);
  CHECK(row->row.in_place_busbw_gbps() == Approx(row->row.in_place_algbw_gbps() * 0.75));
}

TEST_CASE("mpi4: the all-to-all(v) of the matrix moesim exports arrives intact", "[mpi4]") {
  MpiCommunicator comm;
  REQUIRE(comm.size() == 4);
  const std::string path =
      (std::filesystem::temp_directory_path() / "moebench_mpi_seed_a2av.txt").string();
  int status = 0;
  if (comm.rank() == 0) {
    status = testing::Moesim({"simulate", testing::SourcePath("scenarios/seed_example.pbtxt"),
                              "--export-alltoallv", path})
                 .status;
  }
  comm.Barrier();
  auto matrix = models::ReadAlltoallvMatrix(path, 4);
  REQUIRE(matrix.ok());
  A2aOptions o;
  o.warmup = 1;
  o.iterations = 2;
  auto row = MeasureAllToAllV(comm, *matrix, o);
  REQUIRE(row.ok());
  if (comm.rank() != 0) return;
  CHECK(status == 0);
  CHECK(row->wrong == 0);
  // Seed dispatch x 8192 B: rank 1 receives column [2, 1, 1, 2] x 8192 = 49152 B, the most any
  // rank sends (4 x 8192 = 32768) or receives: nccl-tests' size for a matrix.
  CHECK(row->row.size_bytes() == 49152);
  std::filesystem::remove(path);
}

TEST_CASE("mpi4: grouped GEMMs on every rank report the slowest rank's time and 6 T E h f FLOPs",
          "[mpi4]") {
  MpiCommunicator comm;
  pb::GemmShape shape;
  shape.set_tokens_per_expert(8);
  shape.set_experts(2);
  shape.set_hidden(32);
  shape.set_ffn(64);
  GemmOptions o;
  o.warmup = 1;
  o.iterations = 3;
  auto r = MeasureCpuGemms(comm, {shape}, o);
  REQUIRE(r.ok());
  if (comm.rank() != 0) return;
  REQUIRE(r->phases_size() == 1);
  const pb::Phase& p = r->phases(0);
  CHECK(p.name() == "gemm");
  CHECK(p.flops() == 6ull * 8 * 2 * 32 * 64);  // 196608
  CHECK(p.gemm_shape().ffn() == 64);
  CHECK(p.rank_time_ns_size() == static_cast<int>(comm.size()));
  CHECK(p.time_ns() >= p.time_min_ns());
}

}  // namespace moesim::backend
