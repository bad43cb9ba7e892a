// The ops of one layer for one micro-batch on one rank, forward (sim/step/step.h explains the
// model). Internal to the step simulator; split out so that step.cc only composes.
#pragma once

#include <string>
#include <vector>

#include "models/dispatch.h"
#include "models/plan.h"
#include "sim/compute/compute_model.h"
#include "sim/network/network_model.h"
#include "sim/step/step.h"
#include "topology/cluster.h"

namespace moesim::sim {

// Costs shared by every layer of a micro-batch, computed once: the collectives on the plan's
// groups of rank 0 and the EP all-to-alls of `layer_work`.
class LayerCoster {
 public:
  // Every collective and all-to-all is asked of `net` (which holds the cluster).
  LayerCoster(const NetworkModel& net, const pb::ModelSpec& model, const models::Plan& plan,
              const models::LayerWork& layer_work, const StepConfig& config);

  // Forward ops of model layer `layer` (dense or MoE by the model's interleaving).
  std::vector<StepOp> Forward(uint32_t layer) const;
  // The backward of those ops: reversed, compute doubled, the same communication.
  static std::vector<StepOp> Backward(const std::vector<StepOp>& forward);
  // Embedding lookup (first stage) and LM head with the loss (last stage), forward.
  std::vector<StepOp> Embedding() const;
  std::vector<StepOp> LmHead() const;
  // Sending one micro-batch's activations to the next stage.
  Duration PipelineSend() const { return p2p_; }
  // Where the EP all-to-alls' times come from: "network model", or the profile's entry
  // ("profile NAME: nvlink dispatch/combine"), or why the profile could not time them.
  const std::string& AllToAllSource() const { return alltoall_source_; }

 private:
  // The EP all-to-alls on `profile`'s per-rank model, where it has an entry for the group's link
  // class; else they stay on the network model, and alltoall_source_ says why.
  void ProfileAllToAlls(const pb::HardwareProfile& profile);
  // The EP all-to-alls as DeepEP runs them, where the EP group allows (sim/network/group_comm.h).
  // `combine_bytes` is in dispatch's orientation (rows = the senders of dispatch).
  void HierarchicalAllToAlls(const models::TrafficMatrix& dispatch_bytes,
                             const models::TrafficMatrix& combine_bytes);
  // DeepEP's low-latency kernels over the EP group (sim/network/alltoall_low_latency.h).
  void LowLatencyAllToAlls();
  StepOp Compute(const char* name, uint32_t layer, uint64_t flops, uint64_t bytes) const;
  StepOp Comm(const char* name, uint32_t layer, Duration time, bool alltoall = false) const;
  void TensorParallel(std::vector<StepOp>& ops, uint32_t layer, const char* block,
                      bool before) const;

  const NetworkModel& net_;
  const topology::Cluster& cluster_;
  const pb::ModelSpec& model_;
  const models::Plan& plan_;
  const models::LayerWork& work_;
  StepConfig config_;
  uint64_t tokens_ = 0;      // tokens of this rank's sequence chunk (micro-batch / cp)
  uint64_t moe_tokens_ = 0;  // tokens this rank routes (tokens_ / tp)
  uint64_t context_ = 0;     // tokens each query attends to
  uint32_t elem_ = 2;        // bytes per element
  // Bytes of one token in dispatch and in combine (config.dispatch_dtype, combine_dtype).
  uint64_t dispatch_token_bytes_ = 0, combine_token_bytes_ = 0;
  ComputeRates rates_;
  Duration tp_gather_, tp_scatter_, cp_kv_, dispatch_, combine_, p2p_;
  Duration etp_gather_, etp_scatter_;  // expert tensor parallelism (etp > 1)
  std::string alltoall_source_ = "network model";
};

}  // namespace moesim::sim
