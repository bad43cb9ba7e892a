// The Communicator between threads of one process: `moebench run --device gpu --gpus N` drives
// the N GPUs of one node from N threads, one rank each (NCCL then connects the GPUs; this carries
// only what the host needs: counts for the checks, the NCCL unique id, barriers, the gathered
// measurements). Ranks are threads, so every rank is on this node: ranks_on_node() = size() and
// local_rank() = rank() (the GPU a rank drives).
//
//   ThreadGroup group(4);
//   std::vector<std::thread> threads;
//   for (uint32_t r = 0; r < 4; ++r) {
//     threads.emplace_back([&group, r] { ThreadCommunicator comm(group, r); Work(comm); });
//   }
//
// Each collective publishes a pointer per rank, meets at a barrier, copies from the peers and
// meets again, so no rank reuses its buffer before every peer has read it. Every rank must make
// the same calls in the same order (MPI's rule); a rank that stops calling leaves the others
// waiting, which moebench's watchdog (--timeout-s) ends. Each ThreadCommunicator is used by its
// own thread only; the ThreadGroup must outlive them.
#pragma once

#include <barrier>
#include <cstdint>
#include <span>
#include <vector>

#include "backend/comm/communicator.h"

namespace moesim::backend {

class ThreadGroup {
 public:
  explicit ThreadGroup(uint32_t size);
  uint32_t size() const { return size_; }

 private:
  friend class ThreadCommunicator;
  const uint32_t size_;
  std::barrier<> barrier_;
  // Per rank: what it published for the collective in progress.
  std::vector<const void*> data_;
  std::vector<const uint64_t*> units_;
  std::vector<char> flags_;
};

class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(ThreadGroup& group, uint32_t rank) : group_(group), rank_(rank) {}

  uint32_t rank() const override { return rank_; }
  uint32_t size() const override { return group_.size(); }
  uint32_t ranks_on_node() const override { return group_.size(); }
  uint32_t local_rank() const override { return rank_; }

  void Barrier() override;
  void AllToAll(std::span<const uint64_t> send, std::span<uint64_t> recv) override;
  Status AllToAllV(const void* send, std::span<const uint64_t> send_units, void* recv,
                   std::span<const uint64_t> recv_units, uint64_t unit_bytes) override;
  Status AllToAllEqual(const void* send, void* recv, uint64_t units, uint64_t unit_bytes) override;
  void Broadcast(void* data, uint64_t bytes) override;
  void ReduceMax(std::span<const int64_t> in, std::span<int64_t> out) override;
  void ReduceMax(std::span<const double> in, std::span<double> out) override;
  void Gather(std::span<const int64_t> in, std::span<int64_t> out) override;
  bool AnyRank(bool mine) override;

 private:
  template <typename T>
  void Max(std::span<const T> in, std::span<T> out);

  ThreadGroup& group_;
  const uint32_t rank_;
};

}  // namespace moesim::backend
