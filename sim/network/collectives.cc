#include "sim/network/collectives.h"

#include <algorithm>
#include <cmath>

#include "sim/network/alltoall_hierarchical.h"
#include "sim/network/nccl_model.h"

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
    {CollectiveAlgo::kCollNet, "collnet"},
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
// received in the previous round to arrive (`after`: the step latency of its hop) and for the
// rank's own previous send to have left, plus an intra-node step latency (`after_sent`, `paced`).
// So every step costs its rank an intra-node step latency, which the bytes do not hide, and a
// network step latency is paid where a chunk crosses nodes, not at every step of the rank whose
// hop crosses them: NCCL's tuner's form, (nsteps - nInterSteps) x intraLat + nInterSteps x
// interLat + bytes / bandwidth (tuning.cc; an all-reduce of 2 (n - 1) steps on N nodes crosses
// them about 2 N times, NCCL counts 2 (N - 1)). With channels > 1 (NCCL's channels across nodes,
// see BuildCollective), the chunk is split over that many rings, channel c visiting each node's
// ranks rotated by c (RingOrder); channel 0 takes the remainder.
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
        if (step > 0) after = {last[(p + n - 1) % n]};
        now[p] = s.Add(order[p], order[(p + 1) % n], part, step, std::move(after));
        if (step > 0) {
          s.transfers[now[p]].after_sent = {last[p]};
          s.transfers[now[p]].paced = true;
        }
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

// NCCL's tree all-reduce (src/graph/trees.cc, connect.cc, ncclTopoPreset) in `channels` channels,
// channel c carrying ChunkBytes(size, channels, c) of the buffer, pipelined in chunks:
//   in a node     a chain over the node's ranks, channel c's rotated by c (as RingOrder rotates
//                 the ring), so each GPU heads one channel; a chunk is reduced from the chain's
//                 tail to its head and broadcast back from the head to the tail;
//   across nodes  the heads, over their own NICs, reduce up a binary tree over the nodes (parent
//                 of node a: (a - 1) / 2) and broadcast back down. Odd channels run its mirror
//                 (node a in node N-1-a's place): NCCL's double binary tree, where a node inner
//                 in one tree is a leaf in the other, so a node's NICs carry about the buffer
//                 each way.
// The head does both network legs (NCCL's TREE pattern; its BALANCED_TREE pattern hands the
// children's legs to the chain's second GPU: the same NIC load over a node's channels).
// A chunk's transfer waits for what it reduces or forwards and for the same hop's chunk before;
// later chunks stream behind the first (no step latency of their own), so the latency is the
// first chunk's path, D = 2 (G - 1 + height) hops: NCCL's tree latency,
// 2 ((G-1) intraLat + log2(nodes) interLat).
// Nodes hold `per_node` consecutive ranks (the last one the rest); 0 or more than the ranks: one
// node.
//
// Chunks, as NCCL sizes a tree's (enqueue.cc, Simple): 512 KiB, halved while the channel has
// fewer than 8 D chunks and they are over 128 KiB, then fewer than 4 D and over 64 KiB, then
// fewer than D and over 32 KiB; so a small buffer crosses in one chunk and pays its path's fill.
// At most 16 D chunks a channel (NCCL has more for large buffers; the fill is then under 1/16 of
// the bandwidth time either way) and 2^18 transfers in all (a 512-GPU tree: 32 chunks a channel,
// the fill (D-1)/32 of it). Sizes stay 64-bit: a 4 GiB buffer narrowed to 32 bits once made 0
// chunks and a division by zero.
constexpr uint64_t kTreeChunksPerHop = 16;
constexpr uint64_t kTreeMaxTransfers = uint64_t{1} << 18;

