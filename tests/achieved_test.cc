#include "topology/achieved.h"

#include <catch2/catch.hpp>

#include "test_helpers.h"
#include "topology/cluster.h"

namespace moesim::topology {
namespace {

Cluster Build(const std::string& text) { return testing::ClusterFromText(text); }

// The one edge of `link_class` leaving GPU 0 (presets give a GPU one edge per class).
const Link& FirstLink(const Cluster& c, LinkClass link_class) {
  const Graph& g = c.graph();
  for (auto [it, end] = boost::out_edges(c.gpu_vertex(0), g); it != end; ++it) {
    if (g[*it].link_class == link_class) return g[*it];
  }
  FAIL("no such link");
  throw;
}

}  // namespace

TEST_CASE("Achieved NVLink is NCCL's per-link figure times the links") {
  // H100: 18 links x 20.6 GB/s (NCCL SM90_NVLINK_BW) = 370.8 GB/s, against the datasheet's 450.
  // The cluster outlives the reference into its graph (ASan: a temporary here was freed first).
  const Cluster dgx_h100 = Build("node_preset: 'dgx-h100'");
  const Link& h100 = FirstLink(dgx_h100, LinkClass::kNvLink);
  CHECK(h100.bandwidth == Rate::GigaPerSecond(450));
  CHECK(h100.achieved == Rate::GigaPerSecond(370.8));
  // A100: 12 x 20.0 (SM80) = 240 of 300. H800: 8 x 20.6 = 164.8 of 200.
  CHECK(FirstLink(Build("node_preset: 'dgx-a100'"), LinkClass::kNvLink).achieved ==
        Rate::GigaPerSecond(240));
  CHECK(FirstLink(Build("node_preset: 'hgx-h800'"), LinkClass::kNvLink).achieved ==
        Rate::GigaPerSecond(164.8));
  // GB200 (NVLink 5): 18 x 40.1 (SM100) = 721.8 of 900.
  CHECK(FirstLink(Build("node_preset: 'gb200-nvl72'"), LinkClass::kNvLink).achieved ==
        Rate::GigaPerSecond(721.8));
}

TEST_CASE("Achieved NIC and PCIe rates are the payload share of what crosses the wire") {
  const Cluster c = Build("node_preset: 'dgx-h100' nodes: 2 fabric { single_switch {} }");
  // InfiniBand NDR, 50 GB/s: 4096 of every 4122 bytes are payload (LRH 8 + BTH 12 + ICRC 4 +
  // VCRC 2): 50e9 x 4096 / 4122 = 49,684,619,117 B/s.
  const Graph& g = c.graph();
  bool saw_ib = false, saw_pcie = false;
  for (auto [it, end] = boost::edges(g); it != end; ++it) {
    const Link& l = g[*it];
    if (l.link_class == LinkClass::kInfiniBand && l.bandwidth == Rate::GigaPerSecond(50)) {
      CHECK(l.achieved.per_second() == 49'684'619'117ULL);
      saw_ib = true;
    }
    // PCIe Gen5 x16, 63 GB/s: 256 B payload per 282 B TLP: 63e9 x 256 / 282 = 57,191,489,362.
    if (l.link_class == LinkClass::kPcie && l.bandwidth == Rate::GigaPerSecond(63)) {
      CHECK(l.achieved.per_second() == 57'191'489'362ULL);
      saw_pcie = true;
    }
  }
  CHECK(saw_ib);
  CHECK(saw_pcie);
}

TEST_CASE("line_rate: true prices every link at its datasheet rate") {
  const Cluster c = Build("node_preset: 'dgx-h100' line_rate: true");
  const Graph& g = c.graph();
  for (auto [it, end] = boost::edges(g); it != end; ++it)
    CHECK(g[*it].achieved == g[*it].bandwidth);
}

}  // namespace moesim::topology
