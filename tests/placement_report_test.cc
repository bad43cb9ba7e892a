// Placements shown (sim/report/placement_report.h): EPLB's phy2log, logcnt and log2phy, the text
// of `moesim placement show`, and the simulate report's header and Placement section.
#include <catch2/catch.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "models/placement.h"
#include "moesim_runner.h"
#include "sim/report/placement_report.h"
#include "test_paths.h"

namespace moesim::sim {
namespace {

using testing::Moesim;

std::vector<uint32_t> U(const google::protobuf::RepeatedField<uint32_t>& f) {
  return {f.begin(), f.end()};
}

TEST_CASE("A contiguous placement in EPLB's terms: one replica each, numbered rank by rank") {
  // 8 experts over 4 EP ranks: rank r holds experts 2r, 2r+1, so physical expert p is logical p.
  const pb::PlacementReport r = PlacementToProto(models::ExpertPlacement::Contiguous(8, 4), 3);
  CHECK(r.description() == "contiguous");
  CHECK(r.ep() == 4);
  CHECK(r.num_experts() == 8);
  CHECK(r.same_for_every_layer());
  REQUIRE(r.layers_size() == 1);  // three layers, all alike: shown once
  const pb::LayerPlacementReport& l = r.layers(0);
  CHECK(U(l.slots_per_rank()) == std::vector<uint32_t>{2, 2, 2, 2});
  CHECK(U(l.phy2log()) == std::vector<uint32_t>{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(U(l.logcnt()) == std::vector<uint32_t>(8, 1));
  CHECK(l.max_replicas() == 1);
  CHECK(U(l.log2phy()) == std::vector<uint32_t>{0, 1, 2, 3, 4, 5, 6, 7});
  // Round-robin: expert e on rank e mod 4, slot e / 4, so rank 0 holds 0 and 4: phy2log
  // [0 4 | 1 5 | 2 6 | 3 7], and log2phy inverts it.
  const pb::PlacementReport rr = PlacementToProto(models::ExpertPlacement::RoundRobin(8, 4), 1);
  CHECK(U(rr.layers(0).phy2log()) == std::vector<uint32_t>{0, 4, 1, 5, 2, 6, 3, 7});
  CHECK(U(rr.layers(0).log2phy()) == std::vector<uint32_t>{0, 2, 4, 6, 1, 3, 5, 7});
}

TEST_CASE("Replicas: logcnt counts them, log2phy lists them expert by expert, the text marks them") {
  // 3 experts on 2 EP ranks, expert 0 replicated: rank 0 holds {0, 1}, rank 1 holds {2, 0}.
  // Physical experts 0..3 are logical 0, 1, 2, 0: logcnt {2, 1, 1}; expert 0 is physical 0 and 3.
  std::vector<models::LayerPlacement> layers = {
      models::LayerPlacement(3, {{0, 1}, {2, 0}}),
      models::LayerPlacement(3, {{0, 1}, {2, 1}})};  // layer 1 replicates expert 1 instead
  const models::ExpertPlacement p = models::ExpertPlacement::PerLayer(layers, "test placement");
  const pb::PlacementReport r = PlacementToProto(p, 2);
  CHECK_FALSE(r.same_for_every_layer());
  REQUIRE(r.layers_size() == 2);
  const pb::LayerPlacementReport& l = r.layers(0);
  CHECK(U(l.phy2log()) == std::vector<uint32_t>{0, 1, 2, 0});
  CHECK(U(l.logcnt()) == std::vector<uint32_t>{2, 1, 1});
  CHECK(l.max_replicas() == 2);
  // Expert 0: physical 0 and 3; expert 1: 1; expert 2: 2 (EPLB's rows [0 3] [1 -1] [2 -1], unpadded).
  CHECK(U(l.log2phy()) == std::vector<uint32_t>{0, 3, 1, 2});
  CHECK(U(r.layers(1).log2phy()) == std::vector<uint32_t>{0, 1, 3, 2});

  std::ostringstream text;
  PrintPlacement(r, 0, text);
  CHECK(text.str() ==
        "Placement: test placement; ep 2, 3 experts\n"
        "  layer 0: 4 physical experts (phy2log by EP rank; * = replicated)\n"
        "    ep0    0* 1\n"
        "    ep1    2 0*\n"
        "    replicated experts (logcnt > 1): 0 x2 (ep 0,1)\n"
        "  layer 1: 4 physical experts (phy2log by EP rank; * = replicated)\n"
        "    ep0    0 1*\n"
        "    ep1    2 1*\n"
        "    replicated experts (logcnt > 1): 1 x2 (ep 0,1)\n");
  // At most one EP rank listed: the other is counted.
  std::ostringstream short_text;
  PrintPlacement(r, 1, short_text);
  CHECK_THAT(short_text.str(),
             Catch::Contains("    ... 1 more EP ranks (moesim placement show lists all)\n"));
}

TEST_CASE("moesim placement show lists every EP rank's experts; simulate names the placement") {
  const std::string seed = testing::SourcePath("scenarios/seed_example.pbtxt");
  const auto shown = Moesim({"placement", "show", seed});
  REQUIRE(shown.status == 0);
  // The seed example: 8 experts, ep 4, contiguous: rank r holds 2r and 2r + 1.
  CHECK_THAT(shown.out, Catch::Contains("Placement: contiguous; ep 4, 8 experts\n"
                                        "  every layer: 8 physical experts"));
  CHECK_THAT(shown.out, Catch::Contains("    ep3    6 7\n"
                                        "    replicated experts (logcnt > 1): none\n"));
  const auto json = Moesim({"placement", "show", seed, "--json"});
  REQUIRE(json.status == 0);
  CHECK_THAT(json.out, Catch::Contains("\"phy2log\": [\n"));
  // The simulate report: the header names the placement, and the section lists it.
  const auto simulated = Moesim({"simulate", seed});
  REQUIRE(simulated.status == 0);
  CHECK_THAT(simulated.out, Catch::Contains("plan     ep 4 (experts per GPU: 2, contiguous)"));
  CHECK_THAT(simulated.out, Catch::Contains("    ep0    0 1\n"));
  // EPLB with 8 redundant experts on OLMoE's measured loads (expert 0 takes 7.8x the mean): the
  // replicas are shown, and simulate accepts the report (log2phy carries no padding).
  const std::string eplb = testing::SourcePath("scenarios/olmoe_measured_loads_eplb.pbtxt");
  const auto replicas = Moesim({"placement", "show", eplb});
  REQUIRE(replicas.status == 0);
  CHECK_THAT(replicas.out, Catch::Contains("every layer: 72 physical experts"));
  CHECK_THAT(replicas.out, Catch::Contains("replicated experts (logcnt > 1): 0 x5 (ep 0,1,2,3,4)"));
  const auto eplb_run = Moesim({"simulate", eplb});
  REQUIRE(eplb_run.status == 0);
  CHECK_THAT(eplb_run.out, Catch::Contains("(experts per GPU: 9, EPLB hierarchical"));
  const auto missing = Moesim({"placement", "show"});
  CHECK(missing.status == 2);
}

}  // namespace
}  // namespace moesim::sim
