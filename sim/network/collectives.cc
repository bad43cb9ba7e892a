#include "sim/network/collectives.h"

#include <algorithm>

#include "sim/network/alltoall_hierarchical.h"

namespace moesim::sim {
namespace {

constexpr std::pair<CollectiveOp, std::string_view> kOps[] = {
    {CollectiveOp::kAllToAll, "alltoall"},   {CollectiveOp::kAllReduce, "allreduce"},
    {CollectiveOp::kAllGather, "allgather"}, {CollectiveOp::kReduceScatter, "reducescatter"},
    {CollectiveOp::kSendRecv, "sendrecv"},
};
constexpr std::pair<CollectiveAlgo, std::string_view> kAlgos[] = {
    {CollectiveAlgo::kDirect, "direct"},
    {CollectiveAlgo::kPairwise, "pairwise"},
    {CollectiveAlgo::kHierarchical, "hierarchical"},
    {CollectiveAlgo::kRing, "ring"},
    {CollectiveAlgo::kTree, "tree"},
    {CollectiveAlgo::kNvls, "nvls"},
};

// Appends a transfer and returns its index.
uint32_t Add(Schedule& s, uint32_t src, uint32_t dst, uint64_t bytes, uint32_t step,
             std::vector<uint32_t> after = {}) {
  s.transfers.push_back({src, dst, bytes, step, std::move(after), {}});
  s.steps = std::max(s.steps, step + 1);
  return static_cast<uint32_t>(s.transfers.size() - 1);
}

void Direct(Schedule& s, const std::vector<std::vector<uint64_t>>& bytes) {
  for (uint32_t i = 0; i < s.ranks; ++i) {
    for (uint32_t j = 0; j < s.ranks; ++j) {
      if (i != j && bytes[i][j] > 0) Add(s, i, j, bytes[i][j], 0);
    }
  }
}

// Round k = 1 .. n-1: rank i sends to i + k, after its send of round k - 1.
void Pairwise(Schedule& s, const std::vector<std::vector<uint64_t>>& bytes) {
  std::vector<std::optional<uint32_t>> previous(s.ranks);
  for (uint32_t k = 1; k < s.ranks; ++k) {
    for (uint32_t i = 0; i < s.ranks; ++i) {
      const uint32_t j = (i + k) % s.ranks;
      if (bytes[i][j] == 0) continue;
      std::vector<uint32_t> after;
      if (previous[i]) after.push_back(*previous[i]);
      previous[i] = Add(s, i, j, bytes[i][j], k - 1, std::move(after));
    }
  }
}

// Ring: `steps` rounds of `chunk` bytes around the ring; a round's send waits for the chunk
// received in the previous round and for the rank's own previous send. With channels > 1 (NCCL's
// channels across nodes, see BuildCollective), the chunk is split over that many rings, channel c
// visiting each node's ranks rotated by c (RingOrder); channel 0 takes the remainder.
void Ring(Schedule& s, uint32_t steps, uint64_t chunk, uint32_t channels) {
  const uint32_t n = s.ranks;
  for (uint32_t c = 0; c < channels; ++c) {
    const std::vector<uint32_t> order = RingOrder(n, channels, c);
    const uint64_t part = chunk / channels + (c == 0 ? chunk % channels : 0);
    std::vector<uint32_t> last(n);
    for (uint32_t step = 0; step < steps; ++step) {
      std::vector<uint32_t> now(n);
      for (uint32_t p = 0; p < n; ++p) {
        std::vector<uint32_t> after;
        if (step > 0) after = {last[(p + n - 1) % n], last[p]};
        now[p] = Add(s, order[p], order[(p + 1) % n], part, step, std::move(after));
      }
      last = std::move(now);
    }
  }
}

// Binary tree over ranks (parent of i: (i - 1) / 2), the buffer pipelined in up to kTreeChunks
// chunks: each chunk is reduced up to rank 0, then broadcast down. A link carries its chunks in
// order. The chunk count is fixed, not the chunk size (NCCL pipelines in chunks of a fixed size per
// channel, tens of thousands of them for 8 GiB), so a schedule has at most 16 (n - 1) transfers
// whatever the size. Sizes stay 64-bit: a 4 GiB buffer narrowed to 32 bits is 0 bytes, hence 0
// chunks and a division by zero.
constexpr uint64_t kTreeChunks = 8;

void Tree(Schedule& s) {
  const uint32_t n = s.ranks;
  // No empty chunk: a buffer of fewer than 8 bytes goes in one chunk per byte (one if empty).
  const uint32_t chunks = static_cast<uint32_t>(std::clamp<uint64_t>(s.size, 1, kTreeChunks));
  // Chunk c carries size / chunks bytes, one more for the first size % chunks chunks: every link
  // carries exactly the buffer.
  auto chunk = [&](uint32_t c) { return s.size / chunks + (c < s.size % chunks ? 1 : 0); };
  auto depth = [](uint32_t i) {
    uint32_t d = 0;
    for (; i > 0; i = (i - 1) / 2) ++d;
    return d;
  };
  uint32_t height = 0;
  for (uint32_t i = 0; i < n; ++i) height = std::max(height, depth(i));
  // up[c][i]: chunk c from i to its parent; down[c][i]: chunk c from the parent to i.
  std::vector<std::vector<uint32_t>> up(chunks, std::vector<uint32_t>(n)), down = up;
  for (uint32_t c = 0; c < chunks; ++c) {
    // Deepest ranks first, so children's transfers exist before their parent's.
    std::vector<uint32_t> order(n - 1);
    for (uint32_t i = 1; i < n; ++i) order[i - 1] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t x, uint32_t y) { return depth(x) > depth(y); });
    for (uint32_t i : order) {
      std::vector<uint32_t> after;
      for (uint32_t child : {2 * i + 1, 2 * i + 2}) {
        if (child < n) after.push_back(up[c][child]);
      }
      if (c > 0) after.push_back(up[c - 1][i]);
      up[c][i] = Add(s, i, (i - 1) / 2, chunk(c), c + height - depth(i), std::move(after));
    }
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t x, uint32_t y) { return depth(x) < depth(y); });
    for (uint32_t i : order) {
      const uint32_t parent = (i - 1) / 2;
      std::vector<uint32_t> after;
      if (parent == 0) {
        for (uint32_t child : {1u, 2u}) {
          if (child < n) after.push_back(up[c][child]);
        }
      } else {
        after.push_back(down[c][parent]);
      }
      if (c > 0) after.push_back(down[c - 1][i]);
      down[c][i] = Add(s, parent, i, chunk(c), c + height + depth(i), std::move(after));
    }
  }
}

