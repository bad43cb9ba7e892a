// Answers to group collectives already asked, for callers that ask the same ones many times: plan
// search, whose candidates that differ only in pipeline stages, recomputation or micro-batch count
// run the same EP all-to-alls and rings on the same GPUs.
//
//   CollectiveMemo memo;                       // one per cluster and search (network_model.h)
//   net->set_memo(&memo);                      // every NetworkModel of the search
//   GroupAllToAllV(*net, gpus, bytes);         // timed once, then looked up
//
// A key is the whole question as bytes (which collective, the fidelity, the group's GPUs, the size
// or the byte matrix, every option), never a hash of it, so an answer is the one the network model
// gives for that question: bit for bit. The cluster is not in the key: a memo serves one cluster.
//
// Thread-safe: Get may run from many threads. Two threads asking a new key at once both compute
// it (the same answer) and one keeps it. Memory: each key's bytes (a 256-GPU all-to-all's matrix is
// up to 65,536 cells, 768 KiB) and its answer, until the memo is destroyed.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "models/traffic_matrix.h"

namespace moesim::sim {

// Builds a key: Add(...) each part of the question in a fixed order.
class MemoKey {
 public:
  explicit MemoKey(char kind) { bytes_.push_back(kind); }
  MemoKey& Add(uint64_t value) {
    bytes_.append(reinterpret_cast<const char*>(&value), sizeof value);
    return *this;
  }
  MemoKey& Add(const std::vector<uint32_t>& values) {
    Add(values.size());
    bytes_.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(uint32_t));
    return *this;
  }
  MemoKey& Add(const models::TrafficMatrix& m) {
    Add(m.ranks());
    for (uint32_t r = 0; r < m.ranks(); ++r) {
      const auto& row = m.row(r);
      Add(row.size());
      for (const models::TrafficMatrix::Cell& cell : row) Add(cell.dst).Add(cell.count);
    }
    return *this;
  }
  std::string Take() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

template <typename Answer>
class Memo {
 public:
  // The answer stored for `key`, or compute() stored and returned.
  template <typename Compute>
  Answer Get(std::string key, const Compute& compute) {
    {
      const std::lock_guard<std::mutex> lock(mu_);
      if (auto it = answers_.find(key); it != answers_.end()) return it->second;
    }
    Answer answer = compute();
    const std::lock_guard<std::mutex> lock(mu_);
    return answers_.try_emplace(std::move(key), std::move(answer)).first->second;
  }
  size_t size() const {
    const std::lock_guard<std::mutex> lock(mu_);
    return answers_.size();
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, Answer> answers_;
};

}  // namespace moesim::sim
