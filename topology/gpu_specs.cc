#include "topology/gpu_specs.h"

#include <array>

namespace moesim::topology {
namespace {

const std::array<GpuSpec, 2>& Table() {
  static const std::array<GpuSpec, 2> kGpus = {{
      // NVIDIA H100 Tensor Core GPU datasheet, SXM5 column: BF16 1,979 TFLOPS and FP8 3,958 TFLOPS
      // "with sparsity" (dense is half), FP32 67 TFLOPS, 80 GB HBM3 at 3.35 TB/s.
      {"h100-sxm", Rate::TeraPerSecond(989.5), Rate::TeraPerSecond(1979.0),
       Rate::TeraPerSecond(67.0), Rate::GigaPerSecond(3350), 80,
       "NVIDIA H100 Tensor Core GPU datasheet (SXM5)"},
      // NVIDIA H200 Tensor Core GPU datasheet, SXM column: same Hopper compute as H100 SXM,
      // 141 GB HBM3e at 4.8 TB/s.
      {"h200-sxm", Rate::TeraPerSecond(989.5), Rate::TeraPerSecond(1979.0),
       Rate::TeraPerSecond(67.0), Rate::GigaPerSecond(4800), 141,
       "NVIDIA H200 Tensor Core GPU datasheet (SXM)"},
  }};
  return kGpus;
}

}  // namespace

std::span<const GpuSpec> KnownGpus() { return Table(); }

StatusOr<GpuSpec> FindGpu(std::string_view name, const Location& where) {
  std::vector<std::string> valid;
  for (const GpuSpec& gpu : Table()) {
    if (gpu.name == name) return gpu;
    valid.push_back(gpu.name);
  }
  return InputError(where, "gpu", "\"" + std::string(name) + "\"", "unknown GPU", Join(valid));
}

}  // namespace moesim::topology
