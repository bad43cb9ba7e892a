#include "sim/report/report.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "models/model_spec.h"
#include "models/send_matrices.h"

namespace moesim::sim {
namespace {

// Matrices wider than this are summarised per rank instead of printed cell by cell.
constexpr int kMaxMatrixRanks = 16;

std::string Printf(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

uint64_t Cell(const google::protobuf::ListValue& row, int j) {
  return static_cast<uint64_t>(row.values(j).number_value());
}

void PrintMatrix(const pb::SendMatrix& m, uint64_t token_bytes, std::ostream& out) {
  const int n = m.tokens_size();
  out << "Layer " << m.layer() << " " << m.phase() << " all-to-all"
      << (m.phase() == "combine" ? " (expert outputs return: the dispatch matrix transposed)"
                                 : " (tokens travel to the GPUs holding their experts)")
      << "\n  tokens, row = source GPU, column = destination GPU, diagonal = kept on the GPU;"
      << " one token = " << token_bytes << " B\n";
  std::vector<uint64_t> sent(n, 0), received(n, 0);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      if (i == j) continue;
      sent[i] += Cell(m.tokens(i), j);
      received[j] += Cell(m.tokens(i), j);
    }
  }
  char line[64];
  if (n <= kMaxMatrixRanks) {
    out << "  " << std::string(8, ' ');
    for (int j = 0; j < n; ++j) {
      std::snprintf(line, sizeof line, "%7s", ("gpu" + std::to_string(j)).c_str());
      out << line;
    }
    out << "  |    sent  received  (tokens to / from other GPUs)\n";
    for (int i = 0; i < n; ++i) {
      std::snprintf(line, sizeof line, "  %-8s", ("gpu" + std::to_string(i)).c_str());
      out << line;
      for (int j = 0; j < n; ++j) {
        std::snprintf(line, sizeof line, "%7llu",
                      static_cast<unsigned long long>(Cell(m.tokens(i), j)));
        out << line;
      }
      std::snprintf(line, sizeof line, "  | %7llu %9llu\n",
                    static_cast<unsigned long long>(sent[i]),
                    static_cast<unsigned long long>(received[i]));
      out << line;
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
  if (ns < 1000000) return Printf("%.2f us", ns / 1e3);
  if (ns < 1000000000) return Printf("%.3f ms", ns / 1e6);
  return Printf("%.3f s", ns / 1e9);
}

std::string FormatFlops(uint64_t flops) {
  if (flops == 0) return "-";
  if (flops < 1000000000) return Printf("%.1f MFLOP", flops / 1e6);
  if (flops < 1000000000000) return Printf("%.1f GFLOP", flops / 1e9);
  return Printf("%.2f TFLOP", flops / 1e12);
}

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1000) return std::to_string(bytes) + " B";
  if (bytes < 1000000) return Printf("%.1f kB", bytes / 1e3);
  if (bytes < 1000000000) return Printf("%.1f MB", bytes / 1e6);
  return Printf("%.2f GB", bytes / 1e9);
}

void PrintReport(const LoadedScenario& scenario, const pb::Result& result, std::ostream& out) {
  const models::Workload& w = scenario.workload;
  const pb::ModelSpec& model = w.model;
  const topology::Cluster& cluster = scenario.cluster;
  const models::ParallelSizes& s = w.plan.sizes();
  const uint64_t token_bytes = models::TokenBytes(model).value;

  const bool profile = result.executor().rfind("profile ", 0) == 0;
  out << "moesim simulate: " << result.scenario() << "  (" << result.executor()
      << (profile ? ": measured figures, sim/compute/profile_model.h" : " fidelity") << ")\n"
      << "  cluster  " << cluster.gpus() << " GPUs of " << cluster.nodes() << " x "
      << cluster.description() << " (" << cluster.gpu_spec().name << ", NVLink "
      << Printf("%.0f", cluster.gpu_spec().nvlink.giga()) << " GB/s per direction per GPU)\n"
      << "  model    " << model.name() << ": " << model.num_experts() << " experts, top-"
      << model.top_k() << ", hidden " << model.hidden_size() << ", expert FFN "
      << model.expert_ffn_size() << ", " << pb::DType_Name(model.dtype()) << "\n"
      << "  plan     ep " << s.ep << " (experts per GPU: " << w.placement.experts_per_rank()
      << ", contiguous), edp " << s.edp << ", tp " << s.tp << ", dp " << s.dp << "\n"
      << "  workload " << w.tokens_per_gpu << " tokens per GPU, " << w.layers.size()
      << " MoE layer(s), forward\n";
  if (result.steps_size() > 0) {
    std::vector<int64_t> totals;
    for (const pb::StepTime& t : result.steps()) totals.push_back(t.total_ns());
    std::sort(totals.begin(), totals.end());
    out << "  replay   " << result.steps_size() << " step(s) of a routing trace: time per step min "
        << FormatNs(totals.front()) << ", median " << FormatNs(totals[totals.size() / 2])
        << ", max " << FormatNs(totals.back()) << "; slowest is step " << result.replayed_step()
        << ", shown below\n";
  } else {
    for (const models::LayerRouting& layer : w.routing) {
      if (!layer.note.empty())
        out << "  routing  layer " << layer.layer << ": " << layer.note << "\n";
    }
  }
  out << "\n";

  for (const pb::SendMatrix& m : result.send_matrices()) PrintMatrix(m, token_bytes, out);
  if (result.send_matrices_size() == 0 && result.gpus() > models::kMaxSendMatrixRanks) {
    out << "Send matrices: not kept in the result above " << models::kMaxSendMatrixRanks
        << " GPUs (n x n cells); `--export-alltoallv FILE` writes a layer's dispatch bytes\n\n";
  }

  out << "Phases (each takes its slowest GPU's time; bytes: over links for all-to-alls, to and "
         "from\n"
         "memory on the slowest GPU for compute)\n";
  char line[160];
  std::snprintf(line, sizeof line, "  %-5s  %-9s %12s %12s %12s  %-7s %-8s %s\n", "layer", "phase",
                "time", "bytes", "work", "bound", "slowest", "busiest link");
  out << line;
  for (const pb::Phase& p : result.phases()) {
    std::snprintf(line, sizeof line, "  %-5u  %-9s %12s %12s %12s  %-7s gpu%-5u %s\n", p.layer(),
                  p.name().c_str(), FormatNs(p.time_ns()).c_str(), FormatBytes(p.bytes()).c_str(),
                  FormatFlops(p.flops()).c_str(), p.bound().c_str(), p.critical_rank(),
                  p.bottleneck_link().c_str());
    out << line;
  }
  std::snprintf(line, sizeof line, "  %-5s  %-9s %12s\n", "", "total",
                FormatNs(result.total_ns()).c_str());
  out << line;

  if (result.critical_path_size() > 0) {
    const pb::CriticalStep& end = result.critical_path(result.critical_path_size() - 1);
    out << "\nCritical path without barriers between phases (each GPU starts a phase once its "
           "inputs are there):\n"
        << "  gpu" << end.rank() << " finishes last at " << FormatNs(result.dataflow_total_ns())
        << " (the phases above add up to " << FormatNs(result.total_ns()) << ")\n";
    std::snprintf(line, sizeof line, "  %-5s  %-9s %-7s %12s %12s  %s\n", "layer", "phase", "gpu",
                  "start", "end", "started when it had");
    out << line;
    for (const pb::CriticalStep& c : result.critical_path()) {
      std::snprintf(line, sizeof line, "  %-5u  %-9s gpu%-4u %12s %12s  ", c.layer(),
                    c.phase().c_str(), c.rank(), FormatNs(c.start_ns()).c_str(),
                    FormatNs(c.end_ns()).c_str());
      out << line << c.note() << "\n";
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
      std::snprintf(line, sizeof line, "  %-5s  %-9s %-44s %-11s %10s %5.1f%%\n",
                    i == 0 ? std::to_string(p.layer()).c_str() : "", i == 0 ? p.name().c_str() : "",
                    l.link().c_str(), l.link_class().c_str(), FormatBytes(l.bytes()).c_str(),
                    100 * l.utilization());
      out << line;
    }
  }
}

}  // namespace moesim::sim
