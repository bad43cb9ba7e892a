// Pipeline schedules and the overlap arithmetic of a training step: how long m micro-batches
// take through p stages given one micro-batch's forward F, backward B (of which W is the
// weight-gradient half) and a steady-state overlapped pair P, and how much SMs held by
// communication slow the compute it overlaps. Pure functions of durations; sim/step/step.cc
// measures the durations.
//
//   ChunkTimes t{F, B, W, P, Duration()};  // hop: the sends a hop waits on, overlapped
//   PipelineTime x = SchedulePipeline(PipelineSchedule::kDualPipe, /*pp=*/16, /*m=*/120, 1, t);
//   Duration hidden = Overlapped(compute, alltoall, SmShare{20, 132});
//
// The schedules (F, B, W, P of the slowest device; p stages, m micro-batches):
//   1F1B (PipeDream-Flush; Narayanan et al. 2021, arXiv:2104.04473, 2.2.1):
//     bubble = (p - 1)(F + B);  pipeline = bubble + (F + B) + (m - 1) P
//   interleaved 1F1B, V chunks of 1/V of the layers per device (same paper, 2.2.2: the bubble
//   shrinks by V; every chunk sends its activations on, V sends per pass, counted in F and B):
//     bubble = (p - 1)(F + B) / V;  pipeline = bubble + (F + B) + (m - 1) P
//   Where V does not divide the device's L layers (Megatron's pipeline layouts, such as
//   DeepSeek-V3's 61 layers in chunks of 4 and a last of 1, or chunks holding only the embedding
//   or the loss), its chunks are as even as can be and the bubble is priced as if every chunk were
//   the largest, ceil(L / V) layers:
//     bubble = (p - 1)(F + B) ceil(L / V) / L  (= (p - 1)(F + B) / V when V divides L)
//   DualPipe (DeepSeek-V3 report, arXiv:2412.19437, 3.2.1 and Table 2; github.com/deepseek-ai/
//   DualPipe README), p even, m even and >= 2p: device i holds stages i and p - 1 - i, half the
//   micro-batches enter at each end, and a forward chunk of one micro-batch runs with a backward
//   chunk of another, so that each one's all-to-alls hide under the other's compute (P = F&B):
//     bubble = (p/2 - 1)(P + B - 3W)
//     pipeline = bubble + (3p/2 - 1)(F + B) + (m - 3p/2 + 1) P
//   where m - 3p/2 + 1 is how many overlapped pairs rank 0 runs (dualpipe.py, DualPipe.step():
//   2(m/2 - p + 1) in step 4 and p/2 - 1 in step 5), the fewest of any rank, and its other 3p/2 - 1
//   forwards and backwards run alone.
//
// SM sharing: a communication kernel that holds c of a GPU's S SMs while compute runs beside it
// leaves the compute (S - c)/S of its rate. Over an exchange of length A and compute of length C
// (at the full rate), the compute loses A·c/S while the exchange lasts:
//   Overlapped(C, A) = max(A, C + A·c/S)
// (if the compute outlasts the exchange, it runs A at (S - c)/S and the rest at full rate; if not,
// the exchange is the longer). c = 0 gives max(C, A).
//
// What real overlap hides is less than the max() allows. In NVIDIA's controlled A/B of Megatron-
// Core's EP overlap (Megatron-Bridge skills/nemo-mbridge-perf-moe-comm-overlap/SKILL.md, commit
// 415e90afd, "HybridEP production-shape validation": Qwen3-30B-A3B on 16 H100, EP 16, BF16, only
// the overlap changed), an Nsight profile counted 36.55 % of the communication time hidden by
// compute (0.11 % without overlap), for a step 15.1 % shorter. Megatron-MoE-ModelZoo's Qwen3-235B
// A/B (19.7 -> 17.6 s with "1f1b overlap") hides about a third alike. So for Megatron's overlap
//   OverlappedAtMost(C, A, h) = max(Overlapped(C, A), C + A - h A),  h = 0.3655
// (kMegatronEpOverlapHidden: a measured share, not fitted to a row of results/validation); for
// DualPipe h = 1, as DeepSeek-V3's report says it overlaps fully (nothing measured to say less).
//
// Plain functions; safe from any thread. Times are integer picoseconds, divisions rounded up.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "models/memory.h"
#include "models/plan.h"
#include "models/workload.h"
#include "proto/status.h"
#include "proto/units.h"

