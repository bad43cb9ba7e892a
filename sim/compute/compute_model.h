// sim/compute/ owns what compute costs on a GPU: the compute model, the per-kernel model of whole
// steps (sim/compute/kernel_model.h) and the predictions of a calibrated HardwareProfile. It may
// include models/, proto/ and topology/ (the GPU datasheets), nothing else of sim/.
//
// What a compute op costs on one GPU under a calibrated profile's model: max(FLOPs / achieved
// rate, bytes / achieved HBM bandwidth) plus one kernel launch, with the rates of a ComputeRates:
//   Datasheet  the datasheet peaks (topology/gpu_specs.cc), no launch: the MoE-layer report of
//              `moesim simulate` (sim/moe/moe_layer.h), so that its hand-computed seed figures stay
//              exact, and `moesim validate`'s base where a profile is silent.
//   With(p)    the above with a profile's measured fields in place (proto/hardware.proto).
// Expert GEMMs also pay the profile's half-rate point n_half: an expert with n tokens runs at
// rate x n / (n + n_half) (sim/compute/profile_model.h). Whole steps price each kernel by its kind
// and shape instead (sim/compute/kernel_model.h), with a profile's figures in place there too.
//
//   const ComputeRates rates = ComputeRates::Datasheet(gpu, pb::BF16).With(profile.gpu());
//   Duration t = ComputeTime(rates, /*flops=*/2 * n * h * f, /*bytes=*/...);
#pragma once

#include <cstdint>
#include <vector>

#include "proto/hardware.pb.h"
#include "proto/model.pb.h"
#include "proto/units.h"
#include "topology/gpu_specs.h"

namespace moesim::sim {

// Per kernel launch on a GPU, where no profile measured one: an ASSUMPTION (see
// sim/compute/kernel_model.h for the H200 figure it is consistent with).
inline constexpr Duration kLaunchOverhead = Duration::Nanoseconds(4000);

// The datasheet dense tensor rate for `dtype` (BF16 and FP16 alike).
Rate PeakFlops(const topology::GpuSpec& gpu, pb::DType dtype);

struct ComputeRates {
  Rate flops;         // GEMM rate, FLOP/s
  double n_half = 0;  // tokens per expert at half the GEMM rate
  Rate memory;        // memory-bound kernels, bytes/s
  Duration launch;    // per op
  // A profile's large_gemms band: GEMM ops of at least large_min_flops FLOPs run at these. 0: none.
  uint64_t large_min_flops = 0;
  Rate large_flops;
  double large_n_half = 0;
  Duration large_launch;

  // The rates of a GEMM op of `flops` FLOPs: these, or the large band's in their place.
  ComputeRates ForGemm(uint64_t flops) const;

  static ComputeRates Datasheet(const topology::GpuSpec& gpu, pb::DType dtype);
  // These rates with every field `profile` has in place of this one's.
  ComputeRates With(const pb::GpuProfile& profile) const;
};

// Zero work costs nothing (no launch). Each term rounded up to whole picoseconds (TimeFor).
Duration ComputeTime(const ComputeRates& rates, uint64_t flops, uint64_t bytes);
// One rank's expert FFNs as one grouped GEMM, `expert_tokens[i]` tokens to its i-th expert:
// launch + max((flops + active x n_half) / rate, bytes / bandwidth), active = 6hf per expert
// with tokens (models::ExpertFfnCost per expert).
Duration ExpertTime(const ComputeRates& rates, const pb::ModelSpec& model,
                    const std::vector<uint64_t>& expert_tokens);

}  // namespace moesim::sim
