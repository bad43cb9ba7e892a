// One node's devices and links, before it is copied into a cluster: the GPUs, their NVLink switch
// fabric, the PCIe tree (switches, CPUs) and the NICs that lead out to the network.
//
// Three ways to get one: a preset (`dgx-h100`, topology/presets.cc), a custom node in a scenario
// (`cluster { node { ... } }`, by shape or device by device), or an NCCL topology XML
// (topology/nccl_xml.h). All three end here, so the cluster builder and the router see one form.
//
//   MOESIM_ASSIGN_OR_RETURN(NodeTemplate node, NodeFromShape(shape));
//   node.CountOf(DeviceKind::kGpu);    // 8
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proto/cluster.pb.h"
#include "proto/status.h"
#include "proto/text_file.h"
#include "proto/units.h"
#include "topology/gpu_specs.h"
#include "topology/graph.h"

namespace moesim::topology {

struct NodeTemplate {
  struct DeviceEntry {
    DeviceKind kind;
    std::string id;  // unique in the node, e.g. "gpu3", "nvswitch0", "pcie2"
  };
  // A duplex link between devices[a] and devices[b].
  struct LinkEntry {
    uint32_t a = 0, b = 0;
    Link link;
  };

  std::string name;
  GpuSpec gpu;
  std::vector<DeviceEntry> devices;  // GPUs first, in GPU order, then everything else
  std::vector<LinkEntry> links;
  // Each NIC's line rate towards the network (per direction) and the latency of its first hop.
  Rate nic_bandwidth;
  Duration nic_latency;
  // What an importer had to assume (printed by `moesim topo show`).
  std::vector<std::string> warnings;

  uint32_t CountOf(DeviceKind kind) const;
  // Indices into `devices` of every device of `kind`, in order.
  std::vector<uint32_t> IndicesOf(DeviceKind kind) const;
};

// The shape a preset or a `node { gpus: ... }` block describes.
struct NodeShape {
  std::string name;
  std::string gpu;
  uint32_t gpus = 0;
  // Per GPU per direction; 0 = no NVLink.
  Rate nvlink_bandwidth;
  uint32_t nvlink_links = 0;  // physical NVLinks per GPU, for counting
  Duration nvlink_latency;
  uint32_t pcie_switches = 0;  // 0 = one per GPU
  uint32_t cpus = 1;
  Rate pcie_bandwidth;
  Duration pcie_latency;
  Rate inter_socket_bandwidth;
  Duration inter_socket_latency;
  uint32_t nics = 0;
  Rate nic_bandwidth;
  Duration nic_latency;
};

// Builds the node: GPUs on one NVSwitch (if NVLink); GPUs and NICs spread evenly, in order, over
// the PCIe switches; switches spread evenly over the CPUs; CPUs pair up as dual-socket hosts (CPU
// 2k with CPU 2k+1, an inter-socket link). Checks counts and bandwidths.
StatusOr<NodeTemplate> NodeFromShape(const NodeShape& shape, const Location& where = {});

// A `cluster { node { ... } }` block, by shape or device by device. Errors are located in `file`
// under `field` (e.g. "cluster.node").
StatusOr<NodeTemplate> NodeFromSpec(const pb::NodeSpec& spec, const TextFile* file,
                                    const std::string& field);

// Checks every GPU can reach every other GPU of the node, and every NIC some GPU.
Status CheckNodeConnected(const NodeTemplate& node, const Location& where);

}  // namespace moesim::topology
