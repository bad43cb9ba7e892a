#include "backend/run/gpu_run.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "backend/comm/nccl_exchange.h"
#include "backend/comm/thread_communicator.h"
#include "backend/kernels/gpu_kernels.h"
#include "backend/kernels/rank_layout.h"
#include "backend/run/layer_check.h"
#include "backend/run/layer_inputs.h"
#include "backend/run/moe_layer_rank.h"
#include "backend/run/router_step.h"
#include "backend/run/run_result.h"

namespace moesim::backend {
namespace {

int64_t Ns(double ms) { return static_cast<int64_t>(std::llround(ms * 1e6)); }

// A world of one reports its own error as it is; several ranks agree first (moe_run.h).
Status Agree(Communicator& comm, const Status& mine) {
  if (comm.size() == 1) return mine;
  return AgreeAcrossRanks(comm, mine);
}

void Progress(const RunOptions& o, const std::string& step) {
  if (o.progress) o.progress(step);
}

// Every rank sends every rank the same rows (then ncclAlltoAll does the exchange). Decided from
// the scenario's send matrix, which every rank knows, so all ranks choose the same collective.
bool EqualSplits(const models::TrafficMatrix& rows, uint32_t world) {
  for (uint32_t i = 0; i < world; ++i) {
    for (uint32_t j = 0; j < world; ++j) {
      if (rows.at(i, j) != rows.at(0, 0)) return false;
    }
  }
  return true;
}

// One layer on one rank: its device buffers and what the exchange needs to know.
struct RankLayer {
  std::unique_ptr<gpu::GpuEpLayer> gpu;
  bool equal_splits = false;
  ReceiveLayout recv;
  std::vector<RowBlock> blocks;
};

// One pass of the layer, phase by phase: the GPU idle, a host barrier, then the phase between
// CUDA events 2p and 2p + 1 on the rank's stream. `step` ends the progress reports ("layer 0
// dispatch" + step), which feed the watchdog: a rank that returns an error here while its peers
// wait in NCCL leaves them to the watchdog (--timeout-s), as a crashed peer does.
Status RunLayer(RankLayer& l, uint32_t index, NcclExchange& nccl, Communicator& comm,
                const RunOptions& o, const std::string& step) {
  gpu::GpuEpLayer& g = *l.gpu;
  const uint32_t world = comm.size(), local = g.config().local_experts;
  for (uint32_t p = 0; p < kPhaseCount; ++p) {
    MOESIM_RETURN_IF_ERROR(g.Synchronize());
    Progress(o, "layer " + std::to_string(index) + " " + kPhaseNames[p] + step);
    comm.Barrier();
    MOESIM_RETURN_IF_ERROR(g.Mark(static_cast<int>(2 * p)));
    if (p == kRouter) MOESIM_RETURN_IF_ERROR(g.RoutePermute());
    if (p == kDispatch) {
      const SendLayout& send = g.send_layout();
      MOESIM_ASSIGN_OR_RETURN(std::vector<uint64_t> counts,
                              nccl.ExchangeCounts(send.permutation.bucket_counts, g.stream()));
      l.recv = BuildReceiveLayout(counts, world, local);
      if (l.recv.rows > g.config().max_recv_rows) {
        return Error("rank " + std::to_string(comm.rank()) + " is sent " +
                     std::to_string(l.recv.rows) + " rows; the scenario's routing sends it " +
                     std::to_string(g.config().max_recv_rows));
      }
      l.blocks = RegroupBlocks(l.recv);
      MOESIM_RETURN_IF_ERROR(nccl.ExchangeRows(g.send_rows(), send.peer_rows, g.recv_rows(),
                                               l.recv.peer_rows, g.row_bytes(), l.equal_splits,
                                               g.stream()));
      MOESIM_RETURN_IF_ERROR(g.Regroup(l.blocks));
    }
    if (p == kExpert) MOESIM_RETURN_IF_ERROR(g.Experts(l.recv));
    if (p == kCombine) {
      MOESIM_RETURN_IF_ERROR(g.RegroupBack(l.blocks));
      MOESIM_RETURN_IF_ERROR(nccl.ExchangeRows(g.back_send_rows(), l.recv.peer_rows,
                                               g.back_recv_rows(), g.send_layout().peer_rows,
                                               g.row_bytes(), l.equal_splits, g.stream()));
      MOESIM_RETURN_IF_ERROR(g.Unpermute());
    }
    MOESIM_RETURN_IF_ERROR(g.Mark(static_cast<int>(2 * p + 1)));
  }
  return g.Synchronize();
}

// The layers of `rank` on CUDA device `device`: buffers, weights and inputs (untimed).
StatusOr<std::vector<RankLayer>> SetUp(const BenchScenario& s, Communicator& comm, int device,
                                       const RunOptions& o, const std::vector<float>& router) {
  const models::Workload& w = s.workload;
  const uint32_t rank = comm.rank(), world = comm.size();
  const uint32_t hidden = w.model.hidden_size(), ffn = w.model.expert_ffn_size();
  const uint32_t experts = w.model.num_experts(), top_k = w.model.top_k();
  const uint32_t per_rank = w.placement.experts_per_rank();
  std::optional<ExpertWeights> local;
  if (o.check)
    local = MakeExpertWeights(o.seed, w.plan.EpRank(rank) * per_rank, per_rank, hidden, ffn);
  std::vector<RankLayer> layers(w.layers.size());
  for (uint32_t l = 0; l < w.layers.size(); ++l) {
    const models::LayerWork& work = w.layers[l];
    const std::vector<uint32_t>& chosen = w.routing[l].experts[rank];
    const uint64_t tokens = w.routing[l].tokens(rank);
    uint64_t receives = 0;
    for (uint32_t src = 0; src < world; ++src) receives += work.dispatch_tokens.at(src, rank);
    if (tokens * top_k > INT32_MAX || receives > INT32_MAX) {
      return Error("layer " + std::to_string(l) + ": " + std::to_string(tokens) + " tokens and " +
                   std::to_string(receives) + " received rows on rank " + std::to_string(rank) +
                   " are beyond the GPU kernels' 32-bit row indices");
    }
    gpu::GpuEpLayerConfig c;
    c.max_tokens = static_cast<uint32_t>(tokens);
    c.max_recv_rows = static_cast<uint32_t>(receives);
    c.hidden = hidden;
    c.ffn = ffn;
    c.router.num_experts = experts;
    c.router.top_k = top_k;
    c.world = world;
    c.local_experts = per_rank;
    c.bucket_of_expert = BucketOfExpert(w, rank);
    c.device = device;
    c.gemm = o.gemm_api;
    c.fp8 = o.fp8;
    c.marks = 2 * kPhaseCount;
    RankLayer& layer = layers[l];
    layer.equal_splits = EqualSplits(work.dispatch_tokens, world);
    MOESIM_ASSIGN_OR_RETURN(layer.gpu, gpu::GpuEpLayer::Create(c));
    MOESIM_RETURN_IF_ERROR(local ? layer.gpu->UploadWeights(*local)
                                 : layer.gpu->RandomWeights(o.seed + rank));
    const std::vector<float> x = TokenBatch(o.seed, l, rank, tokens, hidden);
    std::vector<float> logits(tokens * experts);
    RouterLogits(x.data(), tokens, hidden, router.data(), experts, logits.data());
    std::vector<float> masked(logits.size(), -1e30f);  // only the scenario's experts can win
    for (uint64_t slot = 0; slot < chosen.size(); ++slot) {
      const uint64_t i = slot / top_k * experts + chosen[slot];
      masked[i] = logits[i];
    }
    MOESIM_RETURN_IF_ERROR(layer.gpu->UploadLogits(masked, static_cast<uint32_t>(tokens)));
    MOESIM_RETURN_IF_ERROR(layer.gpu->UploadActivations(x));
  }
  return layers;
}

// The GPU's send counts are the scenario's: the layout of the same routing on the host.
Status CheckSendCounts(const gpu::GpuEpLayer& g, const models::Workload& w, uint32_t l,
                       uint32_t rank) {
  const SendLayout want =
      BuildSendLayout(SlotBuckets(w, l, rank), w.plan.world(), w.placement.experts_per_rank());
  if (g.send_layout().permutation.bucket_counts != want.permutation.bucket_counts) {
    return Error("layer " + std::to_string(l) +
                 ": the GPU router's per-(rank, expert) counts differ from the scenario's routing");
  }
  return Status::Ok();
}

// One rank's whole run, on CUDA device `device`.
StatusOr<RunReport> RunRank(const BenchScenario& s, Communicator& comm, int device,
                            const RunOptions& o) {
  const models::Workload& w = s.workload;
  const uint32_t rank = comm.rank(), hidden = w.model.hidden_size();
  Progress(o, "set-up (GPU buffers, weights and inputs)");
  const std::vector<float> router = RouterMatrix(o.seed, hidden, w.model.num_experts());
  auto layers = SetUp(s, comm, device, o, router);
  MOESIM_RETURN_IF_ERROR(Agree(comm, layers.ok() ? Status::Ok() : Status(layers.error())));
  Progress(o, "set-up (NCCL)");
  MOESIM_ASSIGN_OR_RETURN(std::unique_ptr<NcclExchange> nccl,
                          NcclExchange::Create(comm, device, w.placement.experts_per_rank()));

  RunReport report;
  if (o.check) {
    const double bound = o.fp8 ? kGpuFp8RelativeErrorBound : kGpuRelativeErrorBound;
    int64_t rows = 0;
    double worst = 0;
    for (uint32_t l = 0; l < layers->size(); ++l) {
      RankLayer& layer = (*layers)[l];
      MOESIM_RETURN_IF_ERROR(layer.gpu->Poison());
      MOESIM_RETURN_IF_ERROR(RunLayer(layer, l, *nccl, comm, o, " (check)"));
      Status checked = CheckSendCounts(*layer.gpu, w, l, rank);
      if (checked.ok()) {
        auto y = layer.gpu->DownloadOutput();
        // FP8 experts: within their own bound, over the layer's largest value (gpu_run.h).
        auto error =
            y.ok() ? CheckCombined(*y, ReferenceOutput(w, l, rank, o.seed, router), hidden, rank, l,
                                   bound, o.fp8 ? ErrorScale::kLayer : ErrorScale::kToken)
                   : StatusOr<double>(y.error());
        if (error.ok()) worst = std::max(worst, *error);
        checked = error.ok() ? Status::Ok() : Status(error.error());
      }
      MOESIM_RETURN_IF_ERROR(Agree(comm, checked));
      rows += static_cast<int64_t>(layer.recv.rows);
    }
    report.check = CheckReport{true, false, 0, 0, bound};
    std::vector<int64_t> all_rows(rank == 0 ? comm.size() : 0);
    comm.Gather(std::span<const int64_t>(&rows, 1), all_rows);
    for (int64_t r : all_rows) report.check.rows_checked += static_cast<uint64_t>(r);
    std::vector<double> max_error(1);
    comm.ReduceMax(std::span<const double>(&worst, 1), max_error);
    report.check.max_relative_error = max_error[0];
  }

  const uint32_t world = comm.size();
  RankTimes times(static_cast<uint32_t>(layers->size()), o.iterations, world);
  for (uint32_t it = 0; it < o.warmup + o.iterations; ++it) {
    const bool timed = it >= o.warmup;
    for (uint32_t l = 0; l < layers->size(); ++l) {
      RankLayer& layer = (*layers)[l];
      const std::string step = ", iteration " + std::to_string(it) + (timed ? "" : " (warm-up)");
      MOESIM_RETURN_IF_ERROR(RunLayer(layer, l, *nccl, comm, o, step));
      if (!timed) continue;
      for (uint32_t p = 0; p < kPhaseCount; ++p) {
        MOESIM_ASSIGN_OR_RETURN(
            double ms, layer.gpu->Elapsed(static_cast<int>(2 * p), static_cast<int>(2 * p + 1)));
        times.at(l, p, it - o.warmup) = Ns(ms);
      }
    }
    if (o.iteration_done) o.iteration_done(it + 1, o.warmup + o.iterations);
  }
  for (uint32_t l = 0; l < layers->size(); ++l) {
    const std::vector<uint64_t>& rows = (*layers)[l].gpu->send_layout().peer_rows;
    for (uint32_t j = 0; j < world; ++j) {
      times.send_rows[uint64_t{l} * world + j] = static_cast<int64_t>(rows[j]);
    }
  }
  Progress(o, "gathering the measurements");
  // FP8 experts: the rows still move in bf16, as Megatron-Core's dispatchers send them.
  GatherResult(
      s, comm, o, times,
      o.fp8 ? MeasuredAs{"gpu", "fp8", pb::FP8, 2} : MeasuredAs{"gpu", "bf16", pb::BF16, 2},
      report.result);
  Progress(o, "done");
  return report;
}

// `--gpus N` in one process: N threads, thread r drives GPU r as rank r.
StatusOr<RunReport> RunThreads(const BenchScenario& s, uint32_t n, const RunOptions& o) {
  ThreadGroup group(n);
  std::vector<std::optional<StatusOr<RunReport>>> out(n);
  std::vector<std::thread> threads;
  for (uint32_t r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      ThreadCommunicator comm(group, r);
      out[r] = RunRank(s, comm, static_cast<int>(r), o);
    });
  }
  for (std::thread& t : threads) t.join();
  for (uint32_t r = 0; r < n; ++r) {  // the first rank that failed for its own reason
    if (!out[r]->ok() && out[r]->error().message() != kStoppedByPeer) return out[r]->error();
  }
  return std::move(*out[0]);
}

}  // namespace

