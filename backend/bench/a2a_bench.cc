#include "backend/bench/a2a_bench.h"

#include <algorithm>
#include <climits>
#include <vector>

#include "backend/bench/time_stats.h"

namespace moesim::backend {
namespace {

// Times `call` as nccl-tests does and fills time, algbw, busbw for `size` bytes.
template <typename Call>
StatusOr<A2aRow> Time(Communicator& comm, uint64_t size, const A2aOptions& o, Call call) {
  for (uint32_t i = 0; i < o.warmup; ++i) MOESIM_RETURN_IF_ERROR(call());
  comm.Barrier();
  const int64_t start = NowNs();
  for (uint32_t i = 0; i < o.iterations; ++i) MOESIM_RETURN_IF_ERROR(call());
  const int64_t elapsed = NowNs() - start;
  std::vector<int64_t> slowest(1);
  comm.ReduceMax(std::span<const int64_t>(&elapsed, 1), slowest);
  A2aRow out;
  out.row = A2aRowOf(size, slowest[0], o.iterations, comm.size());
  return out;
}

uint64_t SumWrong(Communicator& comm, uint64_t wrong) {
  std::vector<int64_t> all(comm.rank() == 0 ? comm.size() : 0);
  const int64_t mine = static_cast<int64_t>(wrong);
  comm.Gather(std::span<const int64_t>(&mine, 1), all);
  uint64_t sum = 0;
  for (int64_t w : all) sum += static_cast<uint64_t>(w);
  return sum;
}

}  // namespace

pb::CollectiveRow A2aRowOf(uint64_t size, int64_t slowest_ns, uint32_t iterations, uint32_t ranks) {
  const double seconds = static_cast<double>(slowest_ns) / 1e9 / std::max(iterations, 1u);
  pb::CollectiveRow row;
  row.set_size_bytes(size);
  row.set_count(size / sizeof(float));
  row.set_type("float");
  row.set_time_us(seconds * 1e6);
  row.set_algbw_gbps(seconds > 0 ? static_cast<double>(size) / seconds / 1e9 : 0);
  row.set_busbw_gbps(row.algbw_gbps() * AllToAllBusFactor(ranks));
  return row;
}

double AllToAllBusFactor(uint32_t ranks) {
  return ranks == 0 ? 0 : static_cast<double>(ranks - 1) / ranks;
}

StatusOr<A2aRow> MeasureAllToAll(Communicator& comm, uint64_t size_bytes, const A2aOptions& o) {
  const uint32_t n = comm.size(), me = comm.rank();
  const uint64_t per_peer = std::max<uint64_t>(1, size_bytes / sizeof(float) / n);  // floats
  std::vector<float> send(per_peer * n), recv(per_peer * n, -1.0f);
  for (uint32_t dst = 0; dst < n; ++dst) {
    for (uint64_t i = 0; i < per_peer; ++i) send[dst * per_peer + i] = A2aExpectedValue(me, dst, i);
  }
  MOESIM_ASSIGN_OR_RETURN(A2aRow row, Time(comm, per_peer * n * sizeof(float), o, [&] {
                            return comm.AllToAllEqual(send.data(), recv.data(), per_peer,
                                                      sizeof(float));
                          }));
  // Elements of `got` that did not arrive as rank src sent them to this rank.
  auto count_wrong = [&](const std::vector<float>& got) {
    uint64_t wrong = 0;
    for (uint32_t src = 0; src < n; ++src) {
      for (uint64_t i = 0; i < per_peer; ++i)
        wrong += got[src * per_peer + i] != A2aExpectedValue(src, me, i);
    }
    return wrong;
  };
  row.wrong = SumWrong(comm, count_wrong(recv));
  // In place: the timed calls exchange whatever the buffer holds; the check seeds it again.
  std::vector<float> buffer = send;
  auto in_place = [&] {
    return comm.AllToAllEqual(buffer.data(), buffer.data(), per_peer, sizeof(float));
  };
  MOESIM_ASSIGN_OR_RETURN(const A2aRow timed,
                          Time(comm, per_peer * n * sizeof(float), o, in_place));
  buffer = send;
  MOESIM_RETURN_IF_ERROR(in_place());
  row.row.set_in_place_time_us(timed.row.time_us());
  row.row.set_in_place_algbw_gbps(timed.row.algbw_gbps());
  row.row.set_in_place_busbw_gbps(timed.row.busbw_gbps());
  row.in_place_wrong = SumWrong(comm, count_wrong(buffer));
  return row;
}

StatusOr<A2aRow> MeasureAllToAllV(Communicator& comm, const models::TrafficMatrix& bytes,
                                  const A2aOptions& o) {
  const uint32_t n = comm.size(), me = comm.rank();
  constexpr uint64_t kUnit = 16;  // nccl-tests aligns every per-peer size to 16 bytes
  constexpr uint64_t kFloatsPerUnit = kUnit / sizeof(float);
  // Checked on every rank from the whole matrix, so all ranks fail together.
  uint64_t largest = 0;
  for (uint32_t r = 0; r < n; ++r) {
    uint64_t sent = 0, received = 0;
    for (uint32_t j = 0; j < n; ++j) {
      sent += bytes.at(r, j);
      received += bytes.at(j, r);
    }
    if (sent / kUnit > INT_MAX || received / kUnit > INT_MAX) {
      return Error("all-to-all(v) matrix: rank " + std::to_string(r) + " moves " +
                   std::to_string(std::max(sent, received)) +
                   " bytes, beyond MPI's int counts of 16-byte units");
    }
    largest = std::max({largest, sent, received});
  }
  std::vector<uint64_t> send_units(n), recv_units(n);
  uint64_t send_total = 0, recv_total = 0;
  for (uint32_t j = 0; j < n; ++j) {
    send_units[j] = bytes.at(me, j) / kUnit;
    recv_units[j] = bytes.at(j, me) / kUnit;
    send_total += send_units[j];
    recv_total += recv_units[j];
  }
  std::vector<float> send(send_total * kFloatsPerUnit), recv(recv_total * kFloatsPerUnit, -1.0f);
  uint64_t at = 0;
  for (uint32_t dst = 0; dst < n; ++dst) {
    for (uint64_t i = 0; i < send_units[dst] * kFloatsPerUnit; ++i)
      send[at++] = A2aExpectedValue(me, dst, i);
  }
  MOESIM_ASSIGN_OR_RETURN(A2aRow row, Time(comm, largest, o, [&] {
                            return comm.AllToAllV(send.data(), send_units, recv.data(), recv_units,
                                                  kUnit);
                          }));
  uint64_t wrong = 0;
  at = 0;
  for (uint32_t src = 0; src < n; ++src) {
    for (uint64_t i = 0; i < recv_units[src] * kFloatsPerUnit; ++i)
      wrong += recv[at++] != A2aExpectedValue(src, me, i);
  }
  row.wrong = SumWrong(comm, wrong);
  return row;
}

}  // namespace moesim::backend