// NCCL's chunk count for `part` bytes on a path of `depth` hops (above), at least 1.
uint64_t NcclTreeChunks(uint64_t part, uint64_t depth) {
  uint64_t chunk = 512 << 10;
  auto count = [&] { return (part + chunk - 1) / chunk; };
  while (count() < 8 * depth && chunk > (128 << 10)) chunk /= 2;
  while (count() < 4 * depth && chunk > (64 << 10)) chunk /= 2;
  while (count() < depth && chunk > (32 << 10)) chunk /= 2;
  return std::max<uint64_t>(1, count());
}

void Tree(Schedule& s, uint32_t per_node, uint32_t channels) {
  const uint32_t n = s.ranks;
  if (per_node == 0 || per_node > n) per_node = n;
  const uint32_t nodes = (n + per_node - 1) / per_node;
  auto size_of = [&](uint32_t a) { return std::min(per_node, n - a * per_node); };
  // No empty channel: a buffer of fewer bytes than channels uses one channel a byte.
  channels = static_cast<uint32_t>(std::clamp<uint64_t>(s.size, 1, std::max(channels, 1u)));
  const HeapTree tree(nodes);
  const uint64_t depth = 2 * (uint64_t{per_node} - 1 + tree.height);
  const uint64_t max_chunks = std::clamp<uint64_t>(
      kTreeMaxTransfers / (uint64_t{channels} * 2 * (n - 1)), 1, kTreeChunksPerHop * depth);
  constexpr uint32_t kNone = UINT32_MAX;
  // Appends a transfer after `after` (kNone entries left out) and after `before`, the same hop's
  // chunk before, streamed behind it; its step is one past the latest step it waits for.
  auto add = [&](uint32_t src, uint32_t dst, uint64_t bytes, std::vector<uint32_t> after,
                 uint32_t before) {
    std::erase(after, kNone);
    if (before != kNone) after.push_back(before);
    uint32_t step = 0;
    for (uint32_t t : after) step = std::max(step, s.transfers[t].step + 1);
    const uint32_t t = s.Add(src, dst, bytes, step, std::move(after));
    s.transfers[t].streamed = before != kNone;
    return t;
  };
  for (uint32_t c = 0; c < channels; ++c) {
    const uint64_t part = ChunkBytes(s.size, channels, c);
    const uint32_t chunks =
        static_cast<uint32_t>(std::min(NcclTreeChunks(part, depth), max_chunks));
    // The node at tree place p (the mirror is its own inverse: also a node's place).
    auto node_at = [&](uint32_t p) { return c % 2 == 0 ? p : nodes - 1 - p; };
    // Node a's rank at chain position i; position 0 is the head.
    auto chain = [&](uint32_t a, uint32_t i) { return a * per_node + (i + c) % size_of(a); };
    // Per rank, this chunk's and the chunk before's transfers: up[r] the one r sends towards
    // the root (along its chain, or from a head to the parent node's head), down[r] the one r
    // receives from it.
    std::vector<uint32_t> up(n, kNone), down(n, kNone), up_before(n, kNone), down_before(n, kNone);
    for (uint32_t k = 0; k < chunks; ++k) {
      const uint64_t bytes = ChunkBytes(part, chunks, k);
      // What node a's head holds once the chunk is reduced below it: its chain's and its child
      // nodes' partial sums.
      auto reduced = [&](uint32_t p) {
        const uint32_t a = node_at(p);
        std::vector<uint32_t> after = {size_of(a) > 1 ? up[chain(a, 1)] : kNone};
        for (uint32_t child : {2 * p + 1, 2 * p + 2}) {
          if (child < nodes) after.push_back(up[chain(node_at(child), 0)]);
        }
        return after;
      };
      // Reduce: places deepest first (children before parents), the root last; each chain from
      // its tail to its head, then the head to the parent's head.
      std::vector<uint32_t> places = tree.up_order;
      places.push_back(0);
      for (uint32_t p : places) {
        const uint32_t a = node_at(p);
        for (uint32_t i = size_of(a) - 1; i >= 1; --i) {
          const uint32_t r = chain(a, i);
          const uint32_t below = i + 1 < size_of(a) ? up[chain(a, i + 1)] : kNone;
          up[r] = add(r, chain(a, i - 1), bytes, {below}, up_before[r]);
        }
        if (p == 0) continue;
        const uint32_t head = chain(a, 0);
        up[head] = add(head, chain(node_at((p - 1) / 2), 0), bytes, reduced(p), up_before[head]);
      }
      // Broadcast: from the root's head once it holds the whole chunk, places shallowest first;
      // each head down its node's chain.
      const std::vector<uint32_t> at_root = reduced(0);
      auto down_chain = [&](uint32_t a, const std::vector<uint32_t>& head_has) {
        for (uint32_t i = 1; i < size_of(a); ++i) {
          const uint32_t r = chain(a, i);
          down[r] =
              add(chain(a, i - 1), r, bytes,
                  i == 1 ? head_has : std::vector<uint32_t>{down[chain(a, i - 1)]}, down_before[r]);
        }
      };
      down_chain(node_at(0), at_root);
      for (uint32_t p : tree.down_order) {
        const uint32_t a = node_at(p), head = chain(a, 0), parent = (p - 1) / 2;
        const std::vector<uint32_t> parent_has =
            parent == 0 ? at_root : std::vector<uint32_t>{down[chain(node_at(parent), 0)]};
        down[head] = add(chain(node_at(parent), 0), head, bytes, parent_has, down_before[head]);
        down_chain(a, {down[head]});
      }
      up_before = up;
      down_before = down;
    }
  }
}

