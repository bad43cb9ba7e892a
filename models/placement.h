// Expert placement: which EP rank holds which experts, layer by layer, with replicas.
//
// An EP rank holds an ordered list of physical experts ("slots"); slot i is its i-th local expert,
// the i-th group of its grouped GEMM. A logical expert has one or more replicas, each a (EP rank,
// slot). Kinds:
// - contiguous: EP rank r holds experts [r*E/ep, (r+1)*E/ep) (Megatron-Core);
// - round-robin: expert e on EP rank e mod ep, slot e / ep;
// - from slots (a file, models/placement_file.h, or EPLB, models/eplb.h): anything, replicas too.
//
//   ExpertPlacement p = ExpertPlacement::Contiguous(/*experts=*/8, /*ep=*/4);
//   p.EpRankOf(5);                   // 2
//   p.layer(0).ReplicasOf(5);        // {{2, 1}}: EP rank 2, slot 1
//
// Which replica a token goes to (ExpandLayer, models/dispatch.h), a fixed rule so that both
// executors send the same bytes: among the expert's replicas, those on the sender's own GPU if
// any, else those on the sender's node (when gpus_per_node is known), else all of them; the j-th
// token (counting from 0) that the sender routes to this expert takes candidate
// (j + sender's EP rank) mod (number of candidates). Tokens of one sender thus spread evenly over
// the replicas, and senders start at different replicas. With one replica per expert it is the
// only choice, so contiguous placement expands exactly as before replicas existed.
//
// Immutable after construction; const methods are safe from any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "proto/status.h"

namespace moesim::models {

// One layer's placement.
class LayerPlacement {
 public:
  struct Replica {
    uint32_t ep_rank = 0;
    uint32_t slot = 0;  // local expert index on that EP rank
    bool operator==(const Replica&) const = default;
  };

  LayerPlacement() = default;
  // slots[r] = the logical experts EP rank r holds, in local order. Every expert 0..num_experts-1
  // must appear at least once and no id may be out of range (the callers validate user input;
  // here a violation is a programming error: std::invalid_argument).
  LayerPlacement(uint32_t num_experts, std::vector<std::vector<uint32_t>> slots);

  uint32_t ep() const { return static_cast<uint32_t>(slots_.size()); }
  uint32_t num_experts() const { return static_cast<uint32_t>(replicas_.size()); }
  const std::vector<std::vector<uint32_t>>& slots() const { return slots_; }
  // The replicas of `expert`, in order of EP rank then slot.
  const std::vector<Replica>& ReplicasOf(uint32_t expert) const { return replicas_.at(expert); }
  uint32_t physical_experts() const;
  // The most slots any EP rank has.
  uint32_t max_slots() const;

 private:
  std::vector<std::vector<uint32_t>> slots_;
  std::vector<std::vector<Replica>> replicas_;
};

class ExpertPlacement {
 public:
  ExpertPlacement() = default;
  static ExpertPlacement Contiguous(uint32_t num_experts, uint32_t ep);
  static ExpertPlacement RoundRobin(uint32_t num_experts, uint32_t ep);
  // One placement per layer (layers[l] is layer l), or a single one for every layer. All must
  // have the same experts and EP size. `description` is what reports print ("EPLB global, ...").
  static ExpertPlacement PerLayer(std::vector<LayerPlacement> layers, std::string description);

  uint32_t num_experts() const { return layers_.empty() ? 0 : layers_.front().num_experts(); }
  uint32_t ep() const { return layers_.empty() ? 0 : layers_.front().ep(); }
  // The most physical experts an EP rank holds in any layer (E/ep for contiguous placement).
  uint32_t experts_per_rank() const;
  // Layer `layer`'s placement; a placement given once serves every layer.
  const LayerPlacement& layer(uint32_t layer) const;
  uint32_t layer_count() const { return static_cast<uint32_t>(layers_.size()); }
  // "contiguous", "round-robin", "EPLB hierarchical, 16 physical experts" ...
  const std::string& description() const { return description_; }

  // Layer 0's first replica of `expert`: its EP rank and its slot there. Exact for contiguous and
  // round-robin placements; with replicas, use layer(l).ReplicasOf.
  uint32_t EpRankOf(uint32_t expert) const { return layer(0).ReplicasOf(expert).front().ep_rank; }
  uint32_t LocalIndexOf(uint32_t expert) const { return layer(0).ReplicasOf(expert).front().slot; }

  // GPUs per node, for the replica choice's node preference; 0 (default) = unknown, no preference.
  uint32_t gpus_per_node() const { return gpus_per_node_; }
  void set_gpus_per_node(uint32_t n) { gpus_per_node_ = n; }

 private:
  std::vector<LayerPlacement> layers_;
  std::string description_;
  uint32_t gpus_per_node_ = 0;
};

// The token copies each EP rank computes when expert e receives expert_loads[e] of them
// (size num_experts): an expert's load split evenly over its replicas, the first replicas (in
// ReplicasOf order) taking one more each when it does not divide, which is what the replica rule
// above gives a sender's tokens up to that rounding. Index = EP rank.
std::vector<uint64_t> RankLoads(const LayerPlacement& layer, std::span<const uint64_t> expert_loads);

// Chooses the replica of `expert` for the `nth` token (from 0) that a sender routes to it, by the
// rule above. `ep_group` lists the global ranks of the sender's EP group by EP rank; `sender_ep`
// is the sender's EP rank in it.
LayerPlacement::Replica ChooseReplica(const LayerPlacement& layer, uint32_t expert,
                                      const std::vector<uint32_t>& ep_group, uint32_t sender_ep,
                                      uint32_t gpus_per_node, uint64_t nth);

}  // namespace moesim::models
