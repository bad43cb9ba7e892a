#include "sim/report/timeline.h"

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace moesim::sim {
namespace {

// Insertion order, so each event reads ph, name, pid, ... as Chrome's own traces do.
using Json = nlohmann::ordered_json;

// Trace timestamps are microseconds; keep nanosecond precision. ns / 1000 rounds once, to the
// double nearest the exact microsecond count: the value a reader parses from "%.3f" of it too.
double Us(int64_t ns) { return static_cast<double>(ns) / 1000.0; }

}  // namespace

void WriteTimeline(const pb::Result& result, const topology::Cluster& cluster, std::ostream& out) {
  const uint32_t per_node = cluster.gpus_per_node();
  const uint32_t links_pid = cluster.nodes();  // the link-class counters get a process of their own
  Json events = Json::array();
  for (uint32_t n = 0; n < cluster.nodes() && n * per_node < result.gpus(); ++n) {
    events.push_back({{"ph", "M"},
                      {"name", "process_name"},
                      {"pid", n},
                      {"args", {{"name", "node" + std::to_string(n)}}}});
  }
  for (uint32_t r = 0; r < result.gpus(); ++r) {
    events.push_back({{"ph", "M"},
                      {"name", "thread_name"},
                      {"pid", r / per_node},
                      {"tid", r},
                      {"args", {{"name", "gpu" + std::to_string(r)}}}});
  }
  events.push_back({{"ph", "M"},
                    {"name", "process_name"},
                    {"pid", links_pid},
                    {"args", {{"name", "links (bytes per class)"}}}});

  int64_t start = 0;
  for (const pb::Phase& p : result.phases()) {
    const std::string name = p.name() + " L" + std::to_string(p.layer());
    for (int r = 0; r < p.rank_time_ns_size(); ++r) {
      if (p.rank_time_ns(r) == 0) continue;
      Json args = {{"critical", static_cast<uint32_t>(r) == p.critical_rank()}};
      if (!p.bottleneck_link().empty()) args["busiest_link"] = p.bottleneck_link();
      events.push_back({{"ph", "X"},
                        {"name", name},
                        {"cat", p.name()},
                        {"pid", r / per_node},
                        {"tid", r},
                        {"ts", Us(start)},
                        {"dur", Us(p.rank_time_ns(r))},
                        {"args", std::move(args)}});
    }
    // Counters: bytes per link class during the phase, back to zero after it. Fixed class order.
    // Whole bytes, rounded half to even as printf's "%.0f" did.
    std::map<std::string, double> classes(p.link_class_bytes().begin(), p.link_class_bytes().end());
    for (const auto& [cls, bytes] : classes) {
      const auto whole = static_cast<uint64_t>(std::nearbyint(bytes));
      events.push_back({{"ph", "C"},
                        {"name", cls},
                        {"pid", links_pid},
                        {"ts", Us(start)},
                        {"args", {{"bytes", whole}}}});
      events.push_back({{"ph", "C"},
                        {"name", cls},
                        {"pid", links_pid},
                        {"ts", Us(start + p.time_ns())},
                        {"args", {{"bytes", 0}}}});
    }
    start += p.time_ns();
  }
  const Json trace = {{"displayTimeUnit", "ns"}, {"traceEvents", std::move(events)}};
  // Bytes that are not UTF-8 in a name become U+FFFD: the file stays JSON, and dump() never throws.
  out << trace.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
}

}  // namespace moesim::sim
