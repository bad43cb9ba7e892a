#include "sim/report/timeline.h"

#include <cstdio>
#include <map>
#include <string>

namespace moesim::sim {
namespace {

// Trace timestamps are microseconds; keep nanosecond precision.
std::string Us(int64_t ns) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3f", static_cast<double>(ns) / 1000.0);
  return buffer;
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

void WriteTimeline(const pb::Result& result, const topology::Cluster& cluster, std::ostream& out) {
  const uint32_t per_node = cluster.gpus_per_node();
  const uint32_t links_pid = cluster.nodes();  // the link-class counters get a process of their own
  out << "{\"displayTimeUnit\": \"ns\", \"traceEvents\": [\n";
  bool first = true;
  auto emit = [&](const std::string& event) {
    out << (first ? "  " : ",\n  ") << event;
    first = false;
  };
  for (uint32_t n = 0; n < cluster.nodes() && n * per_node < result.gpus(); ++n) {
    emit("{\"ph\": \"M\", \"name\": \"process_name\", \"pid\": " + std::to_string(n) +
         ", \"args\": {\"name\": \"node" + std::to_string(n) + "\"}}");
  }
  for (uint32_t r = 0; r < result.gpus(); ++r) {
    emit("{\"ph\": \"M\", \"name\": \"thread_name\", \"pid\": " + std::to_string(r / per_node) +
         ", \"tid\": " + std::to_string(r) + ", \"args\": {\"name\": \"gpu" + std::to_string(r) +
         "\"}}");
  }
  emit("{\"ph\": \"M\", \"name\": \"process_name\", \"pid\": " + std::to_string(links_pid) +
       ", \"args\": {\"name\": \"links (bytes per class)\"}}");

  int64_t start = 0;
  for (const pb::Phase& p : result.phases()) {
    const std::string name = p.name() + " L" + std::to_string(p.layer());
    for (int r = 0; r < p.rank_time_ns_size(); ++r) {
      if (p.rank_time_ns(r) == 0) continue;
      std::string args =
          "{\"critical\": " +
          std::string(static_cast<uint32_t>(r) == p.critical_rank() ? "true" : "false");
      if (!p.bottleneck_link().empty()) args += ", \"busiest_link\": " + Quote(p.bottleneck_link());
      args += "}";
      emit("{\"ph\": \"X\", \"name\": " + Quote(name) + ", \"cat\": " + Quote(p.name()) +
           ", \"pid\": " + std::to_string(r / per_node) + ", \"tid\": " + std::to_string(r) +
           ", \"ts\": " + Us(start) + ", \"dur\": " + Us(p.rank_time_ns(r)) +
           ", \"args\": " + args + "}");
    }
    // Counters: bytes per link class during the phase, back to zero after it. Fixed class order.
    std::map<std::string, double> classes(p.link_class_bytes().begin(), p.link_class_bytes().end());
    for (const auto& [cls, bytes] : classes) {
      char value[64];
      std::snprintf(value, sizeof value, "%.0f", bytes);
      emit("{\"ph\": \"C\", \"name\": " + Quote(cls) + ", \"pid\": " + std::to_string(links_pid) +
           ", \"ts\": " + Us(start) + ", \"args\": {\"bytes\": " + value + "}}");
      emit("{\"ph\": \"C\", \"name\": " + Quote(cls) + ", \"pid\": " + std::to_string(links_pid) +
           ", \"ts\": " + Us(start + p.time_ns()) + ", \"args\": {\"bytes\": 0}}");
    }
    start += p.time_ns();
  }
  out << "\n]}\n";
}

}  // namespace moesim::sim
