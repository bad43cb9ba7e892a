// The analytical (closed-form) time of a collective schedule on a cluster: step after step, each
// step's transfers are laid on the links of their routes; the step takes its busiest link's bytes
// over that link's bandwidth. NCCL's latency model (sim/network/nccl_model.h) adds the per-call
// base and a step latency for every hop of the schedule's latency chain (NVLink, PCIe or network,
// by the hop's route), and picks the protocol, as NCCL's tuner does.
//
//   CollectiveTiming t = TimeCollective(cluster, schedule);
//   t.total   // e.g. ring all-reduce: base + 2(n-1) step latencies + 2(n-1)/n x S / B
#pragma once

#include <string>
#include <vector>

#include "proto/status.h"
#include "sim/network/collectives.h"
#include "sim/network/nccl_model.h"
#include "topology/cluster.h"

namespace moesim::sim {

struct CollectiveTiming {
  Duration total;
  Duration bandwidth;  // the sum over steps of the busiest link's drain time, before efficiency
  Duration latency;    // base + step latencies of the chosen protocol
  NcclProtocol protocol = NcclProtocol::kSimple;
  std::string bottleneck_link;  // the busiest link of the slowest step
};

// `repeats`: the schedule's steps run this many times over, one after another (a ring's 2(n-1)
// identical steps can be listed once: see sim/network/group_comm.cc); the latency chain is the
// whole run's.
CollectiveTiming TimeCollective(const topology::Cluster& cluster, const Schedule& schedule,
                                uint32_t repeats = 1);

// NCCL's latency model for `algo` (Tree rows for tree, NVLS for nvls, Ring otherwise).
NcclLatencyModel LatencyModelFor(CollectiveAlgo algo);
// What an algorithm reaches of the links' bandwidth beyond the protocol's efficiency: NCCL's
// nvlsEfficiency for the cluster's GPUs with NVLS, else 1.
double AlgorithmEfficiency(const topology::Cluster& cluster, CollectiveAlgo algo);
// Whether NVLS can run on `gpus`: Hopper or newer, an NVSwitch, one node. Else an error for --algo.
Status CheckNvls(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus);

// What a hop from `src` to `dst` crosses, for NCCL's step latency: the network between nodes;
// NVLink when every link of the route is NVLink; PCIe otherwise.
StepLinkKind HopKind(const topology::Cluster& cluster, uint32_t src, uint32_t dst);

}  // namespace moesim::sim
