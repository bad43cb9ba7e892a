#include "sim/report/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "models/model_spec.h"
#include "models/send_matrices.h"
#include "sim/network/flow_model.h"
#include "sim/report/placement_report.h"

namespace moesim::sim {
namespace {

// Matrices wider than this are summarised per rank instead of printed cell by cell.
constexpr int kMaxMatrixRanks = 16;

uint64_t Cell(const google::protobuf::ListValue& row, int j) {
  return static_cast<uint64_t>(row.values(j).number_value());
}

// The bytes of one token in `m`: its first cell with tokens, bytes over tokens; 0 without one.
uint64_t TokenBytesOf(const pb::SendMatrix& m) {
  for (int i = 0; i < m.tokens_size() && i < m.bytes_size(); ++i) {
    for (int j = 0; j < m.tokens(i).values_size() && j < m.bytes(i).values_size(); ++j) {
      if (Cell(m.tokens(i), j) > 0) return Cell(m.bytes(i), j) / Cell(m.tokens(i), j);
    }
  }
  return 0;
}

// `token_bytes` 0: read off the matrix (TokenBytesOf), or not said when it has no bytes.
void PrintMatrix(const pb::SendMatrix& m, uint64_t token_bytes, std::ostream& out) {
  const int n = m.tokens_size();
  if (token_bytes == 0) token_bytes = TokenBytesOf(m);
  out << "Layer " << m.layer() << " " << m.phase() << " all-to-all"
      << (m.phase() == "combine" ? " (expert outputs return: the dispatch matrix transposed)"
                                 : " (tokens travel to the GPUs holding their experts)")
      << "\n  tokens, row = source GPU, column = destination GPU, diagonal = kept on the GPU"
      << (token_bytes > 0 ? "; one token = " + std::to_string(token_bytes) + " B" : "") << "\n";
  std::vector<uint64_t> sent(n, 0), received(n, 0);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      if (i == j) continue;
      sent[i] += Cell(m.tokens(i), j);
      received[j] += Cell(m.tokens(i), j);
    }
  }
  if (n <= kMaxMatrixRanks) {
    out << "  " << std::string(8, ' ');
    for (int j = 0; j < n; ++j) out << fmt::format("{:>7}", "gpu" + std::to_string(j));
    out << "  |    sent  received  (tokens to / from other GPUs)\n";
    for (int i = 0; i < n; ++i) {
      out << fmt::format("  {:<8}", "gpu" + std::to_string(i));
      for (int j = 0; j < n; ++j) out << fmt::format("{:7}", Cell(m.tokens(i), j));
      out << fmt::format("  | {:7} {:9}\n", sent[i], received[i]);
    }
  } else {
    const auto [lo, hi] = std::minmax_element(sent.begin(), sent.end());
    const auto [rlo, rhi] = std::minmax_element(received.begin(), received.end());
    out << "  " << n << " GPUs (too wide to print; see --json): tokens sent to other GPUs " << *lo
        << " to " << *hi << " (gpu" << (hi - sent.begin()) << "), received " << *rlo << " to "
        << *rhi << " (gpu" << (rhi - received.begin()) << ")\n";
  }
  out << "\n";
}

}  // namespace

std::string FormatNs(int64_t ns) {
  if (ns < 1000) return std::to_string(ns) + " ns";
  if (ns < 1000000) return fmt::format("{:.2f} us", ns / 1e3);
  if (ns < 1000000000) return fmt::format("{:.3f} ms", ns / 1e6);
  return fmt::format("{:.3f} s", ns / 1e9);
}

std::string FormatFlops(uint64_t flops) {
  if (flops == 0) return "-";
  if (flops < 1000000000) return fmt::format("{:.1f} MFLOP", flops / 1e6);
  if (flops < 1000000000000) return fmt::format("{:.1f} GFLOP", flops / 1e9);
  return fmt::format("{:.2f} TFLOP", flops / 1e12);
}

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1000) return std::to_string(bytes) + " B";
  if (bytes < 1000000) return fmt::format("{:.1f} kB", bytes / 1e3);
  if (bytes < 1000000000) return fmt::format("{:.1f} MB", bytes / 1e6);
  return fmt::format("{:.2f} GB", bytes / 1e9);
}

