#include "topology/gpu_specs.h"

#include <array>

namespace moesim::topology {
namespace {

// NCCL's per-link NVLink bandwidth by architecture (src/graph/topo.h at NVIDIA/nccl 5067397:
// SM80_NVLINK_BW 20.0, SM90_NVLINK_BW 20.6, SM100_NVLINK_BW 40.1), GB/s per direction.
constexpr Rate kNcclSm80 = Rate::GigaPerSecond(20.0);
constexpr Rate kNcclSm90 = Rate::GigaPerSecond(20.6);
constexpr Rate kNcclSm100 = Rate::GigaPerSecond(40.1);

// SMs per GPU. NVIDIA A100 Tensor Core GPU Architecture whitepaper: 108 SMs. NVIDIA H100 Tensor
// Core GPU Architecture whitepaper: 132 SMs (SXM5), 114 (PCIe); H200 and H800 SXM are the same
// GH100 part as H100 SXM5 (the DeepSeek-V3 report, 3.5.1: "20 out of the 132 SMs available in the
// H800 GPU"). B200: 148 SMs, 74 of 80 on each of its two dies (Chips and Cheese, "Nvidia's B200:
// Keeping the CUDA Juggernaut Rolling", 2025); GB200's GPU is the same B200.
constexpr uint32_t kSmsA100 = 108;
constexpr uint32_t kSmsH100Sxm = 132;
constexpr uint32_t kSmsH100Pcie = 114;
constexpr uint32_t kSmsB200 = 148;

// Datasheet peaks, dense (NVIDIA quotes tensor-core rates "with sparsity": dense is half). NVLink
// per GPU per direction: A100 12 links, H100/H200 18 links of 25 GB/s; H800 400 GB/s bidirectional;
// Blackwell NVLink 5 1.8 TB/s bidirectional.
const std::array<GpuSpec, 7>& GpuTable() {
  static const std::array<GpuSpec, 7> kGpus = {{
      // NVIDIA A100 Tensor Core GPU datasheet, 80GB SXM: BF16 624 TFLOPS with sparsity, FP32 19.5,
      // HBM2e 2,039 GB/s. No FP8 tensor cores: FP8 runs at the BF16 rate here.
      {"a100-sxm", Rate::TeraPerSecond(312), Rate::TeraPerSecond(312), Rate::TeraPerSecond(19.5),
       Rate::GigaPerSecond(2039), 80, Rate::GigaPerSecond(300), 12,
       "NVIDIA A100 Tensor Core GPU datasheet (80GB SXM)", kNcclSm80, 80, kSmsA100},
      // NVIDIA H100 Tensor Core GPU datasheet, SXM5: BF16 1,979 and FP8 3,958 TFLOPS with sparsity,
      // FP32 67 TFLOPS, 80 GB HBM3 at 3.35 TB/s.
      {"h100-sxm", Rate::TeraPerSecond(989.5), Rate::TeraPerSecond(1979.0),
       Rate::TeraPerSecond(67.0), Rate::GigaPerSecond(3350), 80, Rate::GigaPerSecond(450), 18,
       "NVIDIA H100 Tensor Core GPU datasheet (SXM5)", kNcclSm90, 90, kSmsH100Sxm},
      // Same datasheet, PCIe column: BF16 1,513 and FP8 3,026 TFLOPS with sparsity, FP32 51,
      // 80 GB HBM2e at 2 TB/s.
      {"h100-pcie", Rate::TeraPerSecond(756.5), Rate::TeraPerSecond(1513.0),
       Rate::TeraPerSecond(51.0), Rate::GigaPerSecond(2000), 80, Rate(), 0,
       "NVIDIA H100 Tensor Core GPU datasheet (PCIe)", Rate(), 90, kSmsH100Pcie},
      // NVIDIA H200 Tensor Core GPU datasheet, SXM: same Hopper compute as H100 SXM, 141 GB HBM3e
      // at
      // 4.8 TB/s.
      {"h200-sxm", Rate::TeraPerSecond(989.5), Rate::TeraPerSecond(1979.0),
       Rate::TeraPerSecond(67.0), Rate::GigaPerSecond(4800), 141, Rate::GigaPerSecond(450), 18,
       "NVIDIA H200 Tensor Core GPU datasheet (SXM)", kNcclSm90, 90, kSmsH100Sxm},
      // H800 SXM5: the H100 SXM5 die and memory for the China market, NVLink cut to 400 GB/s
      // bidirectional (see the hgx-h800 preset). Compute and HBM as H100 SXM.
      {"h800-sxm", Rate::TeraPerSecond(989.5), Rate::TeraPerSecond(1979.0),
       Rate::TeraPerSecond(67.0), Rate::GigaPerSecond(3350), 80, Rate::GigaPerSecond(200), 8,
       "NVIDIA H800 SXM5 product brief (compute and memory as H100 SXM5)", kNcclSm90, 90,
       kSmsH100Sxm},
      // NVIDIA HGX B200 (8 GPUs): FP8 72 PFLOPS and BF16 36 PFLOPS with sparsity, FP32 600 TFLOPS,
      // 1.44 TB HBM3e at 64 TB/s -> per GPU 4.5 PF FP8 and 2.25 PF BF16 dense, 75 TF FP32,
      // 180 GB at 8 TB/s.
      {"b200", Rate::TeraPerSecond(2250), Rate::TeraPerSecond(4500), Rate::TeraPerSecond(75),
       Rate::GigaPerSecond(8000), 180, Rate::GigaPerSecond(900), 18,
       "NVIDIA HGX B200 datasheet (per GPU: total / 8)", kNcclSm100, 100, kSmsB200},
      // NVIDIA GB200 NVL72 (72 GPUs): FP8 720 PFLOPS and BF16 360 PFLOPS with sparsity, FP32 5,760
      // TFLOPS, up to 13.4 TB HBM3e at 576 TB/s -> per GPU 5 PF FP8 and 2.5 PF BF16 dense, 80 TF
      // FP32, 186 GB at 8 TB/s.
      {"gb200", Rate::TeraPerSecond(2500), Rate::TeraPerSecond(5000), Rate::TeraPerSecond(80),
       Rate::GigaPerSecond(8000), 186, Rate::GigaPerSecond(900), 18,
       "NVIDIA GB200 NVL72 datasheet (per GPU: total / 72)", kNcclSm100, 100, kSmsB200},
  }};
  return kGpus;
}

}  // namespace

std::span<const GpuSpec> KnownGpus() { return GpuTable(); }

StatusOr<GpuSpec> FindGpu(std::string_view name, const Location& where) {
  std::vector<std::string> valid;
  for (const GpuSpec& gpu : GpuTable()) {
    if (gpu.name == name) return gpu;
    valid.push_back(gpu.name);
  }
  return InputError(where, "gpu", "\"" + std::string(name) + "\"", "unknown GPU", Join(valid));
}

}  // namespace moesim::topology
