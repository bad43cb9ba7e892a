// `moesim collective`: the simulated twin of nccl-tests. Same flags (-b, -e, -f), same layout
// (proto/nccl_tests_table.h: size, count, type, redop, root, out-of-place and in-place time, algbw,
// busbw, #wrong, the footer), predicted instead of measured, so a user can lay the two tables side
// by side and nccl-tests' parsers read ours.

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <vector>

#include "proto/byte_size.h"
#include "proto/checked.h"
#include "proto/nccl_tests_table.h"
#include "proto/result.pb.h"
#include "sim/cli/command.h"
#include "sim/compute/compute_model.h"
#include "sim/network/collective_time.h"
#include "sim/network/network_model.h"

namespace moesim::sim {
namespace {

// The transfers of BuildCollective's ring for `op` of n ranks on `channels` channels (one ring
// where they do not divide n): RingSteps x ranks x channels.
uint64_t RingTransfers(CollectiveOp op, uint32_t ranks, uint32_t channels) {
  if (!IsRingFamily(op) || ranks < 2) return 0;
  return uint64_t{RingSteps(op, ranks)} * ranks * (ranks % channels == 0 ? channels : 1);
}

// Past this many transfers (a ring all-reduce of about 256 GPUs over 8 channels) the analytical
// model times a ring from one step (TimeRingFromOneStep) instead of listing its schedule, which
// grows as the square of the GPUs: 576 GPUs took 97 s and 4.2 GB listed on the 2-core VM.
constexpr uint64_t kListedRingTransfers = uint64_t{1} << 20;
// Past this many the flow model runs a ring from one step (FlowRingFromOneStep) instead of all
// of it: 144 GB200 in two NVL72 racks, 2.97 M transfers, took 17 s and 0.9 GB whole on the
// 2-core VM, and time and memory grow with the count.
constexpr uint64_t kFlowRingTransfers = uint64_t{1} << 22;

struct CollectiveOptions {
  std::string op = "alltoall";
  std::string cluster = "dgx-h100";
  std::string algo;
  std::string fidelity = "analytical";
  double flow_tolerance = 0;  // --flow-tolerance (sim/network/flow_model.h)
  std::string begin = "8", end = "1G", gpu;
  std::string
      nccl_version;  // --nccl-version: over the cluster's (topology::SetNcclVersionArgument)
  uint32_t factor = 2;
  std::optional<uint32_t> gpus;
  uint32_t gpus_per_thread = 1;  // -g
  bool json = false;
};

// What a thread driving `gpus_per_thread` GPUs (nccl-tests' -g) spends an iteration launching
// their kernels one after another: nccl-tests times a loop of iterations, so an iteration takes
// no less than that while the GPUs run ahead of nothing. Each launch at moesim's kernel-launch
// assumption (kLaunchOverhead, sim/compute/compute_model.h: 4 us).
Duration HostFloor(uint32_t gpus_per_thread) {
  return static_cast<int64_t>(gpus_per_thread) * kLaunchOverhead;
}

int Run(const CollectiveOptions& o, CommandIo& io) {
  auto op = ParseCollectiveOp(o.op);
  if (!op.ok()) return Fail(io, op.error());
  auto algo =
      o.algo.empty() ? StatusOr<CollectiveAlgo>(DefaultAlgo(*op)) : ParseCollectiveAlgo(o.algo);
  if (!algo.ok()) return Fail(io, algo.error());
  if (Status s = CheckAlgorithm(*op, *algo); !s.ok()) return Fail(io, s.error());
  auto cluster = topology::LoadClusterArgument(o.cluster, o.gpu);
  if (!cluster.ok()) return Fail(io, cluster.error());
  if (Status s = topology::SetNcclVersionArgument(*cluster, o.nccl_version); !s.ok())
    return Fail(io, s.error());
  const uint32_t ranks = o.gpus.value_or(cluster->total_gpus());
  if (ranks < 2 || ranks > cluster->total_gpus()) {
    return Fail(io, InputError({}, "--gpus", std::to_string(ranks), "outside the cluster",
                               "2 to " + std::to_string(cluster->total_gpus())));
  }
  if (o.gpus_per_thread < 1 || o.gpus_per_thread > ranks) {
    return Fail(io, InputError({}, "-g", std::to_string(o.gpus_per_thread),
                               "GPUs per thread must be at least 1 and no more than the GPUs",
                               "1 to " + std::to_string(ranks)));
  }
  const StatusOr<Fidelity> fidelity = ParseFidelity(o.fidelity);
  if (!fidelity.ok()) return Fail(io, fidelity.error());
  const StatusOr<FlowOptions> flow =
      ParseFlowOptions(o.flow_tolerance, *fidelity == Fidelity::kFlow);
  if (!flow.ok()) return Fail(io, flow.error());
  const std::unique_ptr<NetworkModel> net = MakeNetworkModel(*cluster, *fidelity, *flow);
  auto begin = ParseByteSize(o.begin, "-b");
  if (!begin.ok()) return Fail(io, begin.error());
  auto end = ParseByteSize(o.end, "-e");
  if (!end.ok()) return Fail(io, end.error());
  if (*begin == 0 || *end < *begin || o.factor < 2) {
    return Fail(io,
                InputError({}, "-b/-e/-f", o.begin + "/" + o.end + "/" + std::to_string(o.factor),
                           "an empty sweep", "0 < -b <= -e, -f >= 2"));
  }

  pb::CollectiveSweep sweep;
  sweep.set_op(std::string(ToString(*op)));
  sweep.set_algo(std::string(ToString(*algo)));
  sweep.set_cluster(cluster->description());
  sweep.set_gpus(ranks);
  sweep.set_fidelity(o.fidelity);
  sweep.set_flow_tolerance(flow->tolerance);
  sweep.set_gpus_per_thread(o.gpus_per_thread);
  const Duration host_floor = HostFloor(o.gpus_per_thread);
  constexpr uint64_t kTypeSize = 4;  // float, nccl-tests' default
  // The job is GPUs 0..ranks-1: NCCL's ring channels when it spans whole nodes.
  std::vector<uint32_t> gpus(ranks);
  for (uint32_t i = 0; i < ranks; ++i) gpus[i] = i;
  const uint32_t channels = RingChannels(*cluster, gpus);
  // The algorithms to time: the one asked for, or without --algo what NCCL's tuner weighs
  // (TunerAlgorithms: an all-reduce's ring, tree across nodes, NVLS or NVLSTree where the nodes
  // have it; an all-gather's or reduce-scatter's ring, or NVLS in one NVSwitch node), the fastest
  // per size.
  std::vector<CollectiveAlgo> algos = {*algo};
  if (*algo == CollectiveAlgo::kNvls) {
    if (Status s = CheckNvls(*cluster, gpus, *op); !s.ok()) return Fail(io, s.error());
  } else if (*algo == CollectiveAlgo::kNvlsTree) {
    if (Status s = CheckNvlsTree(*cluster, gpus); !s.ok()) return Fail(io, s.error());
  } else if (*algo == CollectiveAlgo::kCollNet) {
    if (Status s = CheckCollNet(*cluster, gpus); !s.ok()) return Fail(io, s.error());
  } else if (o.algo.empty()) {
    std::string described;
    algos = TunerAlgorithms(*cluster, gpus, *op, &described);
    if (algos.size() > 1) sweep.set_algo(described);
  }
  const uint64_t ring_transfers = RingTransfers(*op, ranks, channels);
  const double nvls_efficiency = NvlsEfficiency(cluster->gpu_spec().sm);
  const uint32_t nvls_channels =
      NcclNvlsChannels(cluster->gpu_spec().sm, NodesSpanned(*cluster, gpus));
  bool one_step = false;  // a ring too large to list was timed from one step
  uint32_t net_peer_channels = 0;  // NCCL's channels for a send/recv across nodes (CapNetPeers)
  for (uint64_t size = *begin; size <= *end; size *= o.factor) {
    const uint64_t bytes = NcclTestsSize(*op, ranks, size);
    std::optional<CollectiveRun> run;
    CollectiveAlgo chosen_algo = algos.front();
    for (CollectiveAlgo a : algos) {
      CollectiveRun r;
      const bool analytical = *fidelity == Fidelity::kAnalytical;
      if (a == CollectiveAlgo::kRing &&
          ring_transfers > (analytical ? kListedRingTransfers : kFlowRingTransfers)) {
        const CollectiveTiming t = analytical ? TimeRingFromOneStep(*cluster, gpus, *op, bytes)
                                              : FlowRingFromOneStep(*cluster, gpus, *op, bytes);
        r = {t.total, t.bottleneck_link, t.protocol, Duration()};  // a ring: no NVLS fill
        one_step = true;
      } else {
        auto schedule = BuildCollective(*op, a, ranks, bytes, cluster->gpus_per_node(), channels,
                                        nvls_efficiency, nvls_channels);
        if (!schedule.ok()) return Fail(io, schedule.error());
        net_peer_channels = CapNetPeers(*cluster, *schedule);
        r = net->Collective(*schedule);
      }
      // As NCCL's tuner picks: by the time it models, without NVLS's pipeline fill.
      if (!run || r.TunerTime() < run->TunerTime()) {
        run = std::move(r);
        chosen_algo = a;
      }
    }
    if (o.gpus_per_thread > 1 && run->total < host_floor) {
      run->total = host_floor;
      run->bottleneck_link = "host: " + std::to_string(o.gpus_per_thread) + " launches (-g)";
    }
    if (Status s =
            CheckRepresentable(run->total, sweep.op() + " of " + std::to_string(bytes) +
                                               " bytes over " + std::to_string(ranks) + " GPUs");
        !s.ok()) {
      return Fail(io, s.error());
    }
    const double seconds = static_cast<double>(run->total.picoseconds()) / 1e12;
    pb::CollectiveRow* row = sweep.add_rows();
    row->set_size_bytes(bytes);
    row->set_count(bytes / kTypeSize);
    row->set_type("float");
    row->set_time_us(seconds * 1e6);
    row->set_algbw_gbps(bytes / seconds / 1e9);
    row->set_busbw_gbps(row->algbw_gbps() * BusBandwidthFactor(*op, ranks));
    row->set_protocol(std::string(ToString(run->protocol)));
    row->set_bottleneck_link(run->bottleneck_link);
    row->set_algo(std::string(ToString(chosen_algo)));
    if (size > UINT64_MAX / o.factor) break;
  }

  if (Status s = CheckReportedFigures(sweep, "the sweep"); !s.ok()) return Fail(io, s.error());
  if (o.json) {
    return PrintJson(sweep, io);
  }
  const bool reduces = *op == CollectiveOp::kAllReduce || *op == CollectiveOp::kReduceScatter;
  io.out << "# moesim collective: " << sweep.op() << ", " << ranks << " GPUs of " << sweep.cluster()
         << ", algo " << sweep.algo() << ", " << o.fidelity << " model"
         << FlowToleranceNote(flow->tolerance) << " (predicted, not measured)\n"
         << "# nccl-tests' layout; in-place = out-of-place (the model does not tell them apart), "
            "#wrong N/A (no data)\n"
         << (!one_step ? ""
             : *fidelity == Fidelity::kAnalytical
                 ? "# ring rows timed from one ring step (its full schedule, " +
                       std::to_string(ring_transfers) +
                       " transfers, is too large to list; within 0.1 % of it)\n"
                 : "# ring rows timed from one ring step run in the flow model (its full "
                   "schedule, " +
                       std::to_string(ring_transfers) +
                       " transfers, is too large to run), each transfer's time there chained over "
                       "the ring's steps\n")
         << (o.gpus_per_thread > 1
                 ? "# -g " + std::to_string(o.gpus_per_thread) +
                       ": one thread launches the GPUs' kernels one after another, so an iteration "
                       "takes at least " +
                       fmt::format("{} x {:g} us\n", o.gpus_per_thread,
                                   static_cast<double>(kLaunchOverhead.picoseconds()) / 1e6)
                 : "")
         << (net_peer_channels > 0
                 ? fmt::format("# a send/recv to a rank on another node runs on {} of NCCL's "
                               "channels (NCCL {}.{}'s rule), {:g} GB/s each: {:g} GB/s a peer\n",
                               net_peer_channels, cluster->nccl_version() / 100,
                               cluster->nccl_version() % 100, kNcclP2pChannelNetGbps,
                               net_peer_channels * kNcclP2pChannelNetGbps)
                 : "")
         << "#\n";
  NcclTestsTable table;
  table.redop = reduces ? "sum" : "none";
  table.extra_heading = "proto    algo  busiest link";
  table.extra = [](const pb::CollectiveRow& r) {
    return fmt::format("{:<6}  {:>6}  {}", r.protocol(), r.algo(), r.bottleneck_link());
  };
  WriteNcclTestsTable(sweep, table, io.out);
  return 0;
}

}  // namespace

void AddCollectiveCommand(CLI::App& app, CommandAction* chosen) {
  auto o = std::make_shared<CollectiveOptions>();
  CLI::App* cmd = app.add_subcommand(
      "collective", "Predict an nccl-tests sweep: time, algbw and busbw of a collective per size");
  cmd->add_option("--op", o->op, "alltoall, allreduce, allgather, reducescatter, sendrecv")
      ->capture_default_str();
  cmd->add_option("--cluster", o->cluster, "Preset name, cluster .pbtxt or NCCL topology .xml")
      ->capture_default_str();
  cmd->add_option("--gpus", o->gpus, "GPUs taking part (default: all of the cluster)");
  cmd->add_option("-g,--ngpus", o->gpus_per_thread,
                  "GPUs per thread, as nccl-tests' -g: one thread launches their kernels one "
                  "after another each iteration, 4 us each, a floor on small sizes")
      ->capture_default_str();
  cmd->add_option("-b,--minbytes", o->begin, "Smallest size (K, M, G suffixes)")
      ->capture_default_str();
  cmd->add_option("-e,--maxbytes", o->end, "Largest size")->capture_default_str();
  cmd->add_option("-f,--stepfactor", o->factor, "Size multiplier between rows")
      ->capture_default_str();
  cmd->add_option("--algo", o->algo,
                  "direct, pairwise, hierarchical (alltoall); ring, tree, nvls, nvlstree, "
                  "collnet (allreduce; default: NCCL's tuner picks ring or nvls in one node, "
                  "ring, tree or nvlstree across nodes, and nvls or collnet where the fabric has "
                  "SHARP); "
                  "ring, nvls (allgather, reducescatter; default: the faster in one NVSwitch "
                  "node, else ring)");
  cmd->add_option("--fidelity", o->fidelity, "Network model")
      ->check(CLI::IsMember({"analytical", "flow"}))
      ->capture_default_str();
  cmd->add_option("--flow-tolerance", o->flow_tolerance,
                  "With --fidelity flow: finish every flow due within this fraction of its own "
                  "time together (direct all-to-alls; faster; 0 = exact; at most 0.1)")
      ->capture_default_str();
  cmd->add_option("--gpu", o->gpu, "GPU model for an NCCL XML that does not say");
  cmd->add_option("--nccl-version", o->nccl_version,
                  "the NCCL release whose rules the collectives follow, \"2.19\" and later (e.g. "
                  "2.28; default: the cluster file's, else 2.29)");
  cmd->add_flag("--json", o->json, "Print the sweep as JSON");
  cmd->callback([o, chosen] { *chosen = [o](CommandIo& io) { return Run(*o, io); }; });
}

}  // namespace moesim::sim
