// One rank's share of one MoE layer on the CPU, phase by phase, in DeepEP's protocol:
//
//   Route     router logits and combine weights; layout: each (token, choice) slot gets a bucket
//             (destination rank, local expert there), and the token rows are copied into send
//             order: destination-major, then expert, then slot order (a stable permutation).
//             The bookkeeping of where rows go and come from is backend/kernels/rank_layout.h,
//             shared with the GPU path.
//   Dispatch  notify: an all-to-all of the per-(destination, expert) counts, so every rank knows
//             what it will receive; then the all-to-all(v) of the rows; then the received rows are
//             regrouped expert-major (expert, then source rank) for the grouped GEMM.
//   Experts   each local expert's SwiGLU FFN over its rows (GroupedSwiGlu).
//   Combine   the outputs go back source-major, all-to-all(v) back (the transpose), and each
//             token's rows are summed with its combine weights (UnpermuteCombine): as in DeepEP,
//             combine includes the weighted reduction.
//
// The routing is the scenario's (models::Workload), so the rows a rank sends to each rank are the
// simulator's send matrix row; a token goes once per chosen expert (Megatron-Core's rule, as
// models::ExpandLayer counts). Buffers are allocated once; phases can be repeated (timing).
//
//   MoeLayerRank layer(workload, /*layer=*/0, comm.rank(), seed, local_weights, router);
//   layer.Prepare();   // inputs and buffers (untimed)
//   layer.Route();
//   MOESIM_RETURN_IF_ERROR(layer.Dispatch(comm));
//   layer.Experts();
//   MOESIM_RETURN_IF_ERROR(layer.Combine(comm));
//   layer.output();   // [tokens x hidden]
#pragma once

#include <cstdint>
#include <vector>

#include "backend/comm/communicator.h"
#include "backend/kernels/cpu_kernels.h"
#include "backend/kernels/rank_layout.h"
#include "models/workload.h"

namespace moesim::backend {

// Bucket (destination rank * experts_per_rank + local index there) of every expert, as seen from
// `rank`: the expert's EP rank inside `rank`'s EP group. [num_experts].
std::vector<int32_t> BucketOfExpert(const models::Workload& workload, uint32_t rank);
// Bucket of each of `rank`'s slots in `layer`: the scenario's chosen experts through
// BucketOfExpert. [tokens * top_k].
std::vector<int32_t> SlotBuckets(const models::Workload& workload, uint32_t layer, uint32_t rank);

class MoeLayerRank {
 public:
  // `local_experts` holds this rank's experts (its EP rank's contiguous block); `router` is
  // [hidden x experts]. Both must outlive this object. Cheap: nothing large is allocated yet.
  MoeLayerRank(const models::Workload& workload, uint32_t layer, uint32_t rank, uint64_t seed,
               const ExpertWeights& local_experts, const std::vector<float>& router);

  // Draws the token batch and allocates the buffers; required before Route.
  void Prepare();
  // The layout alone (part of Route): the stable permutation of slots by bucket, whose counts
  // are what this rank sends (SendRows).
  void Layout();
  void Route();
  Status Dispatch(Communicator& comm);
  void Experts();
  Status Combine(Communicator& comm);

  uint32_t rank() const { return rank_; }
  uint32_t hidden() const { return hidden_; }
  uint64_t tokens() const { return tokens_; }
  // After Layout (or Route): rows (token copies) this rank sends to each rank, its send-matrix
  // row.
  std::vector<uint64_t> SendRows() const { return send_.peer_rows; }
  // After Dispatch: rows grouped by local expert, and each local expert's row count.
  const std::vector<float>& expert_input() const { return expert_in_; }
  const std::vector<uint64_t>& expert_rows() const { return recv_.expert_rows; }
  // After Combine: [tokens x hidden], token t = sum over its choices of weight x expert output.
  const std::vector<float>& output() const { return y_; }

 private:
  const ExpertWeights& local_;
  const std::vector<float>& router_;
  uint32_t rank_, world_, hidden_, top_k_, experts_, per_rank_;
  uint32_t layer_;
  uint64_t seed_, tokens_;
  std::vector<uint32_t> chosen_;  // [tokens x top_k] expert ids (the scenario's)
  std::vector<int32_t> bucket_;   // [slots] destination rank x per_rank + local expert
  std::vector<float> x_, logits_, weights_, y_;
  SendLayout send_;
  std::vector<uint64_t> recv_counts_;  // [world x per_rank]: rows from rank i for local expert e
  ReceiveLayout recv_;
  std::vector<RowBlock> blocks_;  // the regroup between source-major and expert-major rows
  std::vector<float> send_rows_, recv_rows_, expert_in_, expert_out_, back_send_, back_recv_;
};

}  // namespace moesim::backend
