// Datasheet figures of the GPUs moesim knows. These are peaks; what a kernel achieves comes later
// from calibration (HardwareProfile). Dense (no sparsity) tensor-core rates.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "proto/status.h"
#include "proto/units.h"

namespace moesim::topology {

struct GpuSpec {
  std::string name;    // "h100-sxm"
  Rate bf16_flops;     // dense BF16/FP16 tensor-core FLOP/s
  Rate fp8_flops;      // dense FP8 tensor-core FLOP/s
  Rate fp32_flops;     // FP32 (non-tensor) FLOP/s
  Rate hbm_bandwidth;  // bytes per second
  double hbm_gb = 0;   // memory capacity, GB (1e9 bytes) as the datasheet states it
  Rate nvlink;         // NVLink per GPU per direction, all links together; 0 = none (PCIe cards)
  uint32_t nvlink_links = 0;  // physical NVLinks per GPU
  std::string source;         // where the figures come from
  // What NCCL counts one NVLink as carrying, per direction (src/graph/topo.h, SMxx_NVLINK_BW:
  // SM80 20.0, SM90 20.6, SM100 40.1 GB/s); 0 = no NVLink. topology/achieved.h derates NVLink by
  // this over the datasheet's per-link rate (nvlink / nvlink_links).
  Rate nccl_nvlink_per_link;
  uint32_t sm = 0;  // compute capability x 10 (80 Ampere, 90 Hopper, 100 Blackwell)
  // Streaming multiprocessors: what communication kernels take SMs from while compute runs
  // (sim/step/schedule.h, SM sharing).
  uint32_t multiprocessors = 0;
};

std::span<const GpuSpec> KnownGpus();
// The spec named `name`, or an error at `where` listing the known names.
StatusOr<GpuSpec> FindGpu(std::string_view name, const Location& where = {});

}  // namespace moesim::topology
