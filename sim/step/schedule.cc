#include "sim/step/schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace moesim::sim {
namespace {

// ceil(a / b) picoseconds, a >= 0.
Duration DivUp(Duration a, int64_t b) {
  return Duration::Picoseconds((a.picoseconds() + b - 1) / b);
}

// The formulas' `x` where B > P: the layout's end instead, the difference as the wait (the
// formulas and the layout agree exactly when B <= P, so they are not laid out then).
PipelineTime WithDependencyWait(PipelineSchedule schedule, uint32_t pp, uint32_t microbatches,
                                const ChunkTimes& t, PipelineTime x) {
  if (pp < 2 || t.backward <= t.pair) return x;
  const PipelineLayout layout =
      LayoutOf(schedule, pp, microbatches, true, t.forward.picoseconds(), t.backward.picoseconds(),
               t.pair.picoseconds(), x.bubble.picoseconds());
  int64_t end = 0;
  for (const PipelineSlot& slot : LayOutPipeline(layout)) end = std::max(end, slot.end);
  const Duration laid_out = Duration::Picoseconds(end);
  if (laid_out > x.pipeline) {
    x.dependency_wait = laid_out - x.pipeline;
    x.pipeline = laid_out;
  }
  return x;
}

}  // namespace

std::string_view ToString(PipelineSchedule schedule) {
  switch (schedule) {
    case PipelineSchedule::kInterleaved:
      return "interleaved";
    case PipelineSchedule::kDualPipe:
      return "dualpipe";
    default:
      return "1f1b";
  }
}

StatusOr<PipelineSchedule> ParseSchedule(std::string_view text, const Location& where,
                                         std::string_view field) {
  if (text.empty() || text == "1f1b") return PipelineSchedule::k1F1B;
  if (text == "interleaved") return PipelineSchedule::kInterleaved;
  if (text == "dualpipe") return PipelineSchedule::kDualPipe;
  return InputError(where, field, "\"" + std::string(text) + "\"", "unknown pipeline schedule",
                    "\"1f1b\", \"interleaved\", \"dualpipe\"");
}

std::string_view BubbleFormula(PipelineSchedule schedule) {
  switch (schedule) {
    case PipelineSchedule::kInterleaved:
      return "(p - 1)(F + B) / V";
    case PipelineSchedule::kDualPipe:
      return "(p/2 - 1)(F&B + B - 3W)";
    default:
      return "(p - 1)(F + B)";
  }
}

std::string BubbleFormula(PipelineSchedule schedule, uint32_t virtual_stages, uint32_t stage_layers,
                          bool sends_overlapped) {
  const std::string_view sends = sends_overlapped ? " + (p - 1) x 2S" : "";
  if (schedule != PipelineSchedule::kInterleaved || virtual_stages == 0 || stage_layers == 0 ||
      stage_layers % virtual_stages == 0) {
    return fmt::format("{}{}", BubbleFormula(schedule), sends);
  }
  const uint32_t largest = (stage_layers + virtual_stages - 1) / virtual_stages;
  return fmt::format("(p - 1)(F + B) x {}/{}{} (chunks of up to {} of {} layers)", largest,
                     stage_layers, sends, largest, stage_layers);
}

PipelineTime SchedulePipeline(PipelineSchedule schedule, uint32_t pp, uint32_t microbatches,
                              uint32_t virtual_stages, const ChunkTimes& t, uint32_t stage_layers) {
  const Duration fb = t.forward + t.backward;
  const int64_t p = pp, m = microbatches;
  PipelineTime x;
  x.pair = t.pair;
  switch (schedule) {
    case PipelineSchedule::kDualPipe: {
      const Duration idle = t.pair + t.backward - 3 * t.weight;
      x.bubble = (p / 2 - 1) * std::max(Duration(), idle);
      const int64_t alone = 3 * p / 2 - 1;
      x.pipeline = x.bubble + alone * fb + (m - alone) * t.pair;
      return WithDependencyWait(schedule, pp, microbatches, t, x);
    }
    case PipelineSchedule::kInterleaved: {
      const int64_t v = std::max<int64_t>(virtual_stages, 1);
      if (stage_layers == 0 || stage_layers % v == 0) {
        x.bubble = DivUp((p - 1) * fb, v);
      } else {
        // Chunks as even as can be, the bubble at the largest: (p - 1)(F + B) ceil(L/V) / L.
        const int64_t largest = (int64_t{stage_layers} + v - 1) / v;
        const __int128 num = static_cast<__int128>(((p - 1) * fb).picoseconds()) * largest;
        x.bubble =
            Duration::Picoseconds(static_cast<int64_t>((num + stage_layers - 1) / stage_layers));
      }
      x.bubble += (p - 1) * t.hop;
      x.pair = std::max(t.pair, v * t.hop);
      break;
    }
    default:
      x.bubble = (p - 1) * fb;
  }
  x.pipeline = x.bubble + fb + (m - 1) * x.pair;
  ChunkTimes steady = t;
  steady.pair = x.pair;
  return WithDependencyWait(schedule, pp, microbatches, steady, x);
}

