// Importing what NCCL itself saw: the topology XML that NCCL_TOPO_DUMP_FILE writes (or a file meant
// for NCCL_TOPO_FILE), describing one node:
// <system><cpu><pci>...<gpu><nvlink/></gpu>...<nic><net/>.
//
//   MOESIM_ASSIGN_OR_RETURN(NodeTemplate node, NodeFromNcclXml("topo.xml", /*gpu_override=*/""));
//   node.warnings;   // what had to be assumed, e.g. NVLink taken from the GPU model
//
// How elements map:
//   <cpu numaid=N>                  a CPU (NUMA domain); every pair linked (NCCL's SYS path)
//   <pci class=0x0604..>            a PCIe switch (bridge), linked to its parent
//   <pci class=0x0300/0x0302..>     a GPU (its <gpu dev rank sm> child, if any, gives order and
//   model) <pci class=0x0200/0x0207..>     a NIC; each <net speed=Mb/s> inside is one NIC port
//   <nvlink target count tclass>    tclass 0x068000: an NVSwitch (one per target bus id);
//                                   a GPU target: a direct GPU-GPU NVLink. count x 25 GB/s per
//                                   direction (50 GB/s from sm 100, NVLink 5).
// PCIe bandwidth = link_speed (GT/s) x link_width x 128/130 / 8 per direction (8b/10b below 8
// GT/s). Where the file is silent (no sm, no <nvlink>, no <net>, width 0), the GPU model fills in,
// and a warning says so. Errors name the file and line.
#pragma once

#include <string>

#include "proto/status.h"
#include "topology/node.h"

namespace moesim::topology {

// `gpu_override` (a name from KnownGpus, or empty) sets the GPU model when the XML cannot tell.
StatusOr<NodeTemplate> NodeFromNcclXml(const std::string& path, const std::string& gpu_override);
StatusOr<NodeTemplate> NodeFromNcclXmlString(const std::string& xml, const std::string& name,
                                             const std::string& gpu_override);

}  // namespace moesim::topology
