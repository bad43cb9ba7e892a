#include "topology/presets.h"

#include <vector>

#include "proto/did_you_mean.h"
#include "topology/defaults.h"

namespace moesim::topology {
namespace {

using defaults::kInterSocket;
using defaults::kInterSocketHop;
using defaults::kNicHop;
using defaults::kNvLinkHop;
using defaults::kPcieGen4x16;
using defaults::kPcieGen5x16;
using defaults::kPcieHop;

// NIC line rates: HDR InfiniBand 200 Gb/s = 25 GB/s, NDR 400 Gb/s = 50 GB/s per direction.
constexpr Rate kHdr = Rate::GigaPerSecond(25);
constexpr Rate kNdr = Rate::GigaPerSecond(50);

NodeShape Shape(std::string name, std::string gpu, uint32_t gpus, double nvlink_gbps,
                uint32_t pcie_switches, uint32_t cpus, Rate pcie, uint32_t nics, Rate nic) {
  return NodeShape{std::move(name), std::move(gpu), gpus, Rate::GigaPerSecond(nvlink_gbps),
                   // NVLink 3/4 links carry 25 GB/s per direction, NVLink 5 links 50.
                   static_cast<uint32_t>(nvlink_gbps / (nvlink_gbps >= 900 ? 50 : 25)), kNvLinkHop,
                   pcie_switches, cpus, pcie, kPcieHop, kInterSocket, kInterSocketHop, nics, nic,
                   kNicHop};
}

const std::vector<NodePreset>& PresetTable() {
  static const std::vector<NodePreset> kPresets = {
      // NVIDIA DGX A100 datasheet and user guide: 8x A100 80GB SXM4, 6x NVSwitch, NVLink 3 at
      // 600 GB/s bidirectional per GPU (12 links x 25 GB/s per direction = 300); 8x ConnectX-6 HDR
      // 200 Gb/s for the compute fabric; 2x AMD EPYC 7742; 4 PCIe Gen4 switches, each with 2 GPUs
      // and 2 NICs.
      {Shape("dgx-a100", "a100-sxm", 8, 300, 4, 2, kPcieGen4x16, 8, kHdr),
       "8x A100 SXM, NVLink 3 300 GB/s/dir, 8x 200 Gb/s HDR", "NVIDIA DGX A100 datasheet"},
      // NVIDIA DGX H100 datasheet: 8x H100 SXM5, 4x NVSwitch, NVLink 4 at 900 GB/s bidirectional
      // per GPU (18 links x 25 GB/s per direction = 450); 8x ConnectX-7 NDR 400 Gb/s; 2x Xeon
      // 8480C; PCIe Gen5. (PCIe switch layout taken as DGX A100's: 4 switches of 2 GPUs + 2 NICs.)
      {Shape("dgx-h100", "h100-sxm", 8, 450, 4, 2, kPcieGen5x16, 8, kNdr),
       "8x H100 SXM, NVLink 4 450 GB/s/dir, 8x 400 Gb/s NDR", "NVIDIA DGX H100 datasheet"},
      // NVIDIA DGX H200 datasheet: as DGX H100 with 8x H200 SXM (141 GB).
      {Shape("dgx-h200", "h200-sxm", 8, 450, 4, 2, kPcieGen5x16, 8, kNdr),
       "8x H200 SXM, NVLink 4 450 GB/s/dir, 8x 400 Gb/s NDR", "NVIDIA DGX H200 datasheet"},
      // HGX H800 as DeepSeek trained on (DeepSeek-V3 technical report, arXiv:2412.19437, 3.1):
      // 8x H800 on NVLink/NVSwitch, 400 GB/s bidirectional per GPU = 200 per direction (the report
      // measures ~160 GB/s achievable), and 8x 400 Gb/s InfiniBand NICs, one per GPU.
      {Shape("hgx-h800", "h800-sxm", 8, 200, 4, 2, kPcieGen5x16, 8, kNdr),
       "8x H800 SXM, NVLink 200 GB/s/dir, 8x 400 Gb/s IB (DeepSeek-V3's)",
       "NVIDIA H800 product brief; DeepSeek-V3 technical report 3.1"},
      // NVIDIA GB200 NVL72 datasheet: 72 Blackwell GPUs and 36 Grace CPUs in one NVLink domain,
      // NVLink 5 at 1.8 TB/s bidirectional per GPU (900 per direction), 130 TB/s in all. 18 compute
      // trays of 2 GB200 superchips (2 Grace, 4 GPUs) and 4 ConnectX-7 400 Gb/s NICs each.
      // Approximation: each Grace's NVLink-C2C to its 2 GPUs is modelled as a Gen5 PCIe switch
      // holding those 2 GPUs and 2 NICs; the two Graces of a tray are a dual-socket host.
      {Shape("gb200-nvl72", "gb200", 72, 900, 36, 36, kPcieGen5x16, 72, kNdr),
       "72x GB200 in one NVLink domain, NVLink 5 900 GB/s/dir, 72x 400 Gb/s",
       "NVIDIA GB200 NVL72 datasheet"},
      // A typical 8-GPU PCIe server (e.g. 2-socket Gen5 servers with 4 PCIe switches): 8x H100
      // PCIe, no NVLink, 2 GPUs and 1 NIC per switch, 4x 400 Gb/s NICs. Representative, not one
      // product.
      {Shape("pcie-8gpu", "h100-pcie", 8, 0, 4, 2, kPcieGen5x16, 4, kNdr),
       "8x H100 PCIe, no NVLink, 4 PCIe Gen5 switches, 4x 400 Gb/s",
       "representative 2-socket Gen5 PCIe server"},
  };
  return kPresets;
}

}  // namespace

std::span<const NodePreset> KnownNodePresets() { return PresetTable(); }

std::vector<std::string> NodePresetNames() {
  std::vector<std::string> names;
  for (const NodePreset& p : PresetTable()) names.push_back(p.shape.name);
  return names;
}

StatusOr<NodePreset> FindNodePreset(std::string_view name, const Location& where) {
  for (const NodePreset& preset : PresetTable()) {
    if (preset.shape.name == name) return preset;
  }
  return InputError(
      where, "cluster.node_preset", "\"" + std::string(name) + "\"",
      name.empty() ? "missing" : "unknown node preset" + DidYouMean(name, NodePresetNames()),
      Join(NodePresetNames()));
}

pb::NodeSpec NodeSpecOf(const NodePreset& preset) {
  const NodeShape& shape = preset.shape;
  auto ns = [](Duration d) { return static_cast<double>(d.picoseconds()) / 1000; };
  pb::NodeSpec spec;
  spec.set_name(shape.name);
  spec.set_gpu(shape.gpu);
  spec.set_gpus(shape.gpus);
  if (shape.nvlink_bandwidth.per_second() > 0) {
    spec.mutable_nvlink()->set_bandwidth_gbps(shape.nvlink_bandwidth.giga());
    spec.mutable_nvlink()->set_latency_ns(ns(shape.nvlink_latency));
  }
  pb::PcieSpec* pcie = spec.mutable_pcie();
  pcie->set_switches(shape.pcie_switches);
  pcie->set_cpus(shape.cpus);
  pcie->set_bandwidth_gbps(shape.pcie_bandwidth.giga());
  pcie->set_latency_ns(ns(shape.pcie_latency));
  pcie->set_inter_socket_bandwidth_gbps(shape.inter_socket_bandwidth.giga());
  if (shape.nics > 0) {
    spec.mutable_nics()->set_count(shape.nics);
    spec.mutable_nics()->set_gbit_per_s(shape.nic_bandwidth.giga() * 8);
    spec.mutable_nics()->set_latency_ns(ns(shape.nic_latency));
  }
  return spec;
}

}  // namespace moesim::topology
