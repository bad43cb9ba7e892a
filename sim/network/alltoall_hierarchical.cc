#include "sim/network/alltoall_hierarchical.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

namespace moesim::sim {
namespace {

// What `src` sends to the GPUs of `node` (its copies, before any deduplication).
uint64_t CopiesToNode(const models::TrafficMatrix& bytes, uint32_t src, uint32_t node,
                      uint32_t per_node) {
  uint64_t sum = 0;
  for (uint32_t j = 0; j < per_node; ++j) sum += bytes.at(src, node * per_node + j);
  return sum;
}

Status CheckNodeBytes(const models::TrafficMatrix& bytes, uint32_t per_node,
                      const models::TrafficMatrix& node_bytes) {
  const uint32_t n = bytes.ranks(), nodes = n / per_node;
  if (node_bytes.ranks() != n) {
    return InputError({}, "node_bytes", std::to_string(node_bytes.ranks()) + " ranks",
                      "one row per rank", std::to_string(n));
  }
  for (uint32_t src = 0; src < n; ++src) {
    for (const models::TrafficMatrix::Cell& c : node_bytes.row(src)) {
      if (c.dst >= nodes && c.count > 0) {
        return InputError({}, "node_bytes", "node " + std::to_string(c.dst), "not a node",
                          "0 to " + std::to_string(nodes - 1));
      }
    }
    for (uint32_t b = 0; b < nodes; ++b) {
      if (b == src / per_node) continue;
      const uint64_t copies = CopiesToNode(bytes, src, b, per_node);
      const uint64_t once = node_bytes.at(src, b);
      if (once > copies || (once == 0 && copies > 0)) {
        return InputError({}, "node_bytes[" + std::to_string(src) + "][" + std::to_string(b) + "]",
                          std::to_string(once), "not what the copies to that node allow",
                          "1 to " + std::to_string(copies) + " (0 when nothing goes there)");
      }
    }
  }
  return Status::Ok();
}

// A forward from a relay: its bytes, and the step-0 transfers it waits for.
struct Forward {
  uint64_t bytes = 0;
  std::vector<uint32_t> after;
};

// `src`'s step 0 inside its own node: its pieces for the other GPUs there go straight. Returns what
// it has for each remote node (its copies, before any deduplication), by node.
std::map<uint32_t, uint64_t> SendInNode(Schedule& s, const models::TrafficMatrix& bytes,
                                        uint32_t src, uint32_t per_node) {
  std::map<uint32_t, uint64_t> copies;
  for (const models::TrafficMatrix::Cell& c : bytes.row(src)) {
    if (c.count == 0 || c.dst == src) continue;
    if (c.dst / per_node == src / per_node)
      s.Add(src, c.dst, c.count, 0);
    else
      copies[c.dst / per_node] += c.count;
  }
  return copies;
}

// Rail::kSource (DeepEP). Step 0: in-node pieces straight, and (a, i) -> (b, i) for every other
// node b (node_bytes, or all copies); step 1: (b, r) -> (b, j) forwards what came across on rail r
// for (b, j), after the step-0 transfers into (b, r) that carried some of it. Works on the stored
// cells only (a MoE dispatch's rows hold its EP group), never on every pair of ranks.
void SourceRail(Schedule& s, const models::TrafficMatrix& bytes, uint32_t per_node,
                const models::TrafficMatrix& node_bytes) {
  std::map<std::pair<uint32_t, uint32_t>, Forward> forwards;  // (relay, destination), in order
  for (uint32_t src = 0; src < s.ranks; ++src) {
    const uint32_t a = src / per_node, i = src % per_node;
    const std::map<uint32_t, uint64_t> copies = SendInNode(s, bytes, src, per_node);
    std::map<uint32_t, uint32_t> across;  // remote node -> this sender's transfer to it
    for (const auto& [b, sum] : copies) {
      const uint64_t crossing = node_bytes.ranks() == 0 ? sum : node_bytes.at(src, b);
      across[b] = s.Add(src, b * per_node + i, crossing, 0);
    }
    for (const models::TrafficMatrix::Cell& c : bytes.row(src)) {
      const uint32_t b = c.dst / per_node;
      if (c.count == 0 || b == a || c.dst % per_node == i) continue;
      Forward& f = forwards[{b * per_node + i, c.dst}];
      f.bytes += c.count;
      f.after.push_back(across.at(b));
    }
  }
  for (auto& [pair, f] : forwards) s.Add(pair.first, pair.second, f.bytes, 1, std::move(f.after));
}

// Rail::kSource in chunks of `chunk` bytes (the header): step 0 as SourceRail but each crossing a
// stream of chunks; step 1 one forward per (relay, destination, chunk index), after the chunks of
// that index that carried some of it and after the relay's forward of the chunk before.
void SourceRailChunked(Schedule& s, const models::TrafficMatrix& bytes, uint32_t per_node,
                       const models::TrafficMatrix& node_bytes, uint64_t chunk) {
  // (relay, destination, chunk index), in order.
  std::map<std::tuple<uint32_t, uint32_t, uint64_t>, Forward> forwards;
  struct Crossing {
    uint64_t bytes = 0;            // M: the message, all chunks
    std::vector<uint32_t> chunks;  // its transfers, chunk k at k
  };
  std::map<uint32_t, Crossing> crossings;  // one sender's, per remote node
  for (uint32_t src = 0; src < s.ranks; ++src) {
    const uint32_t a = src / per_node, i = src % per_node;
    crossings.clear();
    for (const auto& [b, sum] : SendInNode(s, bytes, src, per_node)) {
      Crossing& x = crossings[b];
      x.bytes = node_bytes.ranks() == 0 ? sum : node_bytes.at(src, b);
      for (uint64_t start = 0; start < x.bytes; start += chunk) {
        const uint32_t t = s.Add(src, b * per_node + i, std::min(chunk, x.bytes - start), 0);
        if (!x.chunks.empty()) s.transfers[t].after_sent = {x.chunks.back()};
        x.chunks.push_back(t);
      }
    }
    for (const models::TrafficMatrix::Cell& c : bytes.row(src)) {
      const uint32_t b = c.dst / per_node;
      if (c.count == 0 || b == a || c.dst % per_node == i) continue;
      const Crossing& x = crossings.at(b);
      for (uint64_t k = 0; k < x.chunks.size(); ++k) {
        // This chunk's part of the copies for c.dst: floor(F end / M) - floor(F start / M).
        const auto part_before = [&](uint64_t offset) {
          return static_cast<uint64_t>(static_cast<unsigned __int128>(c.count) * offset / x.bytes);
        };
        const uint64_t part =
            part_before(std::min(x.bytes, (k + 1) * chunk)) - part_before(k * chunk);
        if (part == 0) continue;
        Forward& f = forwards[{b * per_node + i, c.dst, k}];
        f.bytes += part;
        f.after.push_back(x.chunks[k]);
      }
    }
  }
  std::optional<std::pair<uint32_t, uint32_t>> pair;  // the (relay, destination) being streamed
  uint32_t previous = 0;
  for (auto& [key, f] : forwards) {
    const auto [relay, dst, k] = key;
    const uint32_t t = s.Add(relay, dst, f.bytes, 1, std::move(f.after));
    if (pair == std::make_pair(relay, dst)) s.transfers[t].after_sent = {previous};
    pair = std::make_pair(relay, dst);
    previous = t;
  }
}

// Rail::kDestination (Tutel's 2D). Step 0: (a, i) -> (a, k) carries what (a, i) has for local
// index k of every node, its own included; step 1: (a, k) -> (b, k) what node a's GPUs have for
// (b, k), after the step-0 transfers into (a, k) that carried some of it. Uniform traffic gives
// Tutel's schedule: nodes x size/n over NVLink, then G x size/n across.
void DestinationRail(Schedule& s, const models::TrafficMatrix& bytes, uint32_t per_node) {
  const uint32_t n = s.ranks, nodes = n / per_node;
  std::vector<std::optional<uint32_t>> regroup(uint64_t{n} * per_node);  // [src * G + k]
  for (uint32_t a = 0; a < nodes; ++a) {
    for (uint32_t i = 0; i < per_node; ++i) {
      const uint32_t src = a * per_node + i;
      for (uint32_t k = 0; k < per_node; ++k) {
        if (k == i) continue;
        uint64_t carried = 0;
        for (uint32_t b = 0; b < nodes; ++b) carried += bytes.at(src, b * per_node + k);
        if (carried > 0)
          regroup[uint64_t{src} * per_node + k] = s.Add(src, a * per_node + k, carried, 0);
      }
    }
  }
  for (uint32_t a = 0; a < nodes; ++a) {
    for (uint32_t b = 0; b < nodes; ++b) {
      if (a == b) continue;
      for (uint32_t k = 0; k < per_node; ++k) {
        const uint32_t relay = a * per_node + k, dst = b * per_node + k;
        uint64_t carried = 0;
        std::vector<uint32_t> after;
        for (uint32_t i = 0; i < per_node; ++i) {
          const uint32_t src = a * per_node + i;
          if (bytes.at(src, dst) == 0) continue;
          carried += bytes.at(src, dst);
          if (i != k) after.push_back(*regroup[uint64_t{src} * per_node + k]);
        }
        std::sort(after.begin(), after.end());
        if (carried > 0) s.Add(relay, dst, carried, 1, std::move(after));
      }
    }
  }
}

}  // namespace

StatusOr<Schedule> BuildHierarchicalAllToAllV(const models::TrafficMatrix& bytes,
                                              uint32_t gpus_per_node, Rail rail,
                                              const models::TrafficMatrix& node_bytes,
                                              uint64_t chunk_bytes) {
  const uint32_t n = bytes.ranks();
  if (gpus_per_node == 0 || n == 0 || n % gpus_per_node != 0) {
    return InputError({}, "ranks", std::to_string(n), "hierarchical all-to-all needs whole nodes",
                      "a positive multiple of " + std::to_string(gpus_per_node));
  }
  if (chunk_bytes > 0 && rail != Rail::kSource) {
    return InputError({}, "chunk_bytes", std::to_string(chunk_bytes),
                      "only the source rail (DeepEP) forwards in chunks", "Rail::kSource, or 0");
  }
  if (node_bytes.ranks() > 0) {
    if (rail != Rail::kSource) {
      return InputError({}, "node_bytes", "given", "only the source rail (DeepEP) deduplicates",
                        "Rail::kSource, or no node_bytes");
    }
    MOESIM_RETURN_IF_ERROR(CheckNodeBytes(bytes, gpus_per_node, node_bytes));
  }
  Schedule s;
  s.op = CollectiveOp::kAllToAll;
  s.algo = CollectiveAlgo::kHierarchical;
  s.ranks = n;
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t row = 0;
    for (uint32_t j = 0; j < n; ++j) row += bytes.at(i, j);
    s.size = std::max(s.size, row);
  }
  if (rail == Rail::kSource) {
    if (chunk_bytes > 0)
      SourceRailChunked(s, bytes, gpus_per_node, node_bytes, chunk_bytes);
    else
      SourceRail(s, bytes, gpus_per_node, node_bytes);
  } else {
    DestinationRail(s, bytes, gpus_per_node);
  }
  return s;
}