void PrintRouterFigures(const pb::Result& result, std::ostream& out) {
  const int rows = result.router_figures_size();
  if (rows == 0) return;
  out << "Router (aux loss = E x sum_e f_e P_e, 1 when balanced; z-loss = mean (ln sum_e "
         "exp x_e)^2;\n        max/mean = copies of the busiest expert over the mean; dropped: "
         "selections not dispatched)\n"
      << fmt::format("  {:>6} {:>5} {:>9} {:>9} {:>8} {:>8}  {}\n", "step", "layer", "aux loss",
                     "z-loss", "max/mean", "dropped", "most dropped");
  constexpr int kShown = 32;
  for (int i = 0; i < rows; ++i) {
    if (rows > 2 * kShown && i == kShown) {
      out << "  ... " << rows - 2 * kShown << " rows not shown (all in --json)\n";
      i = rows - kShown;
    }
    const pb::RouterFigures& f = result.router_figures(i);
    std::string most = "-";
    uint64_t top = 0;
    for (int e = 0; e < f.dropped_per_expert_size(); ++e) {
      if (f.dropped_per_expert(e) > top) {
        top = f.dropped_per_expert(e);
        most = "expert " + std::to_string(e) + " (" + std::to_string(top) + ")";
      }
    }
    out << fmt::format("  {:>6} {:>5} {:>9.4f} {:>9.4f} {:>8.3f} {:>8}  {}\n", f.step(), f.layer(),
                       f.aux_loss(), f.z_loss(), f.max_over_mean(), f.dropped(), most);
  }
}

