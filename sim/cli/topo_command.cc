// `moesim topo list | show | dot | route`: what moesim understood of a cluster, before trusting any
// prediction made on it.

#include <fmt/format.h>

#include <memory>
#include <ostream>
#include <string_view>

#include "proto/atomic_file.h"
#include "sim/cli/command.h"
#include "sim/network/nccl_model.h"
#include "sim/network/network_model.h"
#include "topology/achieved.h"
#include "topology/cluster.h"
#include "topology/presets.h"
#include "topology/summary.h"

namespace moesim::sim {
namespace {

struct TopoOptions {
  std::string cluster;  // preset name, cluster .pbtxt, or NCCL .xml
  std::string gpu;
  std::string nccl_version;  // show: --nccl-version over the cluster's
  bool json = false;
  std::string out;  // dot: output file ("" = stdout)
  uint32_t a = 0, b = 0;
};

std::string Gbps(double x) { return fmt::format("{:.1f} GB/s", x); }

// Microseconds of a latency, as NCCL's tables give them.
std::string Us(Duration d) {
  return fmt::format("{:g}", static_cast<double>(d.picoseconds()) / 1e6);
}

// NCCL's per-protocol shares and per-call and per-step latencies, as every collective of this
// cluster is priced with them (sim/network/nccl_model.h), each with its source.
void PrintNcclModel(const topology::Cluster& cluster, std::ostream& out) {
  const uint32_t sm = cluster.gpu_spec().sm;
  NcclLatencyModel ring{}, tree{};
  tree.tree = true;
  ring.net_latency = tree.net_latency = cluster.net_latency();
  auto three = [](auto of) {
    return fmt::format("{} / {} / {}", of(NcclProtocol::kLL), of(NcclProtocol::kLL128),
                       of(NcclProtocol::kSimple));
  };
  auto steps = [&](const NcclLatencyModel& m, StepLinkKind k) {
    return three([&](NcclProtocol p) { return Us(m.Step(k, p)); });
  };
  out << "  NCCL's model of its collectives (sim/network/nccl_model.h; NCCL src/graph/tuning.cc):\n"
      << fmt::format("    protocols     LL / LL128 / Simple carry {} of a link's bandwidth\n",
                     three([](NcclProtocol p) {
                       return fmt::format("{:g} %", 100 * NcclLatencyModel::Efficiency(p));
                     }))
      << fmt::format(
             "    LL ceiling    {:g} GB/s bus bandwidth in one node, {:g} on 2 nodes, {:g} on "
             "more (llMaxBws)\n",
             NcclLlMaxBusGbps(sm, 1), NcclLlMaxBusGbps(sm, 2), NcclLlMaxBusGbps(sm, 4))
      << fmt::format("    ring, us      base {}; a step over NVLink {}, PCIe {}, the network {}\n",
                     three([&](NcclProtocol p) { return Us(ring.Base(p)); }),
                     steps(ring, StepLinkKind::kNvLink), steps(ring, StepLinkKind::kPcie),
                     steps(ring, StepLinkKind::kNetwork))
      << fmt::format("    tree, us      base {}; a step over NVLink {}, PCIe {}, the network {}\n",
                     three([&](NcclProtocol p) { return Us(tree.Base(p)); }),
                     steps(tree, StepLinkKind::kNvLink), steps(tree, StepLinkKind::kPcie),
                     steps(tree, StepLinkKind::kNetwork))
      << "                  (network steps include the fabric's transport latency, "
      << Us(cluster.net_latency()) << " us, twice for Simple)\n"
      << fmt::format(
             "    across nodes  a ring's intra-node step at least 1 / 1 / 3 us (net overhead); an "
             "all-reduce's Simple ring latency x {:g} (plateau); a tree's bandwidth x 0.92, and "
             "x treeCorrectionFactor at 64 B-256 MiB\n",
             NcclRingPlateau(sm, 2, 2, uint64_t{1} << 30));
  const double nvls = NvlsEfficiency(sm);
  if (nvls > 0) {
    out << fmt::format(
        "    NVLS          {:g} % of NVLink (nvlsEfficiency), 25 us; NVLSTree 20.9 us a network "
        "hop\n",
        100 * nvls);
  } else {
    out << "    NVLS          none: " << cluster.gpu_spec().name
        << " is older than Hopper (nvlsEfficiency 0)\n";
  }
  if (cluster.sharp()) {
    NcclLatencyModel collnet{};
    collnet.collnet = true;
    collnet.net_latency = cluster.net_latency();
    collnet.local_ranks = 2;
    out << fmt::format(
        "    CollNet       SHARP (cluster.fabric.sharp): CollNet Direct all-reduces across nodes "
        "at {:g} % of the links; {} us a hop in the node, {} us a network hop, 0.4 us per other "
        "GPU of the node each way; NVLS across nodes too, 18 us a network hop\n",
        100 * CollNetEfficiency(sm), Us(collnet.Step(StepLinkKind::kNvLink, NcclProtocol::kSimple)),
        Us(collnet.Step(StepLinkKind::kNetwork, NcclProtocol::kSimple)));
  } else {
    out << "    CollNet       none: the fabric's switches do not reduce (cluster.fabric.sharp: "
           "false, NCCL's default)\n";
  }
  if (cluster.nodes() > 1) {
    // NCCL's channels for a send/recv to another node (CapNetPeers): a pipeline pair, one GPU a
    // node, and the whole cluster's GPUs in one communicator.
    const uint32_t version = cluster.nccl_version();
    const uint32_t pair = NetPeerChannels(cluster, 2, 1);
    const uint32_t all = NetPeerChannels(cluster, cluster.gpus(), cluster.gpus_per_node());
    out << fmt::format(
        "    send/recv     to another node: NCCL {}.{}'s channels a peer (paths.cc; "
        "cluster.nccl_version), {} for a pipeline pair, {} among all {} GPUs; {:g} GB/s a channel "
        "(P2P_PER_CHANNEL_NET_BW)\n",
        version / 100, version % 100, pair, all, cluster.gpus(), kNcclP2pChannelNetGbps);
  }
}

int ListPresets(CommandIo& io) {
  io.out << "Node presets (cluster { node_preset: \"NAME\" }):\n";
  for (const topology::NodePreset& p : topology::KnownNodePresets()) {
    io.out << fmt::format("  {:<12} {}\n", p.shape.name, p.summary);
  }
  io.out << "\nGPU models (node { gpu: \"NAME\" }, cluster { gpu: \"NAME\" }):\n";
  for (const topology::GpuSpec& g : topology::KnownGpus()) {
    io.out << fmt::format(
        "  {:<10} BF16 {:>6.1f} TFLOP/s  FP8 {:>6.1f} TFLOP/s  HBM {:>5.0f} GB/s {:>4.0f} GB  "
        "NVLink "
        "{:>4.0f} GB/s\n",
        g.name, g.bf16_flops.tera(), g.fp8_flops.tera(), g.hbm_bandwidth.giga(), g.hbm_gb,
        g.nvlink.giga());
  }
  return 0;
}

int Show(const TopoOptions& o, CommandIo& io) {
  auto cluster = topology::LoadClusterArgument(o.cluster, o.gpu);
  if (!cluster.ok()) return Fail(io, cluster.error());
  if (Status s = topology::SetNcclVersionArgument(*cluster, o.nccl_version); !s.ok())
    return Fail(io, s.error());
  const pb::TopologySummary s = topology::Summarize(*cluster);
  for (const std::string& w : s.warnings()) io.err << "moesim: warning: " << w << "\n";
  if (o.json) {
    return PrintJson(s, io);
  }
  io.out << "topology " << s.description() << ": " << s.nodes() << " node(s) x "
         << s.gpus_per_node() << " GPUs = " << s.gpus() << " " << s.gpu() << "\n  devices ";
  // Fixed order, so output is the same on every run.
  for (const char* k : {"gpu", "nvswitch", "pcie-switch", "cpu", "nic", "network-switch"}) {
    auto it = s.devices().find(k);
    if (it != s.devices().end()) io.out << " " << k << " " << it->second;
  }
  io.out << "\n  links   ";
  for (const char* k : {"nvlink", "pcie", "inter-socket", "infiniband", "ethernet"}) {
    auto it = s.links().find(k);
    if (it != s.links().end()) io.out << " " << k << " " << it->second;
  }
  io.out << "   (duplex)";
  if (s.nvlinks_per_gpu() > 0) io.out << ", " << s.nvlinks_per_gpu() << " NVLinks per GPU";
  io.out << "\n"
         << "  per GPU, per direction: intra-node " << Gbps(s.intra_node_gbps()) << ", inter-node "
         << Gbps(s.inter_node_gbps()) << "\n"
         << "  bisection (first half of the GPUs to the second, one direction): "
         << Gbps(s.bisection_gbps()) << "\n"
         << "  diameter: " << s.diameter_hops() << " hops\n"
         << "  achieved, what the models price each link at (topology/achieved.h):\n";
  for (const topology::LinkClass c :
       {topology::LinkClass::kNvLink, topology::LinkClass::kPcie, topology::LinkClass::kInterSocket,
        topology::LinkClass::kInfiniBand, topology::LinkClass::kEthernet}) {
    const auto it = s.achieved_fraction().find(std::string(topology::ToString(c)));
    if (it == s.achieved_fraction().end()) continue;
    io.out << fmt::format("    {:<13}{:>6.1f} %  {}\n", it->first, 100 * it->second,
                          it->second == 1.0 && c != topology::LinkClass::kInterSocket
                              ? std::string_view("line rate (line_rate: true)")
                              : topology::Achieved(c, cluster->gpu_spec()).source);
  }
  PrintNcclModel(*cluster, io.out);
  return 0;
}

int Dot(const TopoOptions& o, CommandIo& io) {
  auto cluster = topology::LoadClusterArgument(o.cluster, o.gpu);
  if (!cluster.ok()) return Fail(io, cluster.error());
  const std::string dot = topology::ToDot(*cluster);
  if (o.out.empty()) {
    io.out << dot;
    return 0;
  }
  const Status written = WriteFileAtomically(o.out, dot, "the DOT file");
  if (!written.ok()) return Fail(io, written.error());
  io.out << "wrote " << o.out << " (render: dot -Tsvg " << o.out << " -o topo.svg)\n";
  return 0;
}

int Route(const TopoOptions& o, CommandIo& io) {
  auto cluster = topology::LoadClusterArgument(o.cluster, o.gpu);
  if (!cluster.ok()) return Fail(io, cluster.error());
  const uint32_t total = cluster->total_gpus();
  for (uint32_t x : {o.a, o.b}) {
    if (x >= total) {
      return Fail(io, InputError({}, "gpu", std::to_string(x), "no such GPU",
                                 "0 to " + std::to_string(total - 1)));
    }
  }
  const topology::Graph& g = cluster->graph();
  const topology::Router& r = cluster->router();
  std::vector<topology::Edge> path;
  r.SamplePath(o.a, o.b, 0, &path);
  io.out << "route gpu" << o.a << " -> gpu" << o.b << ": " << r.Hops(o.a, o.b) << " hops, "
         << r.PathCount(o.a, o.b) << " equal-cost path(s), latency "
         << r.Latency(o.a, o.b).picoseconds() / 1000.0 << " ns, bottleneck "
         << Gbps(r.Bottleneck(o.a, o.b).giga()) << "\n";
  if (path.empty()) return 0;
  io.out << "  " << g[boost::source(path.front(), g)].name << "\n";
  for (const topology::Edge& e : path) {
    io.out << "    -- " << topology::ToString(g[e].link_class) << " " << Gbps(g[e].bandwidth.giga())
           << " -> " << g[boost::target(e, g)].name << "\n";
  }
  return 0;
}

}  // namespace

void AddTopoCommand(CLI::App& app, CommandAction* chosen) {
  auto o = std::make_shared<TopoOptions>();
  CLI::App* topo =
      app.add_subcommand("topo", "Inspect a cluster topology: presets, summary, DOT, routes");
  topo->require_subcommand(1);
  const std::string what =
      "Preset name (see `moesim topo list`), cluster file (.pbtxt, a moesim.pb.Cluster) or NCCL "
      "topology XML (.xml)";
  const std::string gpu_help =
      "GPU model for an NCCL XML that does not say (e.g. h100-sxm, h200-sxm)";

  CLI::App* list = topo->add_subcommand("list", "List node presets and GPU models");
  list->callback([chosen] { *chosen = [](CommandIo& io) { return ListPresets(io); }; });

  CLI::App* show = topo->add_subcommand(
      "show", "Summarise a cluster: devices, links, bandwidths, bisection, diameter");
  show->add_option("cluster", o->cluster, what)->required();
  show->add_option("--gpu", o->gpu, gpu_help);
  show->add_option("--nccl-version", o->nccl_version,
                   "the NCCL release whose rules the collectives follow, \"2.19\" and later (e.g. "
                   "2.28; default: the cluster file's, else 2.29)");
  show->add_flag("--json", o->json, "Print the summary as JSON");
  show->callback([o, chosen] { *chosen = [o](CommandIo& io) { return Show(*o, io); }; });

  CLI::App* dot = topo->add_subcommand("dot", "Write the cluster graph as Graphviz DOT");
  dot->add_option("cluster", o->cluster, what)->required();
  dot->add_option("--gpu", o->gpu, gpu_help);
  dot->add_option("-o,--out", o->out, "Output file (default: standard output)");
  dot->callback([o, chosen] { *chosen = [o](CommandIo& io) { return Dot(*o, io); }; });

  CLI::App* route =
      topo->add_subcommand("route", "Print the path from GPU A to GPU B and its bottleneck");
  route->add_option("cluster", o->cluster, what)->required();
  route->add_option("a", o->a, "Source GPU index")->required();
  route->add_option("b", o->b, "Destination GPU index")->required();
  route->add_option("--gpu", o->gpu, gpu_help);
  route->callback([o, chosen] { *chosen = [o](CommandIo& io) { return Route(*o, io); }; });
}

}  // namespace moesim::sim
