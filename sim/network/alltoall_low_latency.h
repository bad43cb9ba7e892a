// DeepEP's low-latency dispatch and combine (alltoall_algo "deepep_low_latency", DeepEP's
// `low_latency_dispatch` / `low_latency_combine`, csrc/kernels/legacy/internode_ll.cu at commit
// dd758ca): no relay, no deduplication. Every (token, selected expert) is its own message, written
// straight into the expert's buffer on the expert's GPU: an RDMA write through IBGDA
// (nvshmemi_ibgda_put_nbi_warp) to a GPU of another node, an NVLink store to a GPU of the same
// node (`nvshmemi_get_p2p_ptr`; `allow_nvlink_for_low_latency_mode` defaults to True, so since
// DeepEP's June 2025 change the kernels are pure RDMA only across nodes). After its tokens a rank
// writes one count per expert (dispatch, an RDMA atomic) or one flag per (expert, rank) (combine)
// that the receiver waits for.
//
//   LowLatencyTraffic t = LowLatencyMessages(layer, /*message_bytes=*/7168 + 56 * 4 + 16,
//                                            /*combine=*/false);
//   AllToAll a = LowLatencyAllToAll(net, gpus, t);   // a.ranks[gpu].time
//
// Time per GPU r:
//
//   max(links_r, messages_r / message rate + route_r)
//
//   links_r     the direct exchange of the bytes, as the network model prices it
//               (NetworkModel::RelayedAllToAll: the analytical busiest link r's transfers cross
//               plus their longest route, or the flow model's last flow of r)
//   messages_r  (rounded up to whole picoseconds) the larger of the messages r sends to and
//   receives from GPUs of other nodes
//               (token messages and counts or flags): what its NIC posts or takes in
//   route_r     the longest route among those messages: the count, written last, still crosses
//
// The message rate is ConnectX-7's datasheet figure (below), one NIC per GPU. No launch overhead
// is added: DeepEP's published latencies are kernel times (tests/test_low_latency.py measures
// them with bench_kineto). Thread-safety: as NetworkModel's const methods.
#pragma once

#include <cstdint>
#include <vector>

#include "models/dispatch.h"
#include "models/traffic_matrix.h"
#include "sim/network/alltoall_cost.h"
#include "sim/network/network_model.h"

namespace moesim::sim {

// Messages per second one ConnectX-7 adapter posts: the low end of the "330-370 million messages
// per second" of NVIDIA's ConnectX-7 datasheet (InfiniBand NDR 400 Gb/s adapter). A 7,408-byte
// low-latency message then costs 3.0 ns of NIC time against 148 ns of a 50 GB/s wire: the rate
// binds only for messages under about 150 B.
inline constexpr uint64_t kConnectX7MessagesPerSecond = 330'000'000;

// What one low-latency all-to-all sends, by (source, destination) rank of the EP group.
struct LowLatencyTraffic {
  models::TrafficMatrix bytes;     // bytes.at(i, j): rank i's messages to rank j, in bytes
  models::TrafficMatrix messages;  // messages.at(i, j): how many (tokens, counts and flags)
};

// The traffic of `layer`'s dispatch (combine false) or combine (true), `message_bytes` a message:
// dispatch sends one message per copy (dispatch_tokens) and one count to every expert of every
// other rank (internode_ll.cu: one nvshmemi_ibgda_amo_nonfetch_add per expert, tokens or not);
// combine sends each copy's output back (the transpose) and one flag per (expert, other rank)
// (one per responsible expert index, local expert x destination rank). Counts and flags are 4
// bytes, left out of `bytes`.
LowLatencyTraffic LowLatencyMessages(const models::LayerWork& layer, uint64_t message_bytes,
                                     bool combine);

// The all-to-all over `gpus` (traffic index i is gpus[i]) on `net`, per GPU of the cluster
// (result.ranks[g] for GPU g; GPUs outside the group cost nothing), as the header says.
AllToAll LowLatencyAllToAll(const NetworkModel& net, const std::vector<uint32_t>& gpus,
                            const LowLatencyTraffic& traffic,
                            uint64_t messages_per_second = kConnectX7MessagesPerSecond);

}  // namespace moesim::sim
