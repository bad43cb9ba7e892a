// Which links become the flow model's constraints: grouped links and implied constraints left out
// must give exactly the max-min rates of the problem with every link (sim/network/flow_links.h).
#include "sim/network/flow_links.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <optional>
#include <string>

#include "proto/cluster.pb.h"
#include "sim/network/maxmin.h"
#include "test_helpers.h"
#include "topology/cluster.h"

namespace moesim::sim {
namespace {

// 4 DGX H100 nodes on a rail-optimized fabric of two groups of 2 nodes: traffic between groups
// crosses a leaf's uplinks to the spines.
topology::Cluster Rails(double oversubscription) {
  const std::string text =
      "node_preset: \"dgx-h100\" nodes: 4 fabric { rail_optimized { nodes_per_group: 2 "
      "oversubscription: " +
      std::to_string(oversubscription) + " } }";
  return testing::ClusterFromText(text);
}

// An uneven all-to-all of the cluster's 32 GPUs: 1 to 17 units from i to j.
Schedule Uneven(uint32_t gpus) {
  models::TrafficMatrix bytes(gpus);
  for (uint32_t i = 0; i < gpus; ++i) {
    for (uint32_t j = 0; j < gpus; ++j) {
      if (i != j) bytes.at(i, j) = (1 + (i * 7 + j * 13) % 17) << 16;
    }
  }
  auto s = BuildAllToAllV(bytes, CollectiveAlgo::kDirect);
  REQUIRE(s.ok());
  return std::move(s).value();
}

bool TouchesSpine(const topology::Cluster& c, topology::Edge e) {
  const topology::Graph& g = c.graph();
  return g[boost::source(e, g)].name.find("spine") != std::string::npos ||
         g[boost::target(e, g)].name.find("spine") != std::string::npos;
}

// The transfers' rates with every link a constraint of its own (`links` null), or with only the
// constraints `links` keeps; `live(t)` picks the transfers that are flows.
template <typename Live>
std::vector<double> Rates(const topology::Cluster& c, const Schedule& s, const FlowLinks* links,
                          Live live) {
  const topology::Graph& g = c.graph();
  MaxMinSolver solver;
  std::vector<std::optional<ResourceId>> resource(boost::num_edges(g));
  std::vector<VariableId> vars;
  std::vector<uint32_t> transfers;
  for (uint32_t t = 0; t < s.transfers.size(); ++t) {
    if (!live(t)) continue;
    std::vector<ResourceUse> uses;
    std::vector<uint32_t> seen;
    c.router().ForEachShare(
        s.transfers[t].src, s.transfers[t].dst, [&](topology::Edge e, double share) {
          uint32_t id = g[e].id;
          if (links != nullptr) {
            id = links->resource[id];
            if (id == FlowLinks::kNotConstrained) return;
            // A group's links carry the transfer with one share: once.
            if (std::find(seen.begin(), seen.end(), id) != seen.end()) return;
            seen.push_back(id);
          }
          if (!resource[id]) {
            for (auto [it, end] = boost::edges(g); it != end; ++it) {
              if (g[*it].id == id) {
                resource[id] =
                    solver.AddResource(static_cast<double>(g[*it].bandwidth.per_second()));
              }
            }
          }
          uses.push_back({*resource[id], share});
        });
    REQUIRE_FALSE(uses.empty());  // every transfer keeps a constraint
    vars.push_back(solver.AddVariable(uses));
    transfers.push_back(t);
  }
  solver.Solve();
  std::vector<double> rates(s.transfers.size(), 0);
  for (size_t i = 0; i < vars.size(); ++i) rates[transfers[i]] = solver.Rate(vars[i]);
  return rates;
}

void CheckSameRates(const std::vector<double>& all, const std::vector<double>& kept) {
  REQUIRE(all.size() == kept.size());
  for (size_t t = 0; t < all.size(); ++t) {
    INFO("transfer " << t << ": every link " << all[t] << ", kept constraints " << kept[t]);
    CHECK(std::abs(all[t] - kept[t]) <= 1e-9 * all[t]);
  }
}

}  // namespace

TEST_CASE("On a non-blocking rail fabric the leaf-spine links are implied by the NICs") {
  // A leaf of 2 nodes' NICs on one rail (2 x 50 GB/s down) has 50 GB/s up in all under ECMP: each
  // transfer puts share 1/k on each of k uplinks of 100/k GB/s, so an uplink's constraint reads
  // sum x / k <= 100 / k GB/s. The 2 sending NICs give sum_q M_q c_q = 2 x 50 / k = 100 / k:
  // implied (equal). Downlinks likewise by the 2 receiving NICs.
  const topology::Cluster c = Rails(1);
  const Schedule s = Uneven(32);
  const FlowLinks links = PlanFlowLinks(c, s);
  const topology::Graph& g = c.graph();
  uint32_t spine_links = 0, nic_links = 0;
  for (auto [it, end] = boost::edges(g); it != end; ++it) {
    const uint32_t id = g[*it].id;
    if (TouchesSpine(c, *it)) {
      ++spine_links;
      CHECK(links.resource[id] == FlowLinks::kNotConstrained);
    } else if (g[boost::source(*it, g)].name.find("/nic") != std::string::npos &&
               g[boost::target(*it, g)].name.find("rail") != std::string::npos) {
      ++nic_links;
      CHECK(links.resource[id] != FlowLinks::kNotConstrained);  // the NICs themselves are kept
    }
  }
  CHECK(spine_links > 0);
  CHECK(nic_links == 32);  // one per GPU, into its rail's leaf
  // 2 groups x 8 rails, up and down: one constraint each after grouping the ECMP links.
  CHECK(links.implied == 32);

  SECTION("the same max-min rates as with every link, all flows or half of them") {
    CheckSameRates(Rates(c, s, nullptr, [](uint32_t) { return true; }),
                   Rates(c, s, &links, [](uint32_t) { return true; }));
    // Any subset of the transfers: the cover holds whichever flows are running.
    const auto half = [](uint32_t t) { return t % 3 != 0; };
    CheckSameRates(Rates(c, s, nullptr, half), Rates(c, s, &links, half));
  }
}

TEST_CASE("At 2:1 oversubscription the leaf-spine links stay constraints") {
  // Uplinks now carry 50 / 2 GB/s in all per leaf: the NICs' 2 x 50 / k exceeds 25 / k.
  const topology::Cluster c = Rails(2);
  const Schedule s = Uneven(32);
  const FlowLinks links = PlanFlowLinks(c, s);
  CHECK(links.implied == 0);
  const topology::Graph& g = c.graph();
  for (auto [it, end] = boost::edges(g); it != end; ++it) {
    if (TouchesSpine(c, *it)) CHECK(links.resource[g[*it].id] != FlowLinks::kNotConstrained);
  }
  CheckSameRates(Rates(c, s, nullptr, [](uint32_t) { return true; }),
                 Rates(c, s, &links, [](uint32_t) { return true; }));
}

TEST_CASE("Links no transfer crosses are no constraint; groups count once") {
  // Two GPUs of one node and one transfer: every link on its route is one group (the same
  // transfer, the same shares per plane), so exactly one constraint stands for them.
  auto c = topology::LoadClusterArgument("dgx-h100", "");
  REQUIRE(c.ok());
  Schedule s;
  s.ranks = 8;
  s.steps = 1;
  s.transfers.push_back({0, 1, 1 << 20, 0, {}, {}});
  const FlowLinks links = PlanFlowLinks(*c, s);
  CHECK(links.constraints == 1);
  CHECK(links.implied == 0);
  uint32_t on_route = 0;
  for (const uint32_t r : links.resource) on_route += r != FlowLinks::kNotConstrained;
  CHECK(on_route == links.constraints + links.grouped);
  CHECK(on_route > 1);
}

}  // namespace moesim::sim
