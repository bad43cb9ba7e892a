#include "backend/run/moe_layer_rank.h"

#include <algorithm>
#include <cstring>

#include "backend/run/layer_inputs.h"
#include "backend/run/router_step.h"

namespace moesim::backend {

std::vector<int32_t> BucketOfExpert(const models::Workload& workload, uint32_t rank) {
  // Where each expert lives: its EP rank inside this rank's EP group, and its index there.
  const std::vector<uint32_t> group = workload.plan.EpGroup(rank);
  const uint32_t per_rank = workload.placement.experts_per_rank();
  std::vector<int32_t> bucket(workload.model.num_experts());
  for (uint32_t e = 0; e < bucket.size(); ++e) {
    const uint32_t dst = group[workload.placement.EpRankOf(e)];
    bucket[e] = static_cast<int32_t>(dst * per_rank + workload.placement.LocalIndexOf(e));
  }
  return bucket;
}

std::vector<int32_t> SlotBuckets(const models::Workload& workload, uint32_t layer, uint32_t rank) {
  const std::vector<int32_t> of_expert = BucketOfExpert(workload, rank);
  const std::vector<uint32_t>& chosen = workload.routing.at(layer).experts.at(rank);
  std::vector<int32_t> bucket(chosen.size());
  for (size_t s = 0; s < chosen.size(); ++s) bucket[s] = of_expert.at(chosen[s]);
  return bucket;
}

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
  bucket_ = SlotBuckets(workload, layer, rank);
  recv_counts_.resize(uint64_t{world_} * per_rank_);
}

void MoeLayerRank::Prepare() {
  x_ = TokenBatch(seed_, layer_, rank_, tokens_, hidden_);
  logits_.resize(tokens_ * experts_);
  weights_.resize(chosen_.size());
  y_.resize(tokens_ * hidden_);
  send_rows_.resize(chosen_.size() * hidden_);
}

void MoeLayerRank::Layout() { send_ = BuildSendLayout(bucket_, world_, per_rank_); }

void MoeLayerRank::Route() {
  RouterLogits(x_.data(), tokens_, hidden_, router_.data(), experts_, logits_.data());
  ChosenExpertWeights(logits_.data(), tokens_, experts_, chosen_, top_k_, weights_.data());
  Layout();
  Permute(x_.data(), hidden_, send_.permutation, top_k_, send_rows_.data());
}

Status MoeLayerRank::Dispatch(Communicator& comm) {
  // Notify: every rank learns how many rows each peer sends it, per local expert.
  comm.AllToAll(send_.permutation.bucket_counts, recv_counts_);
  recv_ = BuildReceiveLayout(recv_counts_, world_, per_rank_);
  recv_rows_.resize(recv_.rows * hidden_);
  MOESIM_RETURN_IF_ERROR(comm.AllToAllV(send_rows_.data(), send_.peer_rows, recv_rows_.data(),
                                        recv_.peer_rows, uint64_t{hidden_} * sizeof(float)));
  // Regroup expert-major: block (src, e) moves as a whole.
  blocks_ = RegroupBlocks(recv_);
  expert_in_.resize(recv_rows_.size());
  const size_t row_bytes = size_t{hidden_} * sizeof(float);
  for (const RowBlock& b : blocks_) {
    std::memcpy(expert_in_.data() + b.expert_major * hidden_,
                recv_rows_.data() + b.source_major * hidden_, b.rows * row_bytes);
  }
  return Status::Ok();
}

void MoeLayerRank::Experts() {
  expert_out_.resize(expert_in_.size());
  GroupedSwiGlu(expert_in_.data(), recv_.expert_rows, local_, expert_out_.data());
}

Status MoeLayerRank::Combine(Communicator& comm) {
  // Back to source-major order, the layout the rows arrived in; the all-to-all(v) back is the
  // dispatch's transpose, and rows land where Route's permutation put them.
  back_send_.resize(expert_out_.size());
  const size_t row_bytes = size_t{hidden_} * sizeof(float);
  for (const RowBlock& b : blocks_) {
    std::memcpy(back_send_.data() + b.source_major * hidden_,
                expert_out_.data() + b.expert_major * hidden_, b.rows * row_bytes);
  }
  back_recv_.resize(send_rows_.size());
  MOESIM_RETURN_IF_ERROR(comm.AllToAllV(back_send_.data(), recv_.peer_rows, back_recv_.data(),
                                        send_.peer_rows, uint64_t{hidden_} * sizeof(float)));
  UnpermuteCombine(back_recv_.data(), hidden_, send_.permutation, weights_, top_k_, y_.data());
  return Status::Ok();
}

}  // namespace moesim::backend
