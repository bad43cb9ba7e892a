// The analytical all-to-all's link loads (sim/moe/moe_layer.cc) against the plainest reference:
// every pair's bytes laid on its route by Router::ForEachShare, pair after pair in matrix order,
// the way the model summed them before it split routes into their parts outside and inside the
// fabric. Floating-point sums depend on their order, so equality is checked exactly.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <string>

#include "models/model_spec.h"
#include "sim/moe/moe_layer.h"
#include "sim/moe/scenario_loader.h"

namespace moesim::sim {
namespace {

// 4 DGX H100 nodes (32 GPUs) in 2 rail groups joined by `spines` spines: a cross-rail route splits
// 1/spines at the rail switch, so 3 spines give shares that are not powers of two.
std::string Scenario(uint32_t spines) {
  return "cluster { node_preset: \"dgx-h100\" nodes: 4 fabric { rail_optimized { "
         "nodes_per_group: 2 spines: " +
         std::to_string(spines) +
         " } } }\n"
         "model_spec { name: \"toy\" hidden_size: 1024 expert_ffn_size: 512 num_experts: 64 "
         "top_k: 4 num_layers: 1 dtype: BF16 }\n"
         "plan { ep: 32 }\n"
         "workload { tokens_per_gpu: 96 }\n"
         "routing { synthetic { distribution: ZIPF zipf_alpha: 1.2 shuffle_experts: true seed: 3 "
         "} }\n";
}

struct Reference {
  std::map<std::string, double> class_bytes;  // as the Result's link_class_bytes
  std::map<std::string, double> link_bytes;   // "source -> target" -> bytes
};

Reference Lay(const topology::Cluster& cluster, const models::TrafficMatrix& tokens,
              uint64_t token_bytes) {
  const topology::Graph& g = cluster.graph();
  std::vector<double> load(boost::num_edges(g), 0.0);
  for (uint32_t i = 0; i < tokens.ranks(); ++i) {
    for (uint32_t j = 0; j < tokens.ranks(); ++j) {
      if (i == j || tokens.at(i, j) == 0) continue;
      const double bytes = static_cast<double>(tokens.at(i, j) * token_bytes);
      cluster.router().ForEachShare(
          i, j, [&](topology::Edge e, double share) { load[g[e].id] += bytes * share; });
    }
  }
  Reference r;
  for (auto [it, end] = boost::edges(g); it != end; ++it) {
    const double bytes = load[g[*it].id];
    if (bytes <= 0) continue;
    r.class_bytes[std::string(topology::ToString(g[*it].link_class))] += bytes;
    r.link_bytes[g[boost::source(*it, g)].name + " -> " + g[boost::target(*it, g)].name] = bytes;
  }
  return r;
}

}  // namespace

TEST_CASE("Analytical all-to-all: link loads equal ForEachShare's, pair by pair, bit for bit") {
  // 4 spines: fabric shares 1/4 (the model sums each fabric leg once); 3 spines: shares of 1/3
  // (it lays every pair on the leg's links in matrix order). Both must give the reference's sums.
  for (const uint32_t spines : {4u, 3u}) {
    CAPTURE(spines);
    auto s = LoadScenarioFromString(Scenario(spines), "links.pbtxt");
    REQUIRE(s.ok());
    const uint64_t token_bytes = models::TokenBytes(s->workload.model).value;
    const models::TrafficMatrix& dispatch = s->workload.layers.at(0).dispatch_tokens;
    const pb::Result r = SimulateMoeLayers(s->cluster, s->workload);
    for (const int p : {1, 3}) {
      const pb::Phase& phase = r.phases(p);
      CAPTURE(phase.name());
      const Reference want =
          Lay(s->cluster, p == 1 ? dispatch : dispatch.Transposed(), token_bytes);
      REQUIRE(want.class_bytes.count("infiniband") == 1);  // traffic crosses the fabric
      CHECK(phase.link_class_bytes().size() == want.class_bytes.size());
      for (const auto& [name, bytes] : want.class_bytes) {
        CAPTURE(name);
        REQUIRE(phase.link_class_bytes().count(name) == 1);
        CHECK(phase.link_class_bytes().at(name) == bytes);  // exact
      }
      REQUIRE(phase.busiest_links_size() > 0);
      for (const pb::LinkLoad& l : phase.busiest_links()) {
        CAPTURE(l.link());
        REQUIRE(want.link_bytes.count(l.link()) == 1);
        CHECK(l.bytes() == static_cast<uint64_t>(std::ceil(want.link_bytes.at(l.link()))));
      }
    }
  }
}

}  // namespace moesim::sim
