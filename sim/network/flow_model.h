// The flow-level network model (`--fidelity flow`): a collective schedule runs on a cluster as
// flows that share link bandwidth by max-min fairness, event by event.
//
//   a transfer starts when the transfers it waits for are done, plus the NCCL step latency of its
//   hop (NVLink, PCIe or network, as in the analytical model), or, for the next chunk of a stream
//   (Transfer::after_sent), as soon as the chunk before has left its sender; it becomes a flow on
//   every link of its route with the route's share as coefficient (NVSwitch striping, ECMP
//   splitting); the solver (sim/network/maxmin.h) gives every flow its rate; rates change only when
//   a flow starts or ends, and only the flows whose rate changed get a new completion time; a flow
//   is done when its bytes are through. The collective starts after NCCL's per-call base latency.
//   Link capacities are scaled by the protocol's efficiency (LL carries half the bandwidth as
//   data).
//
//   FlowRun run = RunFlows(cluster, schedule, NcclProtocol::kSimple);
//   run.total;   // equals the analytical time where that is exact (one step, uniform traffic)
//
// Flows that start or end at the same instant are solved together (one re-solve per instant).
// Deterministic: events and solver calls run in a fixed order.
//
// Exact by default. FlowOptions::tolerance e > 0 trades exactness for speed where no transfer
// waits for another (a direct all-to-all(v), the MoE layer's dispatch and combine): when the
// earliest flow is through, every flow due within e of its own time (from its start to when it is
// due at its present rate) leaves the solver with it, in one re-solve, and is done at its due
// time. Such a flow has had its bandwidth for at least 1 - e of its time; the others get it up to
// e of that early. A batch's re-solve recomputes more flows than one completion's, but there are
// far fewer of them (the 1,024-GPU benchmark: 1,410 re-solves of about 10,000 flows instead of
// 68,049 of about 1,700; results/flow_bench.md). Measured, not proven
// (tests/flow_tolerance_test.cc, random skewed all-to-allvs): every transfer ends within 2 e x the
// run's end of its exact end on 16-64 GPUs (2.1 e on 256, measured once), and the benchmark's
// 1,024-4,096-GPU all-to-alls and layer end where the exact ones do. A schedule with dependencies
// (rings, trees, relays, pairwise rounds) runs exact whatever e is: there a small shift changes
// which transfers overlap (a pairwise all-to-all came out 0.7 % off at e = 0.001, 3.6 % at 0.05).
//
// What keeps it fast (results/flow_bench.md):
//   - Only links that can limit a rate are solver resources (sim/network/flow_links.h): links that
//   carry
//     exactly the same transfers with the same shares (the NVSwitch planes a GPU stripes over, the
//     spine uplinks of a leaf under ECMP, the PCIe link, NIC and switch port of one GPU's traffic)
//     are one constraint at the narrowest; a link whose transfers all cross kept links that
//     together carry no more than it (the leaf-spine links of a non-blocking rail fabric, implied
//     by the NICs) is none. Exact: the feasible rates are the same. Routes are walked before the
//     run (each switch-fabric leg once), not as flows start.
//   - A flow that ends re-solves only the flows frozen at or after its filling step (the solver's
//     restart, sim/network/maxmin.h), usually the few faster than it, not its whole component.
//   - Completions wait in one indexed heap with one entry per solver step (the flows a solve froze
//     together, sim/network/maxmin.h), at its earliest flow: a solve replaces the entries of the
//     steps it recomputed, about a hundred, rather than moving the thousand-odd flows whose rate
//     changed. The engine holds a single event, at the earliest.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sim/network/collectives.h"
#include "sim/network/nccl_model.h"
#include "topology/cluster.h"

namespace moesim::sim {

struct FlowRun {
  Duration total;                  // when the last transfer is done
  std::vector<Duration> start;     // per transfer: when its step latency was over (it began)
  std::vector<Duration> finish;    // per transfer
  std::vector<double> link_bytes;  // per edge id: bytes that crossed it
  uint64_t events = 0;             // engine events executed
  uint64_t solves = 0;             // solver calls
  uint64_t recomputed = 0;         // over all solves: flows whose rate was recomputed
  uint64_t rate_changes = 0;       // over all solves: flows whose rate changed (new ones included)
  std::string bottleneck_link;     // the link that carried the most bytes per bandwidth
};

// With a protocol, NCCL's latency model as above. Without one (the MoE layer's all-to-alls, timed
// like the analytical model of sim/moe/moe_layer.h), no base latency and full link bandwidth; a
// transfer is done when its last byte is through plus its route's physical latency (topology link
// latencies). `efficiency`: the share of link bandwidth delivered; by default the protocol's x the
// algorithm's (1 without a protocol); the analytical model's CollectiveTiming::efficiency, which
// also holds NCCL's LL ceiling, when the flow model follows its choice.
struct FlowOptions {
  double tolerance = 0;  // 0: exact; e > 0 (at most 0.1, Result.flow_tolerance's range): see above
};

// ", tolerance 1 %" for a report's header; empty for an exact run (0).
std::string FlowToleranceNote(double tolerance);

FlowRun RunFlows(const topology::Cluster& cluster, const Schedule& schedule,
                 std::optional<NcclProtocol> protocol,
                 std::optional<double> efficiency = std::nullopt, FlowOptions options = {});

}  // namespace moesim::sim
