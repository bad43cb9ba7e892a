#include "topology/presets.h"

#include <array>

namespace moesim::topology {
namespace {

// GPU <-> NVSwitch hop latency. NVIDIA publishes no such figure. GPU-to-GPU NVLink latencies measured
// with CUDA's p2pBandwidthLatencyTest are on the order of 1 us; half of that per hop is an assumption
// that calibration (HardwareProfile, a later issue) replaces with a measured value.
constexpr Duration kNvLinkHopLatency = Duration::Nanoseconds(500);

const std::array<NodePreset, 2>& Table() {
  static const std::array<NodePreset, 2> kPresets = {{
      // NVIDIA DGX H100 datasheet: 8x H100 SXM5, 4x NVSwitch, 900 GB/s bidirectional NVLink 4 per GPU
      // (18 links x 50 GB/s), i.e. 450 GB/s per direction.
      {"dgx-h100", "h100-sxm", 8, Rate::GigaPerSecond(450), kNvLinkHopLatency,
       "NVIDIA DGX H100 datasheet"},
      // NVIDIA DGX H200 datasheet: 8x H200 SXM, same NVLink 4 / NVSwitch fabric as DGX H100.
      {"dgx-h200", "h200-sxm", 8, Rate::GigaPerSecond(450), kNvLinkHopLatency,
       "NVIDIA DGX H200 datasheet"},
  }};
  return kPresets;
}

}  // namespace

std::span<const NodePreset> KnownNodePresets() { return Table(); }

StatusOr<NodePreset> FindNodePreset(std::string_view name, const Location& where) {
  std::vector<std::string> valid;
  for (const NodePreset& preset : Table()) {
    if (preset.name == name) return preset;
    valid.push_back(preset.name);
  }
  return InputError(where, "cluster.node_preset", "\"" + std::string(name) + "\"",
                    name.empty() ? "missing" : "unknown node preset", Join(valid));
}

void AddNode(Graph& graph, const NodePreset& preset, uint32_t node_index, uint32_t first_gpu) {
  const Vertex nvswitch =
      AddDevice(graph, {DeviceKind::kNvSwitch, "node" + std::to_string(node_index) + "/nvswitch",
                        node_index});
  const Link nvlink{LinkClass::kNvLink, preset.nvlink_bandwidth, preset.nvlink_hop_latency};
  for (uint32_t i = 0; i < preset.gpus_per_node; ++i) {
    const uint32_t gpu = first_gpu + i;
    const Vertex v = AddDevice(graph, {DeviceKind::kGpu, "gpu" + std::to_string(gpu), gpu});
    AddDuplexLink(graph, v, nvswitch, nvlink);
  }
}

}  // namespace moesim::topology