Error Unsupported(CollectiveOp op, CollectiveAlgo algo) {
  std::string valid;
  switch (op) {
    case CollectiveOp::kAllToAll:
      valid = "direct, pairwise, hierarchical";
      break;
    case CollectiveOp::kAllReduce:
      valid = "ring, tree";
      break;
    case CollectiveOp::kAllGather:
    case CollectiveOp::kReduceScatter:
      valid = "ring";
      break;
    case CollectiveOp::kSendRecv:
      valid = "direct";
      break;
  }
  return InputError({}, "--algo", std::string(ToString(algo)),
                    std::string("not an algorithm for ") + std::string(ToString(op)), valid);
}

}  // namespace

std::string_view ToString(CollectiveOp op) {
  for (const auto& [o, name] : kOps) {
    if (o == op) return name;
  }
  return "?";
}

std::string_view ToString(CollectiveAlgo algo) {
  for (const auto& [a, name] : kAlgos) {
    if (a == algo) return name;
  }
  return "?";
}

StatusOr<CollectiveOp> ParseCollectiveOp(std::string_view name) {
  std::vector<std::string> valid;
  for (const auto& [op, n] : kOps) {
    if (n == name) return op;
    valid.emplace_back(n);
  }
  return InputError({}, "--op", std::string(name), "unknown collective", Join(valid));
}

StatusOr<CollectiveAlgo> ParseCollectiveAlgo(std::string_view name) {
  std::vector<std::string> valid;
  for (const auto& [algo, n] : kAlgos) {
    if (n == name) return algo;
    valid.emplace_back(n);
  }
  return InputError({}, "--algo", std::string(name), "unknown algorithm", Join(valid));
}

CollectiveAlgo DefaultAlgo(CollectiveOp op) {
  return op == CollectiveOp::kAllToAll || op == CollectiveOp::kSendRecv ? CollectiveAlgo::kDirect
                                                                        : CollectiveAlgo::kRing;
}

double BusBandwidthFactor(CollectiveOp op, uint32_t ranks) {
  const double n = ranks;
  switch (op) {
    case CollectiveOp::kAllReduce:
      return 2 * (n - 1) / n;
    case CollectiveOp::kSendRecv:
      return 1;
    default:
      return (n - 1) / n;
  }
}

// The latency chains (see Schedule::latency_chain).
void RingChain(Schedule& s, uint32_t hops) {
  for (uint32_t h = 0; h < hops; ++h) s.latency_chain.emplace_back(h % s.ranks, (h + 1) % s.ranks);
}

void TreeChain(Schedule& s) {
  std::vector<std::pair<uint32_t, uint32_t>> up;
  for (uint32_t i = s.ranks - 1; i > 0; i = (i - 1) / 2) up.emplace_back(i, (i - 1) / 2);
  s.latency_chain = up;
  for (auto it = up.rbegin(); it != up.rend(); ++it)
    s.latency_chain.emplace_back(it->second, it->first);
}

std::vector<uint32_t> RingOrder(uint32_t ranks, uint32_t channels, uint32_t channel) {
  std::vector<uint32_t> order(ranks);
  const bool rotate = channels > 1 && ranks % channels == 0;
  for (uint32_t p = 0; p < ranks; ++p) {
    order[p] = rotate ? p / channels * channels + (p % channels + channel) % channels : p;
  }
  return order;
}