void PrintReport(const LoadedScenario& scenario, const pb::Result& result, std::ostream& out) {
  const models::Workload& w = scenario.workload;
  const pb::ModelSpec& model = w.model;
  const topology::Cluster& cluster = scenario.cluster;
  const models::ParallelSizes& s = w.plan.sizes();
  const uint64_t dispatch_bytes = models::WireTokenBytes(model, w.dispatch_dtype).value;
  const uint64_t combine_bytes = models::WireTokenBytes(model, w.combine_dtype).value;

  const bool profile = result.executor().rfind("profile ", 0) == 0;
  // GPU 0's NVLink as this cluster has it (a custom node's own figure, not the GPU's datasheet):
  // line rate and what the models price it at (topology/achieved.h).
  Rate nvlink_line, nvlink_achieved;
  const topology::Graph& graph = cluster.graph();
  for (auto [it, end] = boost::out_edges(cluster.gpu_vertex(0), graph); it != end; ++it) {
    if (graph[*it].link_class != topology::LinkClass::kNvLink) continue;
    nvlink_line = nvlink_line + graph[*it].bandwidth;
    nvlink_achieved = nvlink_achieved + graph[*it].achieved;
  }
  const std::string nvlink =
      nvlink_line.per_second() == 0
          ? std::string("no NVLink")
          : fmt::format("NVLink {:.0f} GB/s per direction per GPU, {:.1f} achieved",
                        nvlink_line.giga(), nvlink_achieved.giga());
  out << "moesim simulate: " << result.scenario() << "  (" << result.executor()
      << (profile ? ": measured figures, sim/compute/profile_model.h" : " fidelity")
      << FlowToleranceNote(result.flow_tolerance()) << ")\n"
      << "  cluster  " << cluster.gpus() << " GPUs of " << cluster.nodes() << " x "
      << cluster.description() << " (" << cluster.gpu_spec().name << ", " << nvlink << ")\n"
      << "  model    " << model.name() << ": " << model.num_experts() << " experts, top-"
      << model.top_k() << ", hidden " << model.hidden_size() << ", expert FFN "
      << model.expert_ffn_size() << ", " << pb::DType_Name(model.dtype()) << "\n"
      << "  plan     ep " << s.ep << " (experts per GPU: " << w.placement.experts_per_rank() << ", "
      << w.placement.description() << "), edp " << s.edp << ", tp " << s.tp << ", dp " << s.dp
      << "\n"
      << "  workload " << w.tokens_per_gpu << " tokens per GPU, " << w.layers.size()
      << " MoE layer(s), forward\n";
  const bool kernel_rates = w.dispatch_kernel_gbps || w.combine_kernel_gbps ||
                            w.dispatch_rdma_kernel_gbps || w.combine_rdma_kernel_gbps;
  if (w.alltoall_algo != models::AllToAllAlgo::kDirect || w.dispatch_dtype || w.combine_dtype ||
      kernel_rates) {
    auto dtype = [&](std::optional<models::WireDtype> d) {
      return d ? std::string(models::ToString(*d)) : pb::DType_Name(model.dtype());
    };
    out << "  a2a      " << models::ToString(w.alltoall_algo);
    if (w.alltoall_algo == models::AllToAllAlgo::kDeepEpNormal)
      out << " (the relay forwards chunks of " << w.chunk_tokens << " tokens)";
    if (w.alltoall_algo == models::AllToAllAlgo::kDeepEpLowLatency) {
      out << " (a message per token and expert: +" << models::kLowLatencyHeaderBytes
          << " B header in dispatch)";
    }
    out << "; a token is " << dispatch_bytes << " B in " << dtype(w.dispatch_dtype)
        << " dispatch, " << combine_bytes << " B in " << dtype(w.combine_dtype) << " combine\n";
    // The kernels' own rates (sim/moe/moe_layer.h), as the benchmarks count their bytes.
    auto rates = [&](std::optional<double> d, std::optional<double> c, const char* what) {
      if (!d && !c) return;
      out << "           the kernels at most";
      if (d) out << fmt::format(" dispatch {:g}", *d);
      if (c) out << fmt::format("{} combine {:g}", d ? "," : "", *c);
      out << " GB/s per GPU " << what << "\n";
    };
    rates(w.dispatch_kernel_gbps, w.combine_kernel_gbps,
          "(the tokens a GPU receives, its own included)");
    const bool one_node = w.plan.world() <= cluster.gpus_per_node();
    rates(w.dispatch_rdma_kernel_gbps, w.combine_rdma_kernel_gbps,
          one_node ? "(RDMA: not used, one node runs the intranode kernels)"
                   : "(RDMA: a GPU's tokens x the nodes each reaches, its own included)");
  }
  if (result.steps_size() > 0) {
    std::vector<int64_t> totals;
    for (const pb::StepTime& t : result.steps()) totals.push_back(t.total_ns());
    std::sort(totals.begin(), totals.end());
    out << "  replay   " << result.steps_size() << " step(s) of "
        << (scenario.spec.routing().has_scores() ? "a router on scores" : "a routing trace")
        << ": time per step min " << FormatNs(totals.front()) << ", median "
        << FormatNs(totals[totals.size() / 2]) << ", max " << FormatNs(totals.back())
        << "; slowest is step " << result.replayed_step() << ", shown below\n";
  } else {
    for (const models::LayerRouting& layer : w.routing) {
      if (!layer.note.empty())
        out << "  routing  layer " << layer.layer << ": " << layer.note << "\n";
    }
  }
  out << "\n";
  PrintResultBody(result, dispatch_bytes, combine_bytes, out);
}