// One chunk of `bytes` reduced in every node of `g` GPUs by its NVSwitch: the NVLS load,
// bytes (g + 1) / g each way on each GPU's switch link at the share of NVLink the switch reaches,
// listed as GPU i sending it all to GPU i + 1 of its node (the last to the first): through the
// NVSwitch that loads every GPU's link in both directions as nvls's pairs do (collectives.h),
// with g transfers a node instead of g (g - 1). Each GPU's transfer waits for its transfer of the
// chunk before (`before`, per GPU, UINT32_MAX for none) and streams behind it. Returns, per GPU,
// the transfer into it.
std::vector<uint32_t> AddNvlsChunk(Schedule& s, uint32_t g, uint64_t bytes, double nvls_efficiency,
                                   uint32_t step, std::vector<uint32_t>& before) {
  constexpr uint32_t kNone = UINT32_MAX;
  const uint64_t load = static_cast<uint64_t>(
      std::ceil(static_cast<double>(bytes) * (g + 1) / static_cast<double>(g) / nvls_efficiency));
  std::vector<uint32_t> into(s.ranks, kNone);
  for (uint32_t a = 0; a < s.ranks / g; ++a) {
    for (uint32_t i = 0; i < g; ++i) {
      const uint32_t src = a * g + i, dst = a * g + (i + 1) % g;
      const uint32_t t =
          s.Add(src, dst, load, step,
                before[src] == kNone ? std::vector<uint32_t>{} : std::vector{before[src]});
      s.transfers[t].streamed = before[src] != kNone;
      into[dst] = t;
      before[src] = t;
    }
  }
  return into;
}

// NCCL's NVLS_TREE (collectives.h): chunk c of the buffer is reduced in each node by its NVSwitch,
// then GPU l of each node sends its 1/G of the chunk up a binary tree over the nodes (parent of
// node a: (a - 1) / 2, GPU l to GPU l) and the root's GPU l broadcasts the result down. A GPU's
// tree leg waits for the chunk's in-node transfers into it, its children's legs and its own leg
// of the chunk before, and a GPU's in-node transfer waits for its transfer of the chunk before
// (AddNvlsChunk). Later chunks stream behind the first (Transfer::streamed: no step latency of
// their own), so the latency is the first chunk's chain, one NVLink hop and 2 x depth network hops:
// NCCL's latency for NVLS_TREE, intraLat + 2 log2(nodes) interLat. The chunks are NCCL's loops:
// each moves `channels` x G x NCCL's chunk for the size (NcclNvlsTreeChunk), so a buffer of a few
// loops pays its pipeline's fill as NCCL's kernel does, up to 32 of them: past that the fill
// (stages / chunks of the bytes' time) is under 1/10 either way, and a large buffer stays a few
// thousand transfers. The in-node all-gather of the result is folded into the chunk's NVLS load (S
// (G+1)/G each way, both halves), so only the last chunk's share of it is left out of the chain.
constexpr uint64_t kMaxPipelineChunks = 32;