StatusOr<Schedule> BuildCollective(CollectiveOp op, CollectiveAlgo algo, uint32_t ranks,
                                   uint64_t size, uint32_t gpus_per_node, uint32_t ring_channels) {
  if (ranks < 2) {
    return InputError({}, "ranks", std::to_string(ranks), "a collective needs at least 2 ranks",
                      ">= 2");
  }
  if (ring_channels == 0 || ranks % ring_channels != 0) ring_channels = 1;
  Schedule s;
  s.op = op;
  s.algo = algo;
  s.ranks = ranks;
  s.size = size;
  const uint64_t chunk = size / ranks;
  switch (op) {
    case CollectiveOp::kAllToAll: {
      const std::vector<std::vector<uint64_t>> bytes(ranks, std::vector<uint64_t>(ranks, chunk));
      if (algo == CollectiveAlgo::kDirect) {
        Direct(s, bytes);
        s.latency_chain = {{0, ranks - 1}};
      } else if (algo == CollectiveAlgo::kPairwise) {
        Pairwise(s, bytes);
        for (uint32_t k = 1; k < ranks; ++k) s.latency_chain.emplace_back(0, k);
      } else if (algo == CollectiveAlgo::kHierarchical) {
        if (gpus_per_node == 0 || ranks % gpus_per_node != 0) {
          return InputError({}, "--gpus", std::to_string(ranks),
                            "hierarchical all-to-all needs whole nodes",
                            "a multiple of " + std::to_string(gpus_per_node));
        }
        // Tutel's 2D: the destination's rail (sim/network/alltoall_hierarchical.h).
        models::TrafficMatrix uniform(ranks);
        for (uint32_t i = 0; i < ranks; ++i) {
          for (uint32_t j = 0; j < ranks; ++j) uniform.at(i, j) = i == j ? 0 : chunk;
        }
        MOESIM_ASSIGN_OR_RETURN(
            Schedule h, BuildHierarchicalAllToAllV(uniform, gpus_per_node, Rail::kDestination));
        h.size = size;
        return h;
      } else {
        return Unsupported(op, algo);
      }
      break;
    }
    case CollectiveOp::kAllReduce:
      if (algo == CollectiveAlgo::kRing) {
        Ring(s, 2 * (ranks - 1), chunk, ring_channels);
        RingChain(s, 2 * (ranks - 1));
      } else if (algo == CollectiveAlgo::kTree) {
        Tree(s);
        TreeChain(s);
      } else if (algo == CollectiveAlgo::kNvls) {
        // One step: every pair exchanges S (n+1) / (n (n-1)) (see the header); one latency hop.
        const uint64_t pair = size * (ranks + 1) / (uint64_t{ranks} * (ranks - 1));
        for (uint32_t i = 0; i < ranks; ++i) {
          for (uint32_t j = 0; j < ranks; ++j) {
            if (i != j) Add(s, i, j, pair, 0);
          }
        }
        s.latency_chain = {{0, 1}};
      } else {
        return Unsupported(op, algo);
      }
      break;
    case CollectiveOp::kAllGather:
    case CollectiveOp::kReduceScatter:
      if (algo != CollectiveAlgo::kRing) return Unsupported(op, algo);
      Ring(s, ranks - 1, chunk, ring_channels);
      RingChain(s, ranks - 1);
      break;
    case CollectiveOp::kSendRecv:
      if (algo != CollectiveAlgo::kDirect) return Unsupported(op, algo);
      for (uint32_t i = 0; i < ranks; ++i) Add(s, i, (i + 1) % ranks, size, 0);
      s.latency_chain = {{ranks - 1, 0}};
      break;
  }
  return s;
}

StatusOr<Schedule> BuildAllToAllV(const models::TrafficMatrix& bytes, CollectiveAlgo algo,
                                  uint32_t gpus_per_node, const models::TrafficMatrix& node_bytes) {
  if (algo == CollectiveAlgo::kHierarchical)
    return BuildHierarchicalAllToAllV(bytes, gpus_per_node, Rail::kSource, node_bytes);
  const uint32_t n = bytes.ranks();
  std::vector<std::vector<uint64_t>> b(n, std::vector<uint64_t>(n));
  Schedule s;
  s.op = CollectiveOp::kAllToAll;
  s.algo = algo;
  s.ranks = n;
  uint64_t largest_row = 0;
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t row = 0;
    for (uint32_t j = 0; j < n; ++j) row += b[i][j] = bytes.at(i, j);
    largest_row = std::max(largest_row, row);
  }
  s.size = largest_row;
  if (algo == CollectiveAlgo::kDirect) {
    Direct(s, b);
    s.latency_chain = {{0, n - 1}};
  } else if (algo == CollectiveAlgo::kPairwise) {
    Pairwise(s, b);
    for (uint32_t k = 1; k < n; ++k) s.latency_chain.emplace_back(0, k);
  } else {
    return Unsupported(CollectiveOp::kAllToAll, algo);
  }
  return s;
}

}  // namespace moesim::sim
