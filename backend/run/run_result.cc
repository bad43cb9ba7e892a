#include "backend/run/run_result.h"

#include "backend/bench/time_stats.h"
#include "backend/run/measured_result.h"
#include "models/model_spec.h"
#include "models/send_matrices.h"

namespace moesim::backend {

void GatherResult(const BenchScenario& s, Communicator& comm, const RunOptions& o,
                  const RankTimes& mine, const MeasuredAs& as, pb::Result& result) {
  const models::Workload& w = s.workload;
  const uint32_t rank = comm.rank(), world = comm.size(), layers = mine.layers;
  const uint32_t phases = layers * kPhaseCount, iterations = mine.iterations;
  // Slowest rank per (layer, phase, iteration); each rank's median per (layer, phase); each rank's
  // send-matrix row per layer.
  std::vector<int64_t> slowest(rank == 0 ? mine.ns.size() : 0);
  comm.ReduceMax(mine.ns, slowest);
  std::vector<int64_t> medians(phases);
  for (uint32_t q = 0; q < phases; ++q) {
    medians[q] = Summarize(std::vector<int64_t>(mine.ns.begin() + uint64_t{q} * iterations,
                                                mine.ns.begin() + uint64_t{q + 1} * iterations))
                     .median;
  }
  std::vector<int64_t> all_medians(rank == 0 ? uint64_t{phases} * world : 0);
  comm.Gather(medians, all_medians);
  std::vector<int64_t> all_rows(rank == 0 ? mine.send_rows.size() * world : 0);
  comm.Gather(mine.send_rows, all_rows);
  if (rank != 0) return;

  result.set_scenario(w.name);
  result.set_executor("measured");
  result.set_gpus(world);
  result.set_model(w.model.name());
  result.set_device(as.device);
  result.set_dtype(as.dtype_name);
  result.set_iterations(o.iterations);
  result.set_warmup_iterations(o.warmup);
  pb::ModelSpec model = w.model;  // what the path moves and computes
  model.set_dtype(as.dtype);
  const uint64_t row_bytes = uint64_t{w.model.hidden_size()} * as.element_bytes;
  int64_t total = 0;
  for (uint32_t l = 0; l < layers; ++l) {
    models::TrafficMatrix dispatch(world);
    for (uint32_t r = 0; r < world; ++r) {
      for (uint32_t d = 0; d < world; ++d) {
        dispatch.at(r, d) = static_cast<uint64_t>(all_rows[(uint64_t{r} * layers + l) * world + d]);
      }
    }
    for (uint32_t p = 0; p < kPhaseCount; ++p) {
      const uint32_t q = l * kPhaseCount + p;
      PhaseSamples samples{kPhaseNames[p], w.layers[l].layer, {}, {}, {}, {}, std::nullopt};
      samples.slowest_ns.assign(slowest.begin() + uint64_t{q} * iterations,
                                slowest.begin() + uint64_t{q + 1} * iterations);
      for (uint32_t r = 0; r < world; ++r) {
        samples.rank_median_ns.push_back(all_medians[uint64_t{r} * phases + q]);
        models::OpCost cost;
        if (p == kRouter) cost = models::RouterCost(model, w.layers[l].tokens_in[r]);
        for (uint64_t n : w.layers[l].expert_tokens[r]) {
          if (p != kExpert) break;
          const models::OpCost one = models::ExpertFfnCost(model, n);
          cost.flops += one.flops;
          cost.bytes += one.bytes;
        }
        samples.rank_flops.push_back(cost.flops);
        samples.rank_bytes.push_back(cost.bytes.value);
      }
      if (p == kDispatch || p == kCombine) samples.link_bytes = dispatch.OffDiagonal() * row_bytes;
      total += AddMeasuredPhase(result, samples);
    }
    models::AddSendMatrices(result, w.layers[l].layer, dispatch, row_bytes);
  }
  result.set_total_ns(total);
}

}  // namespace moesim::backend
