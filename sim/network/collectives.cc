#include "sim/network/collectives.h"

#include <algorithm>
#include <cmath>

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
    {CollectiveAlgo::kNvlsTree, "nvlstree"},
};

void Direct(Schedule& s, const std::vector<std::vector<uint64_t>>& bytes) {
  for (uint32_t i = 0; i < s.ranks; ++i) {
    for (uint32_t j = 0; j < s.ranks; ++j) {
      if (i != j && bytes[i][j] > 0) s.Add(i, j, bytes[i][j], 0);
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
      previous[i] = s.Add(i, j, bytes[i][j], k - 1, std::move(after));
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
        now[p] = s.Add(order[p], order[(p + 1) % n], part, step, std::move(after));
      }
      last = std::move(now);
    }
  }
}

// A binary tree over 0..n-1 as a heap (parent of i: (i - 1) / 2): each member's depth, the
// tree's height, and the members but the root deepest first (children before their parent, for
// the legs up) and shallowest first (parents before their children, for the legs down), each
// depth in index order. Tree() builds it over ranks, NvlsTree() over nodes.
struct HeapTree {
  std::vector<uint32_t> depth;
  uint32_t height = 0;
  std::vector<uint32_t> up_order, down_order;

  explicit HeapTree(uint32_t n) : depth(n, 0) {
    for (uint32_t i = 1; i < n; ++i) {
      depth[i] = depth[(i - 1) / 2] + 1;
      height = std::max(height, depth[i]);
    }
    for (uint32_t i = 1; i < n; ++i) up_order.push_back(i);
    std::stable_sort(up_order.begin(), up_order.end(),
                     [&](uint32_t x, uint32_t y) { return depth[x] > depth[y]; });
    down_order = up_order;
    std::stable_sort(down_order.begin(), down_order.end(),
                     [&](uint32_t x, uint32_t y) { return depth[x] < depth[y]; });
  }
};

// Chunk c of `size` bytes split in `chunks`: size / chunks, one more for the first size % chunks.
uint64_t ChunkBytes(uint64_t size, uint32_t chunks, uint32_t c) {
  return size / chunks + (c < size % chunks ? 1 : 0);
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
  auto chunk = [&](uint32_t c) { return ChunkBytes(s.size, chunks, c); };
  const HeapTree tree(n);
  const uint32_t height = tree.height;
  auto depth = [&](uint32_t i) { return tree.depth[i]; };
  // up[c][i]: chunk c from i to its parent; down[c][i]: chunk c from the parent to i.
  std::vector<std::vector<uint32_t>> up(chunks, std::vector<uint32_t>(n)), down = up;
  for (uint32_t c = 0; c < chunks; ++c) {
    // Deepest ranks first, so children's transfers exist before their parent's.
    for (uint32_t i : tree.up_order) {
      std::vector<uint32_t> after;
      for (uint32_t child : {2 * i + 1, 2 * i + 2}) {
        if (child < n) after.push_back(up[c][child]);
      }
      if (c > 0) after.push_back(up[c - 1][i]);
      up[c][i] = s.Add(i, (i - 1) / 2, chunk(c), c + height - depth(i), std::move(after));
    }
    for (uint32_t i : tree.down_order) {
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
      down[c][i] = s.Add(parent, i, chunk(c), c + height + depth(i), std::move(after));
    }
  }
}

// NCCL's NVLS_TREE (collectives.h): chunk c of the buffer is reduced in each node by its NVSwitch,
// then GPU l of each node sends its 1/G of the chunk up a binary tree over the nodes (parent of
// node a: (a - 1) / 2, GPU l to GPU l) and the root's GPU l broadcasts the result down. A GPU's
// tree leg waits for the chunk's in-node transfers into it, its children's legs and its own leg
// of the chunk before, and a pair's in-node transfer waits for its transfer of the chunk before.
// Later chunks stream behind the first (Transfer::streamed: no step latency of their own), so the
// latency is the first chunk's chain, one NVLink hop and 2 x depth network hops: NCCL's latency
// for NVLS_TREE, intraLat + 2 log2(nodes) interLat.
// The in-node all-gather of the result is folded into the chunk's NVLS load (S (G+1)/G each way,
// both halves), so only the last chunk's share of it is left out of the chain: 1/32 of it.
constexpr uint64_t kNvlsTreeChunks = 32;

