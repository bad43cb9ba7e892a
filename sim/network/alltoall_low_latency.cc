#include "sim/network/alltoall_low_latency.h"

#include <algorithm>
#include <stdexcept>

namespace moesim::sim {

LowLatencyTraffic LowLatencyMessages(const models::LayerWork& layer, uint64_t message_bytes,
                                     bool combine) {
  const models::TrafficMatrix& copies = layer.dispatch_tokens;
  const uint32_t n = copies.ranks();
  LowLatencyTraffic t{models::TrafficMatrix(n), models::TrafficMatrix(n)};
  for (uint32_t src = 0; src < n; ++src) {
    std::vector<models::TrafficMatrix::Cell> bytes, messages;
    for (uint32_t dst = 0; dst < n; ++dst) {
      if (dst == src) continue;
      const uint64_t tokens = copies.at(src, dst);
      // One count (dispatch) or flag (combine) per expert of the pair's expert-holding rank.
      const uint64_t experts =
          dst < layer.expert_tokens.size() ? layer.expert_tokens[dst].size() : 0;
      if (tokens > 0) bytes.push_back({dst, tokens * message_bytes});
      if (tokens + experts > 0) messages.push_back({dst, tokens + experts});
    }
    t.bytes.SetRow(src, std::move(bytes));
    t.messages.SetRow(src, std::move(messages));
  }
  if (combine) {
    t.bytes = t.bytes.Transposed();
    t.messages = t.messages.Transposed();
  }
  return t;
}

AllToAll LowLatencyAllToAll(const NetworkModel& net, const std::vector<uint32_t>& gpus,
                            const LowLatencyTraffic& traffic, uint64_t messages_per_second) {
  const topology::Cluster& cluster = net.cluster();
  const topology::Router& router = cluster.router();
  StatusOr<Schedule> schedule = BuildAllToAllV(traffic.bytes, CollectiveAlgo::kDirect);
  // A direct all-to-allv of any square matrix builds; a failure is a programming error.
  if (!schedule.ok()) throw std::logic_error(schedule.error().message());
  MapOntoGroup(*schedule, gpus);
  schedule->ranks = cluster.total_gpus();  // RelayedAllToAll's ranks are the cluster's GPUs
  AllToAll result = net.RelayedAllToAll(*schedule);

  if (messages_per_second == 0) return result;  // no message rate: the links alone
  // Each GPU's NIC: the messages it sends to and receives from other nodes, and their longest
  // route.
  const uint32_t n = traffic.messages.ranks();
  std::vector<uint64_t> sent(n, 0), received(n, 0);
  std::vector<Duration> route(n);
  for (uint32_t i = 0; i < n; ++i) {
    for (const models::TrafficMatrix::Cell& c : traffic.messages.row(i)) {
      if (c.count == 0 || router.NodeOf(gpus[i]) == router.NodeOf(gpus[c.dst])) continue;
      sent[i] += c.count;
      received[c.dst] += c.count;
      const Duration latency = cluster.RouteLatency(gpus[i], gpus[c.dst]);
      route[i] = std::max(route[i], latency);
      route[c.dst] = std::max(route[c.dst], latency);
    }
  }
  for (uint32_t i = 0; i < n; ++i) {
    const uint64_t messages = std::max(sent[i], received[i]);
    if (messages == 0) continue;
    // messages / rate in picoseconds, rounded up, in integers.
    const unsigned __int128 ps =
        (static_cast<unsigned __int128>(messages) * 1'000'000'000'000 + messages_per_second - 1) /
        messages_per_second;
    const Duration posting = Duration::Picoseconds(static_cast<int64_t>(ps));
    RankCost& cost = result.ranks[gpus[i]];
    if (posting + route[i] > cost.time) {
      cost.time = posting + route[i];
      cost.bound = "messages";
    }
  }
  return result;
}

}  // namespace moesim::sim