StatusOr<RunReport> RunOnGpu(const BenchScenario& s, Communicator& comm,
                             std::optional<uint32_t> gpus, const RunOptions& o) {
  const bool threads = comm.size() == 1;
  if (!threads && gpus && *gpus != comm.size()) {
    return InputError(
        {}, "--gpus", std::to_string(*gpus),
        "with several MPI ranks each process drives one GPU, and this run has " +
            std::to_string(comm.size()) + " processes",
        "the number of MPI ranks (" + std::to_string(comm.size()) + "), or leave --gpus out");
  }
  const uint32_t ranks = threads ? gpus.value_or(1) : comm.size();
  // GPUs this process needs on its node: all of them with threads, one per local rank with MPI.
  const uint32_t needed = threads ? ranks : comm.ranks_on_node();
  Status devices = Status::Ok();
  if (auto visible = gpu::VisibleDevices(); !visible.ok()) {
    devices = Error("--device gpu: " + visible.error().message());
  } else if (static_cast<uint32_t>(*visible) < needed) {
    devices = Error("--device gpu: " + std::to_string(needed) +
                    " GPUs needed on this node (one per rank), but only " +
                    std::to_string(*visible) + " visible (CUDA_VISIBLE_DEVICES)");
  }
  MOESIM_RETURN_IF_ERROR(Agree(comm, devices));
  MOESIM_RETURN_IF_ERROR(CheckRankCount(
      s, ranks,
      threads ? "GPUs of this process (--gpus, or mpirun -np)" : "MPI ranks (mpirun -np)"));
  if (threads && ranks > 1) return RunThreads(s, ranks, o);
  return RunRank(s, comm, static_cast<int>(comm.local_rank()), o);
}

}  // namespace moesim::backend
