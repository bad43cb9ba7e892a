#include "sim/network/nccl_model.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace moesim::sim {
namespace {

// Nanoseconds; index [protocol] with LL, LL128, Simple. Source: NCCL src/graph/tuning.cc.
constexpr int64_t kRingBase[3] = {6600, 14000, 8400};
constexpr int64_t kTreeBase[3] = {6800, 14000, 8400};
constexpr int64_t kRingStep[3][3] = {{600, 1900, 3400}, {1000, 2500, 5700}, {2700, 4000, 14000}};
constexpr int64_t kTreeStep[3][3] = {{600, 1250, 4000}, {1000, 1900, 4000}, {5000, 8500, 14000}};
// getNetOverhead: the network post overhead, Intel's (tuning.cc; AMD's is 2 us).
constexpr int64_t kNetOverheadNs = 1000;

// Scaled by a factor, rounded to whole nanoseconds (the tables' unit), as NCCL scales its float.
Duration Scaled(int64_t ns, double factor) {
  return Duration::Nanoseconds(
      static_cast<int64_t>(std::llround(static_cast<double>(ns) * factor)));
}

}  // namespace

std::string_view ToString(NcclProtocol p) {
  switch (p) {
    case NcclProtocol::kLL:
      return "LL";
    case NcclProtocol::kLL128:
      return "LL128";
    case NcclProtocol::kSimple:
      return "Simple";
  }
  return "?";
}

Duration NcclLatencyModel::Base(NcclProtocol p) const {
  // tuning.cc: 2 * (... + (nRanks / nNodes - 1) * 0.4), "0.4 us arity serialization latency".
  if (collnet) return Duration::Nanoseconds(2 * 400 * (int64_t{std::max(local_ranks, 1u)} - 1));
  if (nvls || nvls_tree) return Duration();
  const int64_t ns = (tree ? kTreeBase : kRingBase)[static_cast<int>(p)];
  return Scaled(ns, p == NcclProtocol::kSimple ? ring_plateau : 1.0);
}