void NvlsTree(Schedule& s, uint32_t g, double nvls_efficiency, uint32_t channels) {
  const uint32_t nodes = s.ranks / g;
  const uint64_t ops = uint64_t{channels} * g;
  const uint64_t loop = ops * NcclNvlsTreeChunk(s.size, ops, nodes);
  const uint32_t chunks = static_cast<uint32_t>(
      std::clamp<uint64_t>((s.size + loop - 1) / loop, 1, kMaxPipelineChunks));
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
  // Per GPU: its in-node transfer of the chunk before.
  std::vector<uint32_t> nvls_before(s.ranks, kNone);
  for (uint32_t c = 0; c < chunks; ++c) {
    const uint64_t bytes = chunk(c);
    const std::vector<uint32_t> into = AddNvlsChunk(s, g, bytes, nvls_efficiency, c, nvls_before);
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
        std::vector<uint32_t> after = {into[a * g + l]};
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

// The network's share of one chunk of `bytes` where the switches reduce (SHARP): GPU l of every
// node sends its shard, the l-th 1/g, into the network and gets the job's sum of it back through
// the same NIC. The reduction is no transfer between GPUs; what it costs the links is each NIC
// carrying the shard once each way, so it is listed as GPU l of node a sending the shard to GPU l
// of node a + 1 (the last to the first), which loads every NIC exactly so. GPU r's leg waits for
// `after(r)` and for its leg of the chunk before (`leg_before`, UINT32_MAX for none), behind which
// it streams. Returns, per GPU, the leg into it.
template <typename After>
std::vector<uint32_t> AddSharpLegs(Schedule& s, uint32_t g, uint64_t bytes, uint32_t step,
                                   After after, std::vector<uint32_t>& leg_before) {
  constexpr uint32_t kNone = UINT32_MAX;
  const uint32_t nodes = s.ranks / g;
  std::vector<uint32_t> arrived(s.ranks, kNone);
  for (uint32_t a = 0; a < nodes; ++a) {
    for (uint32_t l = 0; l < g; ++l) {
      const uint32_t src = a * g + l, dst = (a + 1) % nodes * g + l;
      std::vector<uint32_t> waits = after(src);
      if (leg_before[src] != kNone) waits.push_back(leg_before[src]);
      const uint64_t shard = bytes / g + (l < bytes % g ? 1 : 0);
      const uint32_t t = s.Add(src, dst, shard, step, std::move(waits));
      s.transfers[t].streamed = leg_before[src] != kNone;
      leg_before[src] = arrived[dst] = t;
    }
  }
  return arrived;
}

// NCCL's CollNet Direct (collectives.h): chunk c of the buffer is split into G shards, one per
// GPU of a node (NCCL's heads, one per NIC); every GPU sends shard l of its chunk to GPU l of its
// node (the reduce-scatter into the heads), GPU l sends the node's reduced shard into the network
// and gets the whole job's back from it, and sends that to the node's other GPUs (the
// broadcast). The network legs are AddSharpLegs'; node b's broadcast waits for the leg into it.
// Each pair's transfer of a chunk waits for its transfer of the chunk before; later chunks stream
// behind the first (no step latency of their own), so the latency is the first chunk's chain, an
// in-node hop, a network hop and an in-node hop: NCCL's latency for CollNet Direct (nccl_model.h).
// Chunks of G x 512 KiB (NCCL's Simple step per head), at most 32, as nvlstree's: past that the
// fill is under 1/10.
constexpr uint64_t kCollNetHeadChunk = 512 * 1024;

void CollNet(Schedule& s, uint32_t g) {
  const uint32_t nodes = s.ranks / g;
  const uint32_t chunks = static_cast<uint32_t>(std::clamp<uint64_t>(
      (s.size + g * kCollNetHeadChunk - 1) / (g * kCollNetHeadChunk), 1, kMaxPipelineChunks));
  constexpr uint32_t kNone = UINT32_MAX;
  // Per pair in a node (GPU a g + i to a g + j at (a g + i) g + j): its scatter and broadcast
  // transfers of the chunk before; per GPU its network leg of the chunk before.
  std::vector<uint32_t> scatter_before(size_t{s.ranks} * g, kNone),
      broadcast_before(size_t{s.ranks} * g, kNone), leg_before(s.ranks, kNone);
  auto add = [&](uint32_t src, uint32_t dst, uint64_t bytes, uint32_t step,
                 std::vector<uint32_t> after, uint32_t& before) {
    if (before != kNone) after.push_back(before);
    const uint32_t t = s.Add(src, dst, bytes, step, std::move(after));
    s.transfers[t].streamed = before != kNone;
    before = t;
    return t;
  };
  for (uint32_t c = 0; c < chunks; ++c) {
    const uint64_t bytes = ChunkBytes(s.size, chunks, c);
    auto shard = [&](uint32_t l) { return bytes / g + (l < bytes % g ? 1 : 0); };
    std::vector<std::vector<uint32_t>> into(s.ranks);
    for (uint32_t a = 0; a < nodes; ++a) {
      for (uint32_t i = 0; i < g; ++i) {
        for (uint32_t j = 0; j < g; ++j) {
          if (i == j) continue;
          const uint32_t src = a * g + i, dst = a * g + j;
          into[dst].push_back(
              add(src, dst, shard(j), 3 * c, {}, scatter_before[size_t{src} * g + j]));
        }
      }
    }
    const std::vector<uint32_t> arrived = AddSharpLegs(
        s, g, bytes, 3 * c + 1, [&](uint32_t r) { return into[r]; }, leg_before);
    for (uint32_t a = 0; a < nodes; ++a) {
      for (uint32_t l = 0; l < g; ++l) {
        for (uint32_t j = 0; j < g; ++j) {
          if (j == l) continue;
          const uint32_t src = a * g + l, dst = a * g + j;
          add(src, dst, shard(l), 3 * c + 2, {arrived[src]}, broadcast_before[size_t{src} * g + j]);
        }
      }
    }
  }
}

// NCCL's NVLS across nodes (its NVLS algorithm with nNodes > 1, which it runs only with CollNet:
// the network's switches reduce, cluster.fabric.sharp): chunk c is reduced in each node by its
// NVSwitch (the NVLS load, / nvls_efficiency, listed as nvlstree lists it), GPU l of each node
// sends the node's l-th 1/G of the chunk into the network and gets the job's sum of it back through
// its own NIC (listed as GPU l of node a sending to GPU l of node a + 1, as collnet's legs), and
// the NVSwitch multicasts it back (folded into the chunk's NVLS load, as nvlstree's). A leg waits
// for its chunk's in-node transfers into its GPU and its leg of the chunk before. The chunks are
// NCCL's NVLS loops (`channels` x G x NcclNvlsChunk), at most 32; later ones stream behind the
// first, so the latency is one NVLS hop and one network hop: NCCL's intraLat + interLat.
void NvlsAcrossNodes(Schedule& s, uint32_t g, double nvls_efficiency, uint32_t channels) {
  const uint64_t ops = uint64_t{channels} * g;
  const uint64_t loop = ops * NcclNvlsChunk(s.size, ops);
  const uint32_t chunks = static_cast<uint32_t>(
      std::clamp<uint64_t>((s.size + loop - 1) / loop, 1, kMaxPipelineChunks));
  constexpr uint32_t kNone = UINT32_MAX;
  std::vector<uint32_t> nvls_before(s.ranks, kNone), leg_before(s.ranks, kNone);
  for (uint32_t c = 0; c < chunks; ++c) {
    const uint64_t bytes = ChunkBytes(s.size, chunks, c);
    const std::vector<uint32_t> into =
        AddNvlsChunk(s, g, bytes, nvls_efficiency, 2 * c, nvls_before);
    AddSharpLegs(
        s, g, bytes, 2 * c + 1, [&](uint32_t r) { return std::vector<uint32_t>{into[r]}; },
        leg_before);
  }
}

// Which algorithms implement which op (collectives.h's table), in kAlgos' order.
bool Implements(CollectiveOp op, CollectiveAlgo algo) {
  using A = CollectiveAlgo;
  switch (op) {
    case CollectiveOp::kAllToAll:
      return algo == A::kDirect || algo == A::kPairwise || algo == A::kHierarchical;
    case CollectiveOp::kAllReduce:
      return algo == A::kRing || algo == A::kTree || algo == A::kNvls || algo == A::kNvlsTree ||
             algo == A::kCollNet;
    case CollectiveOp::kAllGather:
    case CollectiveOp::kReduceScatter:
      return algo == A::kRing || algo == A::kNvls;
    case CollectiveOp::kSendRecv:
      return algo == A::kDirect;
  }
  return false;
}

Error Unsupported(CollectiveOp op, CollectiveAlgo algo) {
  std::vector<std::string> valid;
  for (const auto& [a, name] : kAlgos) {
    if (Implements(op, a)) valid.emplace_back(name);
  }
  return InputError({}, "--algo", std::string(ToString(algo)),
                    std::string("not an algorithm for ") + std::string(ToString(op)), Join(valid));
}

}  // namespace

Status CheckAlgorithm(CollectiveOp op, CollectiveAlgo algo) {
  if (Implements(op, algo)) return Status::Ok();
  return Unsupported(op, algo);
}

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
                                   double nvls_efficiency, uint32_t nvls_channels) {
  MOESIM_RETURN_IF_ERROR(CheckAlgorithm(op, algo));
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
        Tree(s, gpus_per_node, ring_channels);
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
        NvlsTree(s, gpus_per_node, nvls_efficiency, std::max<uint32_t>(nvls_channels, 1));
      } else if (algo == CollectiveAlgo::kCollNet) {
        if (gpus_per_node < 1 || ranks % gpus_per_node != 0 || ranks / gpus_per_node < 2) {
          return InputError({}, "--gpus", std::to_string(ranks),
                            "collnet needs 2 or more nodes, as many GPUs on each",
                            "a multiple of " + std::to_string(std::max(gpus_per_node, 1u)) +
                                ", at least " + std::to_string(2 * std::max(gpus_per_node, 1u)));
        }
        CollNet(s, gpus_per_node);
      } else if (algo == CollectiveAlgo::kNvls && gpus_per_node >= 2 && ranks > gpus_per_node &&
                 ranks % gpus_per_node == 0) {
        // Across nodes: the caller checked that the switches reduce (CheckNvls).
        if (!(nvls_efficiency > 0 && nvls_efficiency <= 1)) {
          return InputError({}, "nvls_efficiency", std::to_string(nvls_efficiency),
                            "these GPUs have no NVLink SHARP", "in (0, 1]: Hopper or newer");
        }
        NvlsAcrossNodes(s, gpus_per_node, nvls_efficiency, std::max<uint32_t>(nvls_channels, 1));
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
      if (algo == CollectiveAlgo::kRing) {
        Ring(s, ranks - 1, chunk, ring_channels);
      } else if (algo == CollectiveAlgo::kNvls) {
        // One step: every pair exchanges S / (n-1), S on each GPU's link (see the header).
        const uint64_t pair = size / (ranks - 1);
        for (uint32_t i = 0; i < ranks; ++i) {
          for (uint32_t j = 0; j < ranks; ++j) {
            if (i != j) s.Add(i, j, pair, 0);
          }
        }
      } else {
        return Unsupported(op, algo);
      }
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