Schedule Reversed(const Schedule& schedule) {
  const uint32_t m = static_cast<uint32_t>(schedule.transfers.size());
  // waited_by[t]: the transfers that wait for t; streamed_by[t]: those that stream after t.
  std::vector<std::vector<uint32_t>> waited_by(m), streamed_by(m);
  for (uint32_t u = 0; u < m; ++u) {
    for (uint32_t t : schedule.transfers[u].after) waited_by[t].push_back(u);
    for (uint32_t t : schedule.transfers[u].after_sent) streamed_by[t].push_back(u);
  }
  Schedule r = schedule;
  r.transfers.clear();
  // Old transfer t becomes m - 1 - t, so dependencies still point to earlier transfers.
  for (uint32_t t = m; t-- > 0;) {
    const Transfer& x = schedule.transfers[t];
    Transfer y{x.dst, x.src, x.bytes, schedule.steps - 1 - x.step, {}, {}};
    for (uint32_t u : waited_by[t]) y.after.push_back(m - 1 - u);
    for (uint32_t u : streamed_by[t]) y.after_sent.push_back(m - 1 - u);
    std::sort(y.after.begin(), y.after.end());
    std::sort(y.after_sent.begin(), y.after_sent.end());
    r.transfers.push_back(std::move(y));
  }
  return r;
}

}  // namespace moesim::sim