void PrintResultBody(const pb::Result& result, uint64_t dispatch_bytes, uint64_t combine_bytes,
                     std::ostream& out) {
  if (result.router_figures_size() > 0) {
    PrintRouterFigures(result, out);
    out << "\n";
  }

  for (const pb::LayerDrops& d : result.drops()) {
    out << "Dropped by capacity (factor " << d.capacity_factor() << "), layer " << d.layer()
        << ": " << d.dropped_copies() << " of " << d.routed_copies() << " token copies ("
        << fmt::format("{:.2f}", d.routed_copies() == 0
                                     ? 0.0
                                     : 100.0 * d.dropped_copies() / d.routed_copies())
        << " %), not sent and not computed\n";
    std::string per_expert;
    for (int e = 0; e < d.dropped_per_expert_size(); ++e) {
      if (d.dropped_per_expert(e) > 0) per_expert += fmt::format(" e{}:{}", e, d.dropped_per_expert(e));
    }
    if (!per_expert.empty()) out << "  per expert:" << per_expert << "\n";
  }
  if (result.drops_size() > 0) out << "\n";
  if (result.has_placement()) {
    PrintPlacement(result.placement(), /*max_ranks=*/16, out);
    out << "\n";
  }
  for (const pb::SendMatrix& m : result.send_matrices())
    PrintMatrix(m, m.phase() == "combine" ? combine_bytes : dispatch_bytes, out);
  if (result.send_matrices_size() == 0 && result.gpus() > models::kMaxSendMatrixRanks) {
    out << "Send matrices: not kept in the result above " << models::kMaxSendMatrixRanks
        << " GPUs (n x n cells); `--export-alltoallv FILE` writes a layer's dispatch bytes\n\n";
  }

  out << "Phases (each takes its slowest GPU's time; bytes: over links for all-to-alls, to and "
         "from\n"
         "memory on the slowest GPU for compute)\n";
  out << fmt::format("  {:<5}  {:<9} {:>12} {:>12} {:>12}  {:<7} {:<8} {}\n", "layer", "phase",
                     "time", "bytes", "work", "bound", "slowest", "busiest link");
  for (const pb::Phase& p : result.phases()) {
    out << fmt::format("  {:<5}  {:<9} {:>12} {:>12} {:>12}  {:<7} gpu{:<5} {}\n", p.layer(),
                       p.name(), FormatNs(p.time_ns()), FormatBytes(p.bytes()),
                       FormatFlops(p.flops()), p.bound(), p.critical_rank(), p.bottleneck_link());
  }
  out << fmt::format("  {:<5}  {:<9} {:>12}\n", "", "total", FormatNs(result.total_ns()));

  if (result.critical_path_size() > 0) {
    const pb::CriticalStep& end = result.critical_path(result.critical_path_size() - 1);
    out << "\nCritical path without barriers between phases (each GPU starts a phase once its "
           "inputs are there):\n"
        << "  gpu" << end.rank() << " finishes last at " << FormatNs(result.dataflow_total_ns())
        << " (the phases above add up to " << FormatNs(result.total_ns()) << ")\n";
    out << fmt::format("  {:<5}  {:<9} {:<7} {:>12} {:>12}  {}\n", "layer", "phase", "gpu", "start",
                       "end", "started when it had");
    for (const pb::CriticalStep& c : result.critical_path()) {
      out << fmt::format("  {:<5}  {:<9} gpu{:<4} {:>12} {:>12}  {}\n", c.layer(), c.phase(),
                         c.rank(), FormatNs(c.start_ns()), FormatNs(c.end_ns()), c.note());
    }
  }

  // Per-link load of each all-to-all: utilization is the link's bytes over its bandwidth, as a
  // share of the phase; the rest of the phase is latency, or waiting for other links.
  bool header = false;
  for (const pb::Phase& p : result.phases()) {
    if (p.busiest_links_size() == 0) continue;
    if (!header) {
      out << "\nBusiest links (bytes; share of the phase the link needs to move them)\n";
      header = true;
    }
    for (int i = 0; i < p.busiest_links_size() && i < 3; ++i) {
      const pb::LinkLoad& l = p.busiest_links(i);
      out << fmt::format("  {:<5}  {:<9} {:<44} {:<11} {:>10} {:>5.1f}%\n",
                         i == 0 ? std::to_string(p.layer()) : "", i == 0 ? p.name() : "", l.link(),
                         l.link_class(), FormatBytes(l.bytes()), 100 * l.utilization());
    }
  }
}

}  // namespace moesim::sim