void NvlsTree(Schedule& s, uint32_t g, double nvls_efficiency) {
  const uint32_t nodes = s.ranks / g;
  const uint32_t chunks = static_cast<uint32_t>(std::clamp<uint64_t>(s.size, 1, kNvlsTreeChunks));
  auto chunk = [&](uint32_t c) { return ChunkBytes(s.size, chunks, c); };
  // Nodes deepest first (children's legs exist before their parent's), and shallowest first.
  const HeapTree tree(nodes);
  const uint32_t height = tree.height;
  auto depth = [&](uint32_t a) { return tree.depth[a]; };
  const std::vector<uint32_t>& up_order = tree.up_order;
  const std::vector<uint32_t>& down_order = tree.down_order;
  constexpr uint32_t kNone = UINT32_MAX;
  // Per GPU (node a, local l: rank a g + l): its legs of the previous chunk.
  std::vector<uint32_t> up_before(s.ranks, kNone), down_before(s.ranks, kNone);
  // Per pair in a node (GPU a g + i to a g + j at (a g + i) g + j): its transfer of the chunk
  // before.
  std::vector<uint32_t> pair_before(size_t{s.ranks} * g, kNone);
  for (uint32_t c = 0; c < chunks; ++c) {
    const uint64_t bytes = chunk(c);
    // The NVLS load of the chunk on each GPU's switch link, spread over the node's pairs as nvls
    // spreads it, at the share of NVLink the switch reaches.
    const uint64_t pair =
        static_cast<uint64_t>(std::ceil(static_cast<double>(bytes) * (g + 1) /
                                        (static_cast<double>(g) * (g - 1)) / nvls_efficiency));
    std::vector<std::vector<uint32_t>> into(s.ranks);
    for (uint32_t a = 0; a < nodes; ++a) {
      for (uint32_t i = 0; i < g; ++i) {
        for (uint32_t j = 0; j < g; ++j) {
          if (i == j) continue;
          uint32_t& before = pair_before[(a * g + i) * g + j];
          const uint32_t t = s.Add(a * g + i, a * g + j, pair, c,
                                   before == kNone ? std::vector<uint32_t>{} : std::vector{before});
          s.transfers[t].streamed = before != kNone;
          into[a * g + j].push_back(t);
          before = t;
        }
      }
    }
    std::vector<uint32_t> up(s.ranks, kNone), down(s.ranks, kNone);
    for (uint32_t l = 0; l < g; ++l) {
      const uint64_t shard = bytes / g + (l < bytes % g ? 1 : 0);
      auto leg_after = [&](uint32_t a, std::vector<uint32_t> after,
                           const std::vector<uint32_t>& before) {
        if (before[a * g + l] != kNone) after.push_back(before[a * g + l]);
        return after;
      };
      // The reduced children of node a's GPU l: its in-node reduction and its children's legs.
      auto reduced = [&](uint32_t a) {
        std::vector<uint32_t> after = into[a * g + l];
        for (uint32_t child : {2 * a + 1, 2 * a + 2}) {
          if (child < nodes) after.push_back(up[child * g + l]);
        }
        return after;
      };
      for (uint32_t a : up_order) {
        const uint32_t parent = (a - 1) / 2;
        up[a * g + l] = s.Add(a * g + l, parent * g + l, shard, c + 1 + height - depth(a),
                              leg_after(a, reduced(a), up_before));
        s.transfers[up[a * g + l]].streamed = c > 0;
      }
      for (uint32_t a : down_order) {
        const uint32_t parent = (a - 1) / 2;
        std::vector<uint32_t> after =
            parent == 0 ? reduced(0) : std::vector<uint32_t>{down[parent * g + l]};
        down[a * g + l] = s.Add(parent * g + l, a * g + l, shard, c + 1 + height + depth(a),
                                leg_after(a, std::move(after), down_before));
        s.transfers[down[a * g + l]].streamed = c > 0;
      }
    }
    up_before = std::move(up);
    down_before = std::move(down);
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

uint64_t NcclTestsSize(CollectiveOp op, uint32_t ranks, uint64_t requested) {
  constexpr uint64_t kTypeSize = 4;  // float, nccl-tests' default
  const uint64_t unit = op == CollectiveOp::kAllReduce || op == CollectiveOp::kSendRecv
                            ? kTypeSize
                            : kTypeSize * ranks;
  return std::max(unit, requested / unit * unit);
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
                                   uint64_t size, uint32_t gpus_per_node, uint32_t ring_channels,
                                   double nvls_efficiency) {
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
      } else if (algo == CollectiveAlgo::kPairwise) {
        Pairwise(s, bytes);
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
      } else if (algo == CollectiveAlgo::kTree) {
        Tree(s);
      } else if (algo == CollectiveAlgo::kNvlsTree) {
        if (gpus_per_node < 2 || ranks % gpus_per_node != 0 || ranks / gpus_per_node < 2) {
          return InputError({}, "--gpus", std::to_string(ranks),
                            "nvlstree needs 2 or more whole nodes of 2 or more GPUs",
                            "a multiple of " + std::to_string(gpus_per_node) + ", at least " +
                                std::to_string(2 * gpus_per_node) + "; one node: --algo nvls");
        }
        if (!(nvls_efficiency > 0 && nvls_efficiency <= 1)) {
          return InputError({}, "nvls_efficiency", std::to_string(nvls_efficiency),
                            "these GPUs have no NVLink SHARP", "in (0, 1]: Hopper or newer");
        }
        NvlsTree(s, gpus_per_node, nvls_efficiency);
      } else if (algo == CollectiveAlgo::kNvls) {
        // One step: every pair exchanges S (n+1) / (n (n-1)) (see the header); one latency hop.
        const uint64_t pair = size * (ranks + 1) / (uint64_t{ranks} * (ranks - 1));
        for (uint32_t i = 0; i < ranks; ++i) {
          for (uint32_t j = 0; j < ranks; ++j) {
            if (i != j) s.Add(i, j, pair, 0);
          }
        }
      } else {
        return Unsupported(op, algo);
      }
      break;
    case CollectiveOp::kAllGather:
    case CollectiveOp::kReduceScatter:
      if (algo != CollectiveAlgo::kRing) return Unsupported(op, algo);
      Ring(s, ranks - 1, chunk, ring_channels);
      break;
    case CollectiveOp::kSendRecv:
      if (algo != CollectiveAlgo::kDirect) return Unsupported(op, algo);
      for (uint32_t i = 0; i < ranks; ++i) s.Add(i, (i + 1) % ranks, size, 0);
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
  } else if (algo == CollectiveAlgo::kPairwise) {
    Pairwise(s, b);
  } else {
    return Unsupported(CollectiveOp::kAllToAll, algo);
  }
  return s;
}

}  // namespace moesim::sim
