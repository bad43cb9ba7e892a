#include "backend/comm/thread_communicator.h"

#include <algorithm>
#include <cstring>

namespace moesim::backend {

ThreadGroup::ThreadGroup(uint32_t size)
    : size_(size),
      barrier_(static_cast<std::ptrdiff_t>(size)),
      data_(size),
      units_(size),
      flags_(size) {}

void ThreadCommunicator::Barrier() { group_.barrier_.arrive_and_wait(); }

void ThreadCommunicator::AllToAll(std::span<const uint64_t> send, std::span<uint64_t> recv) {
  const uint64_t block = send.size() / size();
  group_.data_[rank_] = send.data();
  Barrier();
  for (uint32_t src = 0; src < size(); ++src) {
    const auto* from = static_cast<const uint64_t*>(group_.data_[src]) + rank_ * block;
    std::copy(from, from + block, recv.begin() + static_cast<std::ptrdiff_t>(src * block));
  }
  Barrier();
}

Status ThreadCommunicator::AllToAllV(const void* send, std::span<const uint64_t> send_units,
                                     void* recv, std::span<const uint64_t> recv_units,
                                     uint64_t unit_bytes) {
  group_.data_[rank_] = send;
  group_.units_[rank_] = send_units.data();
  Barrier();
  // Peer src's block for this rank starts after its blocks for ranks 0 .. rank_-1.
  bool agree = true;
  uint64_t at = 0;
  for (uint32_t src = 0; src < size(); ++src) {
    const uint64_t* units = group_.units_[src];
    uint64_t offset = 0;
    for (uint32_t j = 0; j < rank_; ++j) offset += units[j];
    if (units[rank_] != recv_units[src]) {
      agree = false;
      continue;
    }
    if (units[rank_] > 0) {
      std::memcpy(static_cast<char*>(recv) + at * unit_bytes,
                  static_cast<const char*>(group_.data_[src]) + offset * unit_bytes,
                  units[rank_] * unit_bytes);
    }
    at += recv_units[src];
  }
  Barrier();
  if (!agree) {
    return Error("all-to-all(v) on rank " + std::to_string(rank_) +
                 ": the counts it expects differ from what its peers send");
  }
  return Status::Ok();
}

Status ThreadCommunicator::AllToAllEqual(const void* send, void* recv, uint64_t units,
                                         uint64_t unit_bytes) {
  const std::vector<uint64_t> counts(size(), units);
  if (send != recv) return AllToAllV(send, counts, recv, counts, unit_bytes);
  // In place: peers read this rank's blocks while it writes them, so they read a copy (as an MPI
  // library's MPI_IN_PLACE path does).
  const auto* bytes = static_cast<const char*>(send);
  const std::vector<char> copy(bytes, bytes + units * unit_bytes * size());
  return AllToAllV(copy.data(), counts, recv, counts, unit_bytes);
}

void ThreadCommunicator::Broadcast(void* data, uint64_t bytes) {
  if (rank_ == 0) group_.data_[0] = data;
  Barrier();
  if (rank_ != 0 && bytes > 0) std::memcpy(data, group_.data_[0], bytes);
  Barrier();
}

template <typename T>
void ThreadCommunicator::Max(std::span<const T> in, std::span<T> out) {
  group_.data_[rank_] = in.data();
  Barrier();
  if (rank_ == 0) {
    for (size_t i = 0; i < in.size(); ++i) {
      T m = in[i];
      for (uint32_t r = 1; r < size(); ++r)
        m = std::max(m, static_cast<const T*>(group_.data_[r])[i]);
      out[i] = m;
    }
  }
  Barrier();
}

void ThreadCommunicator::ReduceMax(std::span<const int64_t> in, std::span<int64_t> out) {
  Max(in, out);
}
void ThreadCommunicator::ReduceMax(std::span<const double> in, std::span<double> out) {
  Max(in, out);
}

void ThreadCommunicator::Gather(std::span<const int64_t> in, std::span<int64_t> out) {
  group_.data_[rank_] = in.data();
  Barrier();
  if (rank_ == 0) {
    for (uint32_t r = 0; r < size(); ++r) {
      const auto* from = static_cast<const int64_t*>(group_.data_[r]);
      std::copy(from, from + in.size(), out.begin() + static_cast<std::ptrdiff_t>(r * in.size()));
    }
  }
  Barrier();
}

bool ThreadCommunicator::AnyRank(bool mine) {
  group_.flags_[rank_] = mine ? 1 : 0;
  Barrier();
  const bool any =
      std::any_of(group_.flags_.begin(), group_.flags_.end(), [](char f) { return f; });
  Barrier();
  return any;
}

}  // namespace moesim::backend