Duration NcclLatencyModel::Step(StepLinkKind kind, NcclProtocol p) const {
  // interLat += graphs[a]->latencyInter; if (p == NCCL_PROTO_SIMPLE) interLat += latencyInter.
  const Duration transport = kind == StepLinkKind::kNetwork
                                 ? (p == NcclProtocol::kSimple ? 2 : 1) * net_latency
                                 : Duration();
  // tuning.cc: hwLatencies[NCCL_HW_NVLINK][NCCL_ALGO_NVLS][Simple] = 25 us, the whole call's in a
  // node; across nodes (with CollNet) interLat, hwLatencies[NCCL_HW_NET][NCCL_ALGO_NVLS] = 18 us.
  if (nvls) {
    return kind == StepLinkKind::kNetwork ? Duration::Nanoseconds(18'000) + transport
                                          : Duration::Nanoseconds(25'000);
  }
  // hwLatencies[..][NCCL_ALGO_COLLNET_DIRECT][Simple]: NVLink and PCIe 3.7 us, network 31 us, or
  // with one GPU a node the Tree's 14 us.
  if (collnet) {
    if (kind != StepLinkKind::kNetwork) return Duration::Nanoseconds(3'700);
    return Duration::Nanoseconds(local_ranks <= 1 ? 14'000 : 31'000) + transport;
  }
  // hwLatencies[NCCL_HW_NET][NCCL_ALGO_NVLS_TREE][Simple] = 20.9 us; in the node, NVLS's 25 us.
  if (nvls_tree) {
    return Duration::Nanoseconds(kind == StepLinkKind::kNetwork ? 20'900 : 25'000) + transport;
  }
  const auto& table = tree ? kTreeStep : kRingStep;
  int64_t ns = table[static_cast<int>(kind)][static_cast<int>(p)];
  // tuning.cc: intraLat = std::max(intraLat, netOverhead), netOverhead x 3 for Simple.
  if (ring_across_nodes && !tree && kind != StepLinkKind::kNetwork)
    ns = std::max(ns, kNetOverheadNs * (p == NcclProtocol::kSimple ? 3 : 1));
  const double factor = p == NcclProtocol::kSimple ? ring_plateau : 1.0;
  if (factor == 1.0) return Duration::Nanoseconds(ns) + transport;
  return Scaled(ns, factor) +
         Duration::Picoseconds(std::llround(static_cast<double>(transport.picoseconds()) * factor));
}

double NcclTreeCorrection(NcclProtocol p, uint64_t bytes, bool nvls_tree, uint32_t sm) {
  // tuning.cc treeCorrectionFactor[protocol][log2(bytes / 64)], LL, LL128, Simple.
  static constexpr double kFactor[3][24] = {
      {1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7,  .7,  .7,  .6,  .5,
       .4,  .4,  .5,  .6,  .7, .8, .9, 1.0, 1.0, 1.0, 1.0, 1.0},
      {1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7,  .6,  .6,
       .6,  .6,  .6,  .6,  .8,  .9, .9, .9, .9, 1.0, 1.0, 1.0},
      {.9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5,
       .5, .5, .5, .6, .7, .8, .7, .7, .8, .9, .9, .9}};
  if (nvls_tree && sm < 100) return 1.0;
  const uint64_t units = bytes >> 6;
  if (units == 0) return 1.0;  // log2i(0) < 0: NCCL applies none
  const int log_size = std::bit_width(units) - 1;
  if (log_size >= (nvls_tree ? 24 : 23)) return 1.0;
  return kFactor[static_cast<int>(p)][log_size];
}

double NcclRingPlateau(uint32_t sm, uint32_t nodes, uint32_t ranks, uint64_t bytes) {
  constexpr uint64_t kMaxChannels = 64;  // NCCL's MAXCHANNELS (src/include/device.h)
  if (nodes < 2 || ranks == 0 || bytes / (kMaxChannels * ranks) < 64) return 1.0;
  return sm < 80 ? 1.9 : 1.4;
}

double NcclLatencyModel::Efficiency(NcclProtocol p) {
  switch (p) {
    case NcclProtocol::kLL:
      return 0.5;
    case NcclProtocol::kLL128:
      return 0.92;
    case NcclProtocol::kSimple:
      return 1.0;
  }
  return 1.0;
}

double NcclLlMaxBusGbps(uint32_t sm, uint32_t nodes) {
  if (nodes > 1) return nodes == 2 ? 39.0 : 20.4;
  if (sm >= 100) return 282.0;
  if (sm >= 90) return 141.0;
  if (sm >= 80) return 87.7;
  return 39.0;
}

double NvlsEfficiency(uint32_t sm) {
  if (sm >= 100) return 0.74;
  if (sm >= 90) return 0.85;
  return 0.0;
}

double CollNetEfficiency(uint32_t sm) { return sm >= 90 ? 0.85 : 1.0; }

uint32_t NcclNvlsChannels(uint32_t sm, uint32_t nodes) {
  if (sm >= 100) return nodes > 1 ? 32 : 24;
  return 16;
}

uint64_t NcclNvlsChunk(uint64_t bytes, uint64_t concurrent_ops) {
  uint64_t chunk = 128 << 10;
  if (bytes < 64 * concurrent_ops * chunk && chunk > (64 << 10)) chunk = 64 << 10;
  if (bytes < 8 * concurrent_ops * chunk && chunk > (32 << 10)) chunk = 32 << 10;
  if (bytes < 2 * concurrent_ops * chunk && chunk > (16 << 10)) chunk = 16 << 10;
  return chunk;
}

uint64_t NcclNvlsTreeChunk(uint64_t bytes, uint64_t concurrent_ops, uint32_t nodes) {
  uint64_t chunk = nodes >= 4 ? 64 << 10 : 128 << 10;
  if (bytes < 4 * concurrent_ops * chunk && chunk > (64 << 10)) chunk = 64 << 10;
  if (bytes < concurrent_ops * chunk && chunk > (32 << 10)) chunk = 32 << 10;
  return chunk;
}

namespace {

uint32_t Pow2Up(uint32_t v) {
  uint32_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

}  // namespace

uint32_t NcclP2pChannels(uint32_t nics_used_per_node) {
  constexpr uint32_t kMaxChannels = 64;
  return std::min(kMaxChannels, Pow2Up(2 * std::max<uint32_t>(1, nics_used_per_node)));
}

uint32_t NcclP2pChannelsPerNetPeer(uint32_t nccl_version, double nic_gbps, uint32_t ranks,
                                   uint32_t p2p_channels) {
  constexpr uint32_t kPeersPerBatch = 8;  // NCCL_MAX_DEV_WORK_P2P_PER_BATCH
  p2p_channels = std::max<uint32_t>(1, p2p_channels);
  uint32_t c = 0;
  if (nccl_version >= 229) {
    // divUp((int)netBw, (int)ncclParamP2pPerChannelNetBw()): NCCL's GB/s as an int.
    const auto bw = static_cast<uint32_t>(std::max(0.0, nic_gbps));
    const auto per = static_cast<uint32_t>(kNcclP2pChannelNetGbps);
    c = Pow2Up(std::max<uint32_t>(1, (bw + per - 1) / per));
    const uint32_t batches = (ranks + kPeersPerBatch - 1) / kPeersPerBatch;
    while (uint64_t{c} * batches > p2p_channels && c > 1) c /= 2;
    return c;
  }
  c = 2;
  while (uint64_t{c} * ranks > uint64_t{p2p_channels} * 4 && c > 1) c /= 2;
  return std::min(Pow2Up(c), Pow2Up(p2p_channels));
}

}  // namespace moesim::sim
