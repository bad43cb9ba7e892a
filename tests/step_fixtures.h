// What the whole-step tests share (tests/step_test.cc, tests/compute_model_test.cc): protobuf
// text parsed in place, DGX H100 clusters, and the tiny model whose FLOPs are counted by hand.
#pragma once

#include <catch2/catch.hpp>
#include <string>

#include "proto/model.pb.h"
#include "test_helpers.h"
#include "topology/cluster.h"

namespace moesim::testing {

// `nodes` DGX H100 nodes, on one rail-optimized group when there are several.
inline topology::Cluster DgxH100(uint32_t nodes) {
  auto c = topology::BuildCluster(Parse<pb::Cluster>(
      "node_preset: \"dgx-h100\" nodes: " + std::to_string(nodes) +
      (nodes > 1 ? " fabric { rail_optimized { nodes_per_group: " + std::to_string(nodes) + " } }"
                 : "")));
  REQUIRE(c.ok());
  return std::move(*c);
}

// A model small enough to count by hand: hidden 64, 4 experts of FFN 32 (top-2), 2 layers, both
// MoE, vocabulary 100, default attention (Q, K, V, O of 64 x 64). One token through one expert's
// SwiGLU is 6 x 64 x 32 = 12,288 FLOPs.
inline pb::ModelSpec TinyMoe() {
  return Parse<pb::ModelSpec>(
      "name: 'tiny' hidden_size: 64 expert_ffn_size: 32 num_experts: 4 top_k: 2 num_layers: 2 "
      "dtype: BF16 vocab_size: 100");
}

}  // namespace moesim::testing
