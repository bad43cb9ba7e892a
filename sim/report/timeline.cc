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

// The processes and tracks of `gpus` GPUs: one process per node, one track per GPU, and the
// link-class counters' process (its pid: the node count).
Json TimelineHeader(uint32_t gpus, const topology::Cluster& cluster) {
  const uint32_t per_node = cluster.gpus_per_node();
  Json events = Json::array();
  for (uint32_t n = 0; n < cluster.nodes() && n * per_node < gpus; ++n) {
    events.push_back({{"ph", "M"},
                      {"name", "process_name"},
                      {"pid", n},
                      {"args", {{"name", "node" + std::to_string(n)}}}});
  }
  for (uint32_t r = 0; r < gpus; ++r) {
    events.push_back({{"ph", "M"},
                      {"name", "thread_name"},
                      {"pid", r / per_node},
                      {"tid", r},
                      {"args", {{"name", "gpu" + std::to_string(r)}}}});
  }
  events.push_back({{"ph", "M"},
                    {"name", "process_name"},
                    {"pid", cluster.nodes()},
                    {"args", {{"name", "links (bytes per class)"}}}});
  return events;
}

// `result`'s phases from `start` ns, each named `prefix` + phase + layer; returns where they end.
int64_t AddTimelinePhases(const pb::Result& result, const topology::Cluster& cluster,
                          const std::string& prefix, int64_t start, Json& events) {
  const uint32_t per_node = cluster.gpus_per_node();
  const uint32_t links_pid = cluster.nodes();
  for (const pb::Phase& p : result.phases()) {
    const std::string name = prefix + p.name() + " L" + std::to_string(p.layer());
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
  return start;
}

void DumpTimeline(Json events, std::ostream& out) {
  const Json trace = {{"displayTimeUnit", "ns"}, {"traceEvents", std::move(events)}};
  // Bytes that are not UTF-8 in a name become U+FFFD: the file stays JSON, and dump() never throws.
  out << trace.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
}

}  // namespace

void WriteTimeline(const pb::Result& result, const topology::Cluster& cluster, std::ostream& out) {
  Json events = TimelineHeader(result.gpus(), cluster);
  AddTimelinePhases(result, cluster, "", 0, events);
  DumpTimeline(std::move(events), out);
}

void WriteReplayTimeline(const std::vector<pb::Result>& steps, const topology::Cluster& cluster,
                         std::ostream& out) {
  const uint32_t gpus = steps.empty() ? 0 : steps.front().gpus();
  Json events = TimelineHeader(gpus, cluster);
  const uint32_t steps_pid = cluster.nodes() + 1;
  events.push_back({{"ph", "M"},
                    {"name", "process_name"},
                    {"pid", steps_pid},
                    {"args", {{"name", "trace steps"}}}});
  int64_t start = 0;
  for (const pb::Result& step : steps) {
    const std::string label = "step " + std::to_string(step.replayed_step());
    const int64_t end = AddTimelinePhases(step, cluster, label + ": ", start, events);
    events.push_back({{"ph", "X"},
                      {"name", label},
                      {"pid", steps_pid},
                      {"tid", 0},
                      {"ts", Us(start)},
                      {"dur", Us(end - start)}});
    start = end;
  }
  DumpTimeline(std::move(events), out);
}

}  // namespace moesim::sim
