// Node presets: a named machine (GPU model, GPUs per node, how they are wired), each figure with its
// datasheet source in presets.cc. `moesim` scenarios name one with `cluster { node_preset: "..." }`.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "proto/status.h"
#include "proto/units.h"
#include "topology/graph.h"

namespace moesim::topology {

struct NodePreset {
  std::string name;         // "dgx-h100"
  std::string gpu;          // a name FindGpu knows
  uint32_t gpus_per_node = 0;
  // NVLink bandwidth per GPU per direction, over all of its NVLinks together.
  Rate nvlink_bandwidth;
  // Latency of one GPU <-> NVSwitch hop; GPU to GPU crosses two.
  Duration nvlink_hop_latency;
  std::string source;
};

std::span<const NodePreset> KnownNodePresets();
// The preset named `name`, or an error at `where` listing the known names.
StatusOr<NodePreset> FindNodePreset(std::string_view name, const Location& where = {});

// Adds one node's devices and links to `graph`: its GPUs, numbered from `first_gpu`, each linked in
// both directions to one NVSwitch vertex that stands for the node's NVSwitch chips together.
// (The 4 physical NVSwitch chips of an HGX H100 board are non-blocking between GPUs, so one vertex
// with each GPU's total NVLink bandwidth carries the same traffic.)
void AddNode(Graph& graph, const NodePreset& preset, uint32_t node_index, uint32_t first_gpu);

}  // namespace moesim::topology
