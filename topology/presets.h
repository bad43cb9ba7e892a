// Node presets: named machines (GPU model, GPUs per node, NVLink, PCIe tree, NICs), each figure
// with its datasheet source in presets.cc. Scenarios name one with `cluster { node_preset:
// "dgx-h100" }`.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "proto/status.h"
#include "topology/node.h"

namespace moesim::topology {

struct NodePreset {
  NodeShape shape;
  std::string summary;  // one line for `moesim topo list`
  std::string source;
};

std::span<const NodePreset> KnownNodePresets();
std::vector<std::string> NodePresetNames();
// The preset named `name`, or an error at `where` listing the known names.
StatusOr<NodePreset> FindNodePreset(std::string_view name, const Location& where = {});

// The preset as the `cluster { node { ... } }` block (by shape) that builds the same node, for a
// scenario that changes one figure of a preset (`moesim sweep --set cluster.node.nics.gbit_per_s`).
// The one thing a block cannot say, the NVLinks per GPU, only counts links in `moesim topo show`.
pb::NodeSpec NodeSpecOf(const NodePreset& preset);

}  // namespace moesim::topology
