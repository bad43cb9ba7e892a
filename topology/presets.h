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

}  // namespace moesim::topology
