#include "backend/run/moe_run.h"

#include <climits>
#include <memory>
#include <vector>

#include "backend/bench/time_stats.h"
#include "backend/run/host_memory.h"
#include "backend/run/layer_check.h"
#include "backend/run/layer_inputs.h"
#include "backend/run/moe_layer_rank.h"
#include "backend/run/run_result.h"

namespace moesim::backend {
namespace {

// Limits of the representation, the same on every rank (so all fail together, before talking).
Status CheckLimits(const BenchScenario& s) {
  const models::Workload& w = s.workload;
  if (w.model.hidden_size() < kStampElements) {
    return InputError(s.file.Locate("model_spec.hidden_size"), "hidden_size",
                      std::to_string(w.model.hidden_size()), "too small for moebench's token stamp",
                      ">= 2");
  }
  for (const models::LayerWork& layer : w.layers) {
    for (uint32_t r = 0; r < w.plan.world(); ++r) {
      // The stamp holds the token index exactly in fp32; MPI counts rows in int.
      if (layer.tokens_in[r] >= (uint64_t{1} << 24)) {
        return InputError(s.file.Locate("workload.tokens_per_gpu"),
                          "tokens on rank " + std::to_string(r), std::to_string(layer.tokens_in[r]),
                          "too many for moebench's fp32 token stamp", "< 16777216");
      }
      uint64_t sent = 0, received = 0;
      for (uint32_t j = 0; j < w.plan.world(); ++j) {
        sent += layer.dispatch_tokens.at(r, j);
        received += layer.dispatch_tokens.at(j, r);
      }
      if (sent > INT_MAX || received > INT_MAX) {
        return InputError(s.file.Locate("workload"), "rows through rank " + std::to_string(r),
                          std::to_string(std::max(sent, received)), "beyond MPI's int counts",
                          "<= " + std::to_string(INT_MAX));
      }
    }
  }
  return Status::Ok();
}

void Progress(const RunOptions& o, const std::string& step) {
  if (o.progress) o.progress(step);
}

// The untimed verification pass over every layer.
StatusOr<CheckReport> CheckPass(const BenchScenario& s, Communicator& comm,
                                std::vector<MoeLayerRank>& layers, const RunOptions& o,
                                const std::vector<float>& router) {
  const models::Workload& w = s.workload;
  int64_t rows = 0;
  double worst = 0;
  for (uint32_t l = 0; l < layers.size(); ++l) {
    MoeLayerRank& layer = layers[l];
    Progress(o, "layer " + std::to_string(l) + " check");
    layer.Route();
    MOESIM_RETURN_IF_ERROR(layer.Dispatch(comm));
    Status dispatched = Status::Ok();
    auto checked = CheckDispatched(layer, w, l, o.seed);
    if (checked.ok()) {
      rows += static_cast<int64_t>(*checked);
    } else {
      dispatched = checked.error();
    }
    MOESIM_RETURN_IF_ERROR(AgreeAcrossRanks(comm, dispatched));
    layer.Experts();
    MOESIM_RETURN_IF_ERROR(layer.Combine(comm));
    const std::vector<float> ref = ReferenceOutput(w, l, comm.rank(), o.seed, router);
    auto error = CheckCombined(layer.output(), ref, layer.hidden(), comm.rank(), l);
    MOESIM_RETURN_IF_ERROR(
        AgreeAcrossRanks(comm, error.ok() ? Status::Ok() : Status(error.error())));
    worst = std::max(worst, *error);
  }
  CheckReport report{true, true, 0, 0, kRelativeErrorBound};
  std::vector<int64_t> all_rows(comm.rank() == 0 ? comm.size() : 0);
  comm.Gather(std::span<const int64_t>(&rows, 1), all_rows);
  for (int64_t r : all_rows) report.rows_checked += static_cast<uint64_t>(r);
  std::vector<double> max_error(1);
  comm.ReduceMax(std::span<const double>(&worst, 1), max_error);
  report.max_relative_error = max_error[0];
  return report;
}

}  // namespace

Status AgreeAcrossRanks(Communicator& comm, const Status& mine) {
  if (!comm.AnyRank(!mine.ok())) return Status::Ok();
  if (!mine.ok()) {
    return Error("rank " + std::to_string(comm.rank()) + ": " + mine.error().message());
  }
  return Error(std::string(kStoppedByPeer));
}

StatusOr<RunReport> RunMoeLayers(const BenchScenario& s, Communicator& comm, const RunOptions& o) {
  const models::Workload& w = s.workload;
  if (comm.size() != s.ranks) {
    return Error("moebench: the run has " + std::to_string(comm.size()) +
                 " ranks, the scenario needs " + std::to_string(s.ranks));
  }
  MOESIM_RETURN_IF_ERROR(CheckLimits(s));
  const uint32_t rank = comm.rank(), world = comm.size();
  const uint32_t hidden = w.model.hidden_size(), ffn = w.model.expert_ffn_size();
  const uint32_t per_rank = w.placement.experts_per_rank();
  MOESIM_RETURN_IF_ERROR(
      AgreeAcrossRanks(comm, CheckHostMemory(EstimateRunMemory(w, rank, o.check),
                                             comm.ranks_on_node(), AvailableHostBytes())));

  Progress(o, "set-up (weights and inputs)");
  const ExpertWeights local =
      MakeExpertWeights(o.seed, w.plan.EpRank(rank) * per_rank, per_rank, hidden, ffn);
  const std::vector<float> router = RouterMatrix(o.seed, hidden, w.model.num_experts());
  std::vector<MoeLayerRank> layers;
  for (uint32_t l = 0; l < w.layers.size(); ++l) {
    layers.emplace_back(w, l, rank, o.seed, local, router);
    layers.back().Prepare();
  }

  RunReport report;
  if (o.check) {
    MOESIM_ASSIGN_OR_RETURN(report.check, CheckPass(s, comm, layers, o, router));
  }

  RankTimes times(static_cast<uint32_t>(layers.size()), o.iterations, world);
  for (uint32_t it = 0; it < o.warmup + o.iterations; ++it) {
    const bool timed = it >= o.warmup;
    for (uint32_t l = 0; l < layers.size(); ++l) {
      MoeLayerRank& layer = layers[l];
      for (uint32_t p = 0; p < kPhaseCount; ++p) {
        Progress(o, "layer " + std::to_string(l) + " " + kPhaseNames[p] + ", iteration " +
                        std::to_string(it) + (timed ? "" : " (warm-up)"));
        comm.Barrier();
        const int64_t start = NowNs();
        if (p == 0) layer.Route();
        if (p == 1) MOESIM_RETURN_IF_ERROR(layer.Dispatch(comm));
        if (p == 2) layer.Experts();
        if (p == 3) MOESIM_RETURN_IF_ERROR(layer.Combine(comm));
        const int64_t elapsed = NowNs() - start;
        if (timed) times.at(l, p, it - o.warmup) = elapsed;
      }
    }
    if (o.iteration_done) o.iteration_done(it + 1, o.warmup + o.iterations);
  }
  for (uint32_t l = 0; l < layers.size(); ++l) {
    const std::vector<uint64_t> rows = layers[l].SendRows();
    for (uint32_t j = 0; j < world; ++j) {
      times.send_rows[uint64_t{l} * world + j] = static_cast<int64_t>(rows[j]);
    }
  }
  Progress(o, "gathering the measurements");
  GatherResult(s, comm, o, times, MeasuredAs{"cpu", "fp32", pb::FP32, sizeof(float)},
               report.result);
  Progress(o, "done");
  return report;
}

}  // namespace moesim::backend