namespace moesim::sim {

using PipelineSchedule = models::PipelineSchedule;

// "1f1b", "interleaved", "dualpipe".
std::string_view ToString(PipelineSchedule schedule);
// The names above; "" is 1f1b. Anything else is an error at `where` naming `field`.
StatusOr<PipelineSchedule> ParseSchedule(std::string_view text, const Location& where,
                                         std::string_view field);

// One micro-batch through the device the schedule waits on.
struct ChunkTimes {
  Duration forward;   // F
  Duration backward;  // B: gradients of the inputs and of the weights
  Duration weight;    // W: the weight-gradient part of B
  Duration pair;      // P: a steady-state forward and backward (of two micro-batches), overlapped
  // Interleaved with the pipeline sends overlapped (Megatron-Core's overlap_p2p_comm): F, B and
  // P leave the sends out, and each of the fill's and the drain's p - 1 hops waits on a chunk's
  // forward send and its backward send, 2S: the bubble adds (p - 1) x hop, and the steady pair is
  // at least V x hop (the sends run beside it, one port out). 0: the sends are in
  // F and B (1F1B, DualPipe, or overlap_p2p_comm off), as every hop already waits on them.
  Duration hop;
};

struct PipelineTime {
  Duration bubble;    // the schedule's idle time (the formulas above)
  Duration pipeline;  // the whole schedule
  // What the formulas miss where a backward outlasts the steady pair (B > P, all-to-alls
  // overlapped): each stage's backward waits on the next stage's, so the laid-out schedule
  // (LayOutPipeline) runs longer than bubble + pairs. pipeline includes it; 0 when B <= P.
  Duration dependency_wait;
  // The steady pair the schedule ran: ChunkTimes::pair, or where overlapped sends outlast it
  // (interleaved, hop > 0), a device's V x hop of sends a micro-batch.
  Duration pair;
};

// `pp` stages, `microbatches` micro-batches, `virtual_stages` chunks per device (interleaved
// only) of the `stage_layers` layers of the device the schedule waits on (interleaved only; 0:
// chunks of exactly 1/V). Requires what CheckSchedule checks.
PipelineTime SchedulePipeline(PipelineSchedule schedule, uint32_t pp, uint32_t microbatches,
                              uint32_t virtual_stages, const ChunkTimes& t,
                              uint32_t stage_layers = 0);

// The schedule laid out op by op, in 1F1B's shape, every stage at the chunk times of the device
// the schedule waits on (integer units: picoseconds in the step, nanoseconds in the timeline):
// stage s runs min(m, p - s - 1) warm-up forwards, then pairs of a forward and a backward, then
// drains its backwards. A stage starts a forward when the stage before has finished it, a
// backward when the stage after has. The schedule's bubble is its warm-up and drain: the
// warm-up forwards on stages 0..p-2 take fill_forward in all (stage s its share
// fill·(s+1)/(p-1) - fill·s/(p-1)), the drain's backwards fill_backward, so that interleaving's
// bubble / V and DualPipe's bubble take their place. The first `full_pairs` pairs of a stage
// run at F + B, the rest overlapped in P: the backward at min(B, P) and the forward in what is
// left. When B <= P the layout ends exactly at bubble + full_pairs (F + B) + (m - full_pairs) P,
// the formulas above (tests/pipeline_layout_test.cc checks it); when B > P it ends later, as
// every stage waits on the next one's backward. Inference (training false): forwards only, at F.
struct PipelineLayout {
  uint32_t stages = 1, micro_batches = 1;
  bool training = true;
  int64_t forward = 0, backward = 0, pair = 0;
  int64_t fill_forward = 0, fill_backward = 0;
  uint32_t full_pairs = 1;
};
struct PipelineSlot {
  uint32_t stage = 0;
  bool forward = true;
  uint32_t micro_batch = 0;
  bool overlapped = false;  // in a pair that runs in P
  int64_t start = 0, end = 0;
};
// Slots in the order they are placed (stage by stage, as far as each can go, sweeping until all
// are placed).
std::vector<PipelineSlot> LayOutPipeline(const PipelineLayout& layout);
// The layout `schedule` prices: its bubble split between warm-up and drain as F : B, and
// DualPipe's 3p/2 - 1 pairs at F + B. Times in `unit` picoseconds (1: the step; 1000: ns).
PipelineLayout LayoutOf(PipelineSchedule schedule, uint32_t pp, uint32_t microbatches,
                        bool training, int64_t forward, int64_t backward, int64_t pair,
                        int64_t bubble);

// The bubble's formula as the report prints it: "(p - 1)(F + B)".
std::string_view BubbleFormula(PipelineSchedule schedule);
// The same for the device the schedule waits on, with `stage_layers` layers in `virtual_stages`
// chunks: interleaved chunks that V does not divide print their share, "(p - 1)(F + B) x 3/5
// (chunks of up to 3 of 5 layers)".
// With `sends_overlapped` (ChunkTimes::hop) it adds the hops' sends: "... + (p - 1) x 2S".
std::string BubbleFormula(PipelineSchedule schedule, uint32_t virtual_stages, uint32_t stage_layers,
                          bool sends_overlapped = false);

// Whether `schedule` can run `plan` with `microbatches` micro-batches: interleaved needs pp >= 2,
// V >= 2, m a multiple of pp (Megatron-Core's interleaved schedule requires it) and a layer on
// every stage (fewer than V leave chunks empty, as Megatron's layouts may); DualPipe an even pp >=
// 2 and an even m >= 2 pp (dualpipe.py asserts both); either needs training. Errors name
// step.schedule or step.virtual_stages.
Status CheckSchedule(PipelineSchedule schedule, uint32_t virtual_stages, const models::Plan& plan,
                     uint32_t microbatches, bool training);

// SMs communication holds while it overlaps compute, of the GPU's SMs. `comm` 0 or `total` 0: no
// sharing.
struct SmShare {
  uint32_t comm = 0;
  uint32_t total = 0;
};
// Compute `compute` (at the full rate) beside communication `comm` (above).
Duration Overlapped(Duration compute, Duration comm, SmShare sms);
// Overlapped, hiding no more than `hidden` (0 to 1) of `comm` (above).
Duration OverlappedAtMost(Duration compute, Duration comm, SmShare sms, double hidden);
// The share of the all-to-alls' time Megatron-Core's EP overlap hid, measured (above).
inline constexpr double kMegatronEpOverlapHidden = 0.3655;
// The default of Overlap::alltoall_hidden: 1 for DualPipe, kMegatronEpOverlapHidden otherwise.
double DefaultAllToAllHidden(PipelineSchedule schedule);

// SMs an EP all-to-all of `algo` holds by default (models::CommSms): DeepEP's normal kernels
// (per_rank, hierarchical, deepep_normal) Buffer.num_sms = 20 (deep_ep/buffer.py; DeepSeek-V3
// report 3.2.2: "20 SMs are sufficient to fully utilize the bandwidths of IB and NVLink"); NCCL
// (direct) one SM per channel, 16 p2p channels on an 8-GPU H800 node (NCCL_DEBUG=INFO log in
// github.com/NVIDIA/nccl issue #892: "16 coll channels, 0 nvls channels, 16 p2p channels");
// DeepEP's low-latency kernels an SM per ceil(experts / device_sms) experts.
uint32_t DefaultCommSms(models::AllToAllAlgo algo, uint32_t experts, uint32_t device_sms);

}  // namespace moesim::sim
