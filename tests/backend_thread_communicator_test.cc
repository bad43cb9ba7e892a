// backend/comm/thread_communicator.h: the Communicator between threads (`moebench run --device gpu
// --gpus N` in one process). Its collectives against hand-computed answers, then the whole CPU
// path (RunMoeLayers, as over MPI) on 4 threads with --check, which verifies every received row
// and every output against the single-process reference.
#include <catch2/catch.hpp>
#include <functional>
#include <thread>
#include <vector>

#include "backend/comm/thread_communicator.h"
#include "backend/run/bench_scenario.h"
#include "backend/run/layer_check.h"
#include "backend/run/moe_run.h"

namespace moesim::backend {
namespace {

// Runs body(comm) on `n` threads, one rank each.
void OnThreads(uint32_t n, const std::function<void(ThreadCommunicator&)>& body) {
  ThreadGroup group(n);
  std::vector<std::thread> threads;
  for (uint32_t r = 0; r < n; ++r) {
    threads.emplace_back([&group, &body, r] {
      ThreadCommunicator comm(group, r);
      body(comm);
    });
  }
  for (std::thread& t : threads) t.join();
}

TEST_CASE("thread communicator: collectives between 4 threads") {
  constexpr uint32_t n = 4;
  // Per rank: what it received, checked after the threads end (Catch2's macros are not
  // thread-safe).
  std::vector<std::vector<uint64_t>> counts(n), rows(n), gathered(n);
  std::vector<std::vector<int64_t>> maxima(n);
  std::vector<uint64_t> broadcast(n);
  std::vector<int> any(n), none(n), v_ok(n), local(n);
  OnThreads(n, [&](ThreadCommunicator& comm) {
    const uint32_t r = comm.rank();
    local[r] = comm.local_rank() == r && comm.ranks_on_node() == n;
    // AllToAll: block j of rank r holds 10 * r + j; rank d receives 10 * i + d from each i.
    std::vector<uint64_t> send(n), recv(n);
    for (uint32_t j = 0; j < n; ++j) send[j] = 10 * r + j;
    comm.AllToAll(send, recv);
    counts[r] = recv;
    // AllToAllV: rank r sends j + 1 rows to rank j, each the value 100 * r + j; rank d then
    // receives d + 1 rows from every rank i, valued 100 * i + d.
    std::vector<uint64_t> units(n), in_units(n, r + 1), payload;
    for (uint32_t j = 0; j < n; ++j) {
      units[j] = j + 1;
      for (uint32_t k = 0; k <= j; ++k) payload.push_back(100 * r + j);
    }
    std::vector<uint64_t> got(n * (r + 1));
    v_ok[r] = comm.AllToAllV(payload.data(), units, got.data(), in_units, sizeof(uint64_t)).ok();
    rows[r] = got;
    uint64_t value = r == 0 ? 42 : 0;
    comm.Broadcast(&value, sizeof value);
    broadcast[r] = value;
    const std::vector<int64_t> mine = {static_cast<int64_t>(r), -static_cast<int64_t>(r)};
    std::vector<int64_t> max(r == 0 ? 2 : 0), all(r == 0 ? 2 * n : 0);
    comm.ReduceMax(mine, max);
    comm.Gather(mine, all);
    maxima[r] = max;
    for (int64_t a : all) gathered[r].push_back(static_cast<uint64_t>(a + 10));
    any[r] = comm.AnyRank(r == 2);
    none[r] = comm.AnyRank(false);
    comm.Barrier();
  });
  for (uint32_t d = 0; d < n; ++d) {
    INFO("rank " << d);
    for (uint32_t i = 0; i < n; ++i) CHECK(counts[d][i] == 10 * i + d);
    CHECK(v_ok[d]);
    for (uint32_t i = 0; i < n; ++i) {
      for (uint32_t k = 0; k <= d; ++k) CHECK(rows[d][i * (d + 1) + k] == 100 * i + d);
    }
    CHECK(local[d]);
    CHECK(broadcast[d] == 42);
    CHECK(any[d]);
    CHECK_FALSE(none[d]);
  }
  CHECK(maxima[0] == std::vector<int64_t>{3, 0});
  // Gather: rank r's {r, -r} at 2r, +10 each.
  CHECK(gathered[0] == std::vector<uint64_t>{10, 10, 11, 9, 12, 8, 13, 7});
}

TEST_CASE("thread communicator: all-to-all(v) with counts that do not match is an error") {
  std::vector<int> ok(2);
  OnThreads(2, [&](ThreadCommunicator& comm) {
    const std::vector<uint64_t> send_units = {1, 1};
    const std::vector<uint64_t> recv_units = {1, comm.rank() == 0 ? 2u : 1u};  // rank 0 is wrong
    std::vector<float> send(2, 1.0f), recv(3);
    ok[comm.rank()] =
        comm.AllToAllV(send.data(), send_units, recv.data(), recv_units, sizeof(float)).ok();
  });
  CHECK_FALSE(ok[0]);
  CHECK(ok[1]);
}

// 4 GPUs, EP 4, 8 experts top-2, small widths, 2 layers: milliseconds per layer on the CPU.
const char* kFourRanks = R"(
name: "four ranks"
cluster { node_preset: "dgx-h100" gpus: 4 }
model_spec { name: "tiny" hidden_size: 64 expert_ffn_size: 128 num_experts: 8 top_k: 2
             num_layers: 2 dtype: BF16 }
plan { ep: 4 }
workload { tokens_per_gpu: 32 moe_layers: 2 }
routing { synthetic { distribution: ZIPF zipf_alpha: 1.2 seed: 5 } }
)";

TEST_CASE("thread communicator: the CPU path on 4 threads checks and measures every layer") {
  auto s = LoadBenchScenarioFromString(kFourRanks, "four_ranks.pbtxt");
  REQUIRE(s.ok());
  RunOptions options;
  options.warmup = 1;
  options.iterations = 2;
  options.check = true;
  // moebench run's progress: each rank reports every whole iteration, 1 warm-up + 2 timed, as
  // (1, 3), (2, 3), (3, 3).
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> done(4);
  std::vector<std::optional<StatusOr<RunReport>>> reports(4);
  OnThreads(4, [&](ThreadCommunicator& comm) {
    RunOptions mine = options;
    mine.iteration_done = [&done, r = comm.rank()](uint32_t k, uint32_t total) {
      done[r].emplace_back(k, total);
    };
    reports[comm.rank()] = RunMoeLayers(*s, comm, mine);
  });
  for (auto& r : reports) REQUIRE(r->ok());
  for (const auto& d : done) {
    CHECK(d == std::vector<std::pair<uint32_t, uint32_t>>{{1, 3}, {2, 3}, {3, 3}});
  }
  const RunReport& report = **reports[0];
  // 4 ranks x 32 tokens x top-2 x 2 layers = 512 rows, each verified after dispatch.
  CHECK(report.check.dispatch_checked);
  CHECK(report.check.rows_checked == 512);
  CHECK(report.check.max_relative_error <= kRelativeErrorBound);
  CHECK(report.result.gpus() == 4);
  CHECK(report.result.phases_size() == 8);  // 2 layers x router, dispatch, expert, combine
  // The measured send matrices are the scenario's.
  REQUIRE(report.result.send_matrices_size() >= 2);
  const models::TrafficMatrix& want = s->workload.layers[0].dispatch_tokens;
  const pb::SendMatrix& m = report.result.send_matrices(0);
  for (uint32_t i = 0; i < 4; ++i) {
    for (uint32_t j = 0; j < 4; ++j) {
      CHECK(m.tokens(static_cast<int>(i)).values(static_cast<int>(j)).number_value() ==
            static_cast<double>(want.at(i, j)));
    }
  }
}

}  // namespace
}  // namespace moesim::backend
