// The measured Result of `moebench run`, assembled the same way for the CPU path (moe_run.h) and
// the GPU path (gpu_run.h): each rank brings its own phase times and send-matrix rows; rank 0
// gets, per (layer, phase), the slowest rank's time in each iteration (the phase's time then, as
// the simulator's Phase.time_ns), its median with p10/p90/min/max, each rank's own median, the
// FLOPs and bytes of the compute phases and the bytes that crossed in the exchanges.
//
//   RankTimes mine(layers, iterations, world);
//   mine.at(l, kDispatch, i) = ns;  mine.send_rows[l * world + j] = rows to rank j;
//   GatherResult(s, comm, o, mine, {"gpu", "bf16", pb::BF16, 2}, report.result);  // collective
#pragma once

#include <cstdint>
#include <vector>

#include "backend/comm/communicator.h"
#include "backend/run/bench_scenario.h"
#include "backend/run/moe_run.h"
#include "proto/result.pb.h"

namespace moesim::backend {

// The phases of one MoE layer, in the order they run and are reported.
enum Phase : uint32_t { kRouter = 0, kDispatch = 1, kExpert = 2, kCombine = 3 };
inline constexpr uint32_t kPhaseCount = 4;
inline constexpr const char* kPhaseNames[kPhaseCount] = {"router", "dispatch", "expert", "combine"};

struct RankTimes {
  RankTimes(uint32_t layers, uint32_t iterations, uint32_t world)
      : layers(layers),
        iterations(iterations),
        ns(uint64_t{layers} * kPhaseCount * iterations),
        send_rows(uint64_t{layers} * world) {}
  int64_t& at(uint32_t layer, uint32_t phase, uint32_t iteration) {
    return ns[(uint64_t{layer} * kPhaseCount + phase) * iterations + iteration];
  }
  uint32_t layers, iterations;
  std::vector<int64_t> ns;         // [(layer * kPhaseCount + phase) * iterations + iteration]
  std::vector<int64_t> send_rows;  // [layer * world + destination]: this rank's send-matrix rows
};

// What the run moved and computed in: device ("cpu", "gpu"), dtype as the Result names it, and
// as the cost model counts it.
struct MeasuredAs {
  const char* device;
  const char* dtype_name;
  pb::DType dtype;
  uint64_t element_bytes;  // of an activation element as moved: 4 (fp32), 2 (bf16)
};

// Collective (Gather and ReduceMax on every rank); fills `result` on rank 0 only.
void GatherResult(const BenchScenario& s, Communicator& comm, const RunOptions& o,
                  const RankTimes& mine, const MeasuredAs& as, pb::Result& result);

}  // namespace moesim::backend