PipelineLayout LayoutOf(PipelineSchedule schedule, uint32_t pp, uint32_t microbatches,
                        bool training, int64_t forward, int64_t backward, int64_t pair,
                        int64_t bubble) {
  PipelineLayout l;
  l.stages = pp;
  l.micro_batches = microbatches;
  l.training = training;
  l.forward = forward;
  l.backward = training ? backward : 0;
  l.pair = pair;
  const int64_t fb = l.forward + l.backward;
  // bubble * F / (F + B) without overflow: bubble and F are below 2^63 / 2^20 in any real step
  // (a week is 6e17 ps); long double keeps the quotient exact to the picosecond there.
  l.fill_forward =
      fb > 0 ? static_cast<int64_t>(static_cast<long double>(bubble) * l.forward / fb) : 0;
  l.fill_backward = bubble - l.fill_forward;
  l.full_pairs = schedule == PipelineSchedule::kDualPipe
                     ? std::min<uint32_t>(microbatches, 3 * pp / 2 - 1)
                     : 1;
  return l;
}

std::vector<PipelineSlot> LayOutPipeline(const PipelineLayout& l) {
  const uint32_t p = std::max(l.stages, 1u), m = l.micro_batches;
  struct Op {
    bool forward;
    uint32_t micro_batch;
    bool overlapped;
    int64_t duration;
  };
  auto share = [&](int64_t total, uint32_t s) {
    const int64_t n = p - 1;
    return total * (s + 1) / n - total * s / n;
  };
  std::vector<std::vector<Op>> order(p);
  for (uint32_t s = 0; s < p; ++s) {
    const uint32_t warm = l.training ? std::min(m, p - s - 1) : m;
    uint32_t next_f = 0, next_b = 0, pairs = 0;
    for (; next_f < warm; ++next_f) {
      order[s].push_back({true, next_f, false, l.training ? share(l.fill_forward, s) : l.forward});
    }
    while (l.training && next_b < m) {
      if (next_f < m) {
        const bool overlapped = pairs++ >= l.full_pairs && l.pair < l.forward + l.backward;
        const int64_t b = overlapped ? std::min(l.backward, l.pair) : l.backward;
        const int64_t f = overlapped ? l.pair - b : l.forward;
        order[s].push_back({true, next_f++, overlapped, f});
        order[s].push_back({false, next_b++, overlapped, b});
      } else {
        order[s].push_back({false, next_b++, false, share(l.fill_backward, s)});
      }
    }
  }
  // End of each (stage, micro-batch) forward and backward; -1 until placed.
  std::vector<std::vector<int64_t>> f_end(p, std::vector<int64_t>(m, -1)),
      b_end(p, std::vector<int64_t>(m, -1));
  std::vector<PipelineSlot> slots;
  std::vector<size_t> next(p, 0);
  std::vector<int64_t> clock(p, 0);
  for (bool progress = true; progress;) {
    progress = false;
    for (uint32_t s = 0; s < p; ++s) {
      while (next[s] < order[s].size()) {
        const Op& op = order[s][next[s]];
        int64_t ready = clock[s];
        if (op.forward && s > 0) {
          if (f_end[s - 1][op.micro_batch] < 0) break;
          ready = std::max(ready, f_end[s - 1][op.micro_batch]);
        }
        if (!op.forward) {
          if (f_end[s][op.micro_batch] < 0) break;
          if (s + 1 < p) {
            if (b_end[s + 1][op.micro_batch] < 0) break;
            ready = std::max(ready, b_end[s + 1][op.micro_batch]);
          }
        }
        const int64_t end = ready + op.duration;
        slots.push_back({s, op.forward, op.micro_batch, op.overlapped, ready, end});
        (op.forward ? f_end : b_end)[s][op.micro_batch] = end;
        clock[s] = end;
        ++next[s];
        progress = true;
      }
    }
  }
  return slots;
}

