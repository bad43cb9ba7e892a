#include "backend/moe_layer_rank.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "backend/layer_inputs.h"
#include "backend/router_step.h"

namespace moesim::backend {

MoeLayerRank::MoeLayerRank(const models::Workload& workload, uint32_t layer, uint32_t rank,
                           uint64_t seed, const ExpertWeights& local_experts,
                           const std::vector<float>& router)
    : local_(local_experts),
      router_(router),
      rank_(rank),
      world_(workload.plan.world()),
      hidden_(workload.model.hidden_size()),
      top_k_(workload.model.top_k()),
      experts_(workload.model.num_experts()),
      per_rank_(workload.placement.experts_per_rank()),
      layer_(layer),
      seed_(seed) {
  const models::LayerRouting& routing = workload.routing.at(layer);
  chosen_ = routing.experts.at(rank);
  tokens_ = routing.tokens(rank);
  // Bucket of each slot: where the chosen expert lives (its EP rank inside this rank's EP group)
  // and its index there.
  const std::vector<uint32_t> group = workload.plan.EpGroup(rank);
  bucket_.resize(chosen_.size());
  for (size_t s = 0; s < chosen_.size(); ++s) {
    const uint32_t e = chosen_[s];
    const uint32_t dst = group[workload.placement.EpRankOf(e)];
    bucket_[s] = static_cast<int32_t>(dst * per_rank_ + workload.placement.LocalIndexOf(e));
  }
  recv_counts_.resize(uint64_t{world_} * per_rank_);
  send_units_.resize(world_);
  recv_units_.resize(world_);
  expert_rows_.resize(per_rank_);
}

void MoeLayerRank::Prepare() {
  x_ = TokenBatch(seed_, layer_, rank_, tokens_, hidden_);
  logits_.resize(tokens_ * experts_);
  weights_.resize(chosen_.size());
  y_.resize(tokens_ * hidden_);
  send_.resize(chosen_.size() * hidden_);
}

void MoeLayerRank::Layout() { perm_ = BuildPermutation(bucket_, world_ * per_rank_); }

void MoeLayerRank::Route() {
  RouterLogits(x_.data(), tokens_, hidden_, router_.data(), experts_, logits_.data());
  ChosenExpertWeights(logits_.data(), tokens_, experts_, chosen_, top_k_, weights_.data());
  Layout();
  Permute(x_.data(), hidden_, perm_, top_k_, send_.data());
}

std::vector<uint64_t> MoeLayerRank::SendRows() const {
  std::vector<uint64_t> rows(world_, 0);
  for (uint32_t b = 0; b < perm_.bucket_counts.size(); ++b)
    rows[b / per_rank_] += perm_.bucket_counts[b];
  return rows;
}

void MoeLayerRank::PlanRegroup() {
  recv_offset_.assign(uint64_t{world_} * per_rank_, 0);
  expert_offset_.assign(uint64_t{world_} * per_rank_, 0);
  std::fill(expert_rows_.begin(), expert_rows_.end(), 0);
  for (uint32_t src = 0; src < world_; ++src) {
    for (uint32_t e = 0; e < per_rank_; ++e) expert_rows_[e] += recv_counts_[src * per_rank_ + e];
  }
  // Source-major offsets (as received) and expert-major offsets (as the grouped GEMM reads).
  uint64_t row = 0;
  for (uint64_t b = 0; b < recv_counts_.size(); ++b) {
    recv_offset_[b] = row;
    row += recv_counts_[b];
  }
  uint64_t expert_start = 0;
  for (uint32_t e = 0; e < per_rank_; ++e) {
    uint64_t at = expert_start;
    for (uint32_t src = 0; src < world_; ++src) {
      expert_offset_[src * per_rank_ + e] = at;
      at += recv_counts_[src * per_rank_ + e];
    }
    expert_start = at;
  }
}

Status MoeLayerRank::Dispatch(Communicator& comm) {
  // Notify: every rank learns how many rows each peer sends it, per local expert.
  comm.AllToAll(perm_.bucket_counts, recv_counts_);
  uint64_t received = 0;
  for (uint32_t peer = 0; peer < world_; ++peer) {
    send_units_[peer] = 0;
    recv_units_[peer] = 0;
    for (uint32_t e = 0; e < per_rank_; ++e) {
      send_units_[peer] += perm_.bucket_counts[peer * per_rank_ + e];
      recv_units_[peer] += recv_counts_[peer * per_rank_ + e];
    }
    received += recv_units_[peer];
  }
  recv_.resize(received * hidden_);
  MOESIM_RETURN_IF_ERROR(comm.AllToAllV(send_.data(), send_units_, recv_.data(), recv_units_,
                                        uint64_t{hidden_} * sizeof(float)));
  // Regroup expert-major: block (src, e) moves as a whole.
  PlanRegroup();
  expert_in_.resize(recv_.size());
  const size_t row_bytes = size_t{hidden_} * sizeof(float);
  for (uint64_t b = 0; b < recv_counts_.size(); ++b) {
    if (recv_counts_[b] == 0) continue;
    std::memcpy(expert_in_.data() + expert_offset_[b] * hidden_,
                recv_.data() + recv_offset_[b] * hidden_, recv_counts_[b] * row_bytes);
  }
  return Status::Ok();
}

void MoeLayerRank::Experts() {
  expert_out_.resize(expert_in_.size());
  GroupedSwiGlu(expert_in_.data(), expert_rows_, local_, expert_out_.data());
}

Status MoeLayerRank::Combine(Communicator& comm) {
  // Back to source-major order, the layout the rows arrived in; the all-to-all(v) back is the
  // dispatch's transpose, and rows land where Route's permutation put them.
  back_send_.resize(expert_out_.size());
  const size_t row_bytes = size_t{hidden_} * sizeof(float);
  for (uint64_t b = 0; b < recv_counts_.size(); ++b) {
    if (recv_counts_[b] == 0) continue;
    std::memcpy(back_send_.data() + recv_offset_[b] * hidden_,
                expert_out_.data() + expert_offset_[b] * hidden_, recv_counts_[b] * row_bytes);
  }
  back_recv_.resize(send_.size());
  MOESIM_RETURN_IF_ERROR(comm.AllToAllV(back_send_.data(), recv_units_, back_recv_.data(),
                                        send_units_, uint64_t{hidden_} * sizeof(float)));
  UnpermuteCombine(back_recv_.data(), hidden_, perm_, weights_, top_k_, y_.data());
  return Status::Ok();
}

}  // namespace moesim::backend
