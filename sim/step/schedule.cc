#include "sim/step/schedule.h"

#include <algorithm>

namespace moesim::sim {
namespace {

// ceil(a / b) picoseconds, a >= 0.
Duration DivUp(Duration a, int64_t b) {
  return Duration::Picoseconds((a.picoseconds() + b - 1) / b);
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

PipelineTime SchedulePipeline(PipelineSchedule schedule, uint32_t pp, uint32_t microbatches,
                              uint32_t virtual_stages, const ChunkTimes& t) {
  const Duration fb = t.forward + t.backward;
  const int64_t p = pp, m = microbatches;
  PipelineTime x;
  switch (schedule) {
    case PipelineSchedule::kDualPipe: {
      const Duration idle = t.pair + t.backward - 3 * t.weight;
      x.bubble = (p / 2 - 1) * std::max(Duration(), idle);
      const int64_t alone = 3 * p / 2 - 1;
      x.pipeline = x.bubble + alone * fb + (m - alone) * t.pair;
      return x;
    }
    case PipelineSchedule::kInterleaved:
      x.bubble = DivUp((p - 1) * fb, std::max<int64_t>(virtual_stages, 1));
      break;
    default:
      x.bubble = (p - 1) * fb;
  }
  x.pipeline = x.bubble + fb + (m - 1) * t.pair;
  return x;
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
    for (uint32_t s = 0; s < pp; ++s) {
      if (plan.StageLayerCount(s) % virtual_stages != 0) {
        return InputError({}, "step.virtual_stages", std::to_string(virtual_stages),
                          "stage " + std::to_string(s) + " holds " +
                              std::to_string(plan.StageLayerCount(s)) +
                              " layers, not a multiple of the chunks per device",
                          "a divisor of every stage's layers");
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

uint32_t DefaultCommSms(models::AllToAllAlgo algo, uint32_t experts, uint32_t device_sms) {
  // NCCL runs one thread block, one SM, per channel; an H800 node's log (NVIDIA/nccl#892) shows 16
  // p2p channels. DeepEP's kernels: models::CommSms.
  constexpr uint32_t kNcclP2pChannels = 16;
  return models::CommSms(algo, {kNcclP2pChannels, experts, device_sms});
}

}  // namespace moesim::sim
