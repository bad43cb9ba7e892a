#include "backend/moe_run.h"

#include <climits>
#include <memory>
#include <vector>

#include "backend/host_memory.h"
#include "backend/layer_check.h"
#include "backend/layer_inputs.h"
#include "backend/measured_result.h"
#include "backend/moe_layer_rank.h"
#include "backend/time_stats.h"
#include "models/model_spec.h"
#include "models/send_matrices.h"

namespace moesim::backend {
namespace {

constexpr const char* kPhases[] = {"router", "dispatch", "expert", "combine"};
constexpr uint32_t kPhaseCount = 4;

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

// Every rank learns whether any failed; a failing rank keeps its own message.
Status Agree(Communicator& comm, const Status& mine) {
  if (!comm.AnyRank(!mine.ok())) return Status::Ok();
  if (!mine.ok()) {
    return Error("rank " + std::to_string(comm.rank()) + ": " + mine.error().message());
  }
  return Error(std::string(kStoppedByPeer));
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
    MOESIM_RETURN_IF_ERROR(Agree(comm, dispatched));
    layer.Experts();
    MOESIM_RETURN_IF_ERROR(layer.Combine(comm));
    const std::vector<float> ref = ReferenceOutput(w, l, comm.rank(), o.seed, router);
    auto error = CheckCombined(layer.output(), ref, layer.hidden(), comm.rank(), l);
    MOESIM_RETURN_IF_ERROR(Agree(comm, error.ok() ? Status::Ok() : Status(error.error())));
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
  MOESIM_RETURN_IF_ERROR(Agree(comm, CheckHostMemory(EstimateRunMemory(w, rank, o.check),
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

  // times[(l * kPhaseCount + p) * iterations + i], this rank's.
  const uint32_t phases = static_cast<uint32_t>(layers.size()) * kPhaseCount;
  std::vector<int64_t> times(uint64_t{phases} * o.iterations);
  for (uint32_t it = 0; it < o.warmup + o.iterations; ++it) {
    const bool timed = it >= o.warmup;
    for (uint32_t l = 0; l < layers.size(); ++l) {
      MoeLayerRank& layer = layers[l];
      for (uint32_t p = 0; p < kPhaseCount; ++p) {
        Progress(o, "layer " + std::to_string(l) + " " + kPhases[p] + ", iteration " +
                        std::to_string(it) + (timed ? "" : " (warm-up)"));
        comm.Barrier();
        const int64_t start = NowNs();
        if (p == 0) layer.Route();
        if (p == 1) MOESIM_RETURN_IF_ERROR(layer.Dispatch(comm));
        if (p == 2) layer.Experts();
        if (p == 3) MOESIM_RETURN_IF_ERROR(layer.Combine(comm));
        const int64_t elapsed = NowNs() - start;
        if (timed) times[(uint64_t{l} * kPhaseCount + p) * o.iterations + it - o.warmup] = elapsed;
      }
    }
  }
  Progress(o, "gathering the measurements");

  // Slowest rank per (layer, phase, iteration); each rank's median per (layer, phase); each rank's
  // send-matrix row per layer.
  std::vector<int64_t> slowest(rank == 0 ? times.size() : 0);
  comm.ReduceMax(times, slowest);
  std::vector<int64_t> medians(phases);
  for (uint32_t q = 0; q < phases; ++q) {
    medians[q] = Summarize(std::vector<int64_t>(times.begin() + uint64_t{q} * o.iterations,
                                                times.begin() + uint64_t{q + 1} * o.iterations))
                     .median;
  }
  std::vector<int64_t> all_medians(rank == 0 ? uint64_t{phases} * world : 0);
  comm.Gather(medians, all_medians);
  std::vector<int64_t> rows;
  for (const MoeLayerRank& layer : layers) {
    for (uint64_t n : layer.SendRows()) rows.push_back(static_cast<int64_t>(n));
  }
  std::vector<int64_t> all_rows(rank == 0 ? rows.size() * world : 0);
  comm.Gather(rows, all_rows);
  Progress(o, "done");
  if (rank != 0) return report;

  pb::Result& result = report.result;
  result.set_scenario(w.name);
  result.set_executor("measured");
  result.set_gpus(world);
  result.set_model(w.model.name());
  result.set_device("cpu");
  result.set_dtype("fp32");
  result.set_iterations(o.iterations);
  result.set_warmup_iterations(o.warmup);
  pb::ModelSpec fp32 = w.model;  // what the CPU path moves and computes
  fp32.set_dtype(pb::FP32);
  const uint64_t row_bytes = uint64_t{hidden} * sizeof(float);
  int64_t total = 0;
  for (uint32_t l = 0; l < layers.size(); ++l) {
    models::TrafficMatrix dispatch(world);
    for (uint32_t r = 0; r < world; ++r) {
      for (uint32_t d = 0; d < world; ++d) {
        dispatch.at(r, d) =
            static_cast<uint64_t>(all_rows[(uint64_t{r} * layers.size() + l) * world + d]);
      }
    }
    for (uint32_t p = 0; p < kPhaseCount; ++p) {
      const uint32_t q = l * kPhaseCount + p;
      PhaseSamples samples{kPhases[p], w.layers[l].layer, {}, {}, {}, {}, std::nullopt};
      samples.slowest_ns.assign(slowest.begin() + uint64_t{q} * o.iterations,
                                slowest.begin() + uint64_t{q + 1} * o.iterations);
      for (uint32_t r = 0; r < world; ++r) {
        samples.rank_median_ns.push_back(all_medians[uint64_t{r} * phases + q]);
        models::OpCost cost;
        if (p == 0) cost = models::RouterCost(fp32, w.layers[l].tokens_in[r]);
        for (uint64_t n : w.layers[l].expert_tokens[r]) {
          if (p != 2) break;
          const models::OpCost one = models::ExpertFfnCost(fp32, n);
          cost.flops += one.flops;
          cost.bytes += one.bytes;
        }
        samples.rank_flops.push_back(cost.flops);
        samples.rank_bytes.push_back(cost.bytes.value);
      }
      if (p == 1 || p == 3) samples.link_bytes = dispatch.OffDiagonal() * row_bytes;
      total += AddMeasuredPhase(result, samples);
    }
    models::AddSendMatrices(result, w.layers[l].layer, dispatch, row_bytes);
  }
  result.set_total_ns(total);
  return report;
}

}  // namespace moesim::backend