Status CheckSchedule(PipelineSchedule schedule, uint32_t virtual_stages, const models::Plan& plan,
                     uint32_t microbatches, bool training) {
  if (schedule == PipelineSchedule::k1F1B) return Status::Ok();
  const uint32_t pp = plan.sizes().pp;
  const std::string name(ToString(schedule));
  if (!training) {
    return InputError({}, "step.schedule", name, "a training schedule; prefill and decode run 1F1B",
                      "\"1f1b\"");
  }
  if (schedule == PipelineSchedule::kInterleaved) {
    if (virtual_stages < 2) {
      return InputError({}, "step.virtual_stages", std::to_string(virtual_stages),
                        "interleaving needs at least two chunks per device", ">= 2");
    }
    if (pp < 2) {
      return InputError({}, "step.schedule", name, "interleaving needs pipeline stages (pp 1)",
                        "pp >= 2, or \"1f1b\"");
    }
    if (microbatches % pp != 0) {
      return InputError({}, "step.schedule", name,
                        std::to_string(microbatches) +
                            " micro-batches: Megatron-Core's interleaved schedule needs a "
                            "multiple of pp (" +
                            std::to_string(pp) + ")",
                        "a global batch of dp x micro-batch x a multiple of pp");
    }
    // A device may hold fewer layers than chunks: Megatron's pipeline layouts give a chunk the
    // embedding or the loss alone (Qwen3-235B's 94 layers + 2 over 32 stages x 3). It needs one.
    for (uint32_t s = 0; s < pp; ++s) {
      if (plan.StageLayerCount(s) == 0) {
        return InputError({}, "step.schedule", name,
                          "stage " + std::to_string(s) + " holds no layers",
                          "a layer on every stage, or \"1f1b\"");
      }
    }
    return Status::Ok();
  }
  if (pp < 2 || pp % 2 != 0) {
    return InputError({}, "step.schedule", name,
                      "DualPipe pairs stage i with stage pp - 1 - i: pp " + std::to_string(pp),
                      "an even pp >= 2");
  }
  if (microbatches % 2 != 0 || microbatches < 2 * pp) {
    return InputError({}, "step.schedule", name,
                      std::to_string(microbatches) +
                          " micro-batches: DualPipe needs an even number, at least 2 x pp (" +
                          std::to_string(2 * pp) + ")",
                      "a global batch of dp x micro-batch x an even m >= 2 pp");
  }
  return Status::Ok();
}

Duration Overlapped(Duration compute, Duration comm, SmShare sms) {
  Duration lost;
  if (sms.comm > 0 && sms.total > 0) {
    const int64_t c = std::min(sms.comm, sms.total);
    lost = DivUp(c * comm, sms.total);
  }
  return std::max(comm, compute + lost);
}

Duration OverlappedAtMost(Duration compute, Duration comm, SmShare sms, double hidden) {
  const double share = std::clamp(hidden, 0.0, 1.0);
  const Duration shown = Duration::Picoseconds(
      comm.picoseconds() -
      static_cast<int64_t>(std::floor(share * static_cast<double>(comm.picoseconds()))));
  return std::max(Overlapped(compute, comm, sms), compute + shown);
}

double DefaultAllToAllHidden(PipelineSchedule schedule) {
  return schedule == PipelineSchedule::kDualPipe ? 1.0 : kMegatronEpOverlapHidden;
}

uint32_t DefaultCommSms(models::AllToAllAlgo algo, uint32_t experts, uint32_t device_sms) {
  // NCCL runs one thread block, one SM, per channel; an H800 node's log (NVIDIA/nccl#892) shows 16
  // p2p channels. DeepEP's kernels: models::CommSms.
  constexpr uint32_t kNcclP2pChannels = 16;
  return models::CommSms(algo, {kNcclP2pChannels, experts, device_sms});
}

}  // namespace moesim::sim
