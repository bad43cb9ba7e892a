// "Did you mean": the nearest known name for a mistyped preset, model, field, enum value or
// command, each in the error that lists what is valid.
#include "proto/did_you_mean.h"

#include <catch2/catch.hpp>

#include "moesim_runner.h"
#include "proto/result.pb.h"
#include "proto/scenario.pb.h"
#include "proto/text_file.h"
#include "topology/presets.h"

namespace moesim {
namespace {

TEST_CASE("Edit distance: insertions, deletions, replacements and swaps, case ignored") {
  CHECK(EditDistance("dgx-h10", "dgx-h100") == 1);   // one insertion
  CHECK(EditDistance("dgx-h900", "dgx-h100") == 1);  // one replacement
  CHECK(EditDistance("simluate", "simulate") == 1);  // two neighbours swapped
  CHECK(EditDistance("ZIPFF", "ZIPF") == 1);
  CHECK(EditDistance("zipf", "ZIPF") == 0);
  CHECK(EditDistance("", "abc") == 3);
  CHECK(EditDistance("kitten", "sitting") == 3);  // k->s, e->i, +g
}

TEST_CASE("The nearest name: near enough for the word's length, the first of equals") {
  const std::vector<std::string> presets = {"dgx-a100", "dgx-h100", "dgx-h200"};
  // dgx-h900 is 1 edit from dgx-h100 and from dgx-h200: the first listed.
  CHECK(ClosestName("dgx-h900", presets) == "dgx-h100");
  CHECK(DidYouMean("dgx-h10", presets) == " (did you mean \"dgx-h100\"?)");
  // A known name, or nothing within 2 edits of an 8-letter word: no suggestion.
  CHECK_FALSE(ClosestName("dgx-h100", presets));
  CHECK_FALSE(ClosestName("mixtral", presets));
  CHECK(DidYouMean("mixtral", presets).empty());
  // Up to 4 characters, at most 1 edit: "ep" is 1 from "pp" and from "tp" (the first wins),
  // "xyz" 2 from both.
  CHECK(ClosestName("ep", {"pp", "tp"}) == "pp");
  CHECK_FALSE(ClosestName("xyz", {"pp", "tp"}));
  // 5 to 8 characters, at most 2 edits: "dgx-h1" is 2 from "dgx-h100"; 3 edits are too many.
  CHECK(ClosestName("dgx-h1", presets) == "dgx-h100");
  CHECK_FALSE(ClosestName("abcdefgh", {"abcdexyz"}));
  // Longer, at most 3: "abcdefghi" is 3 from "abcdefxyz", 4 from "abcdewxyz".
  CHECK(ClosestName("abcdefghi", {"abcdefxyz"}) == "abcdefxyz");
  CHECK_FALSE(ClosestName("abcdefghi", {"abcdewxyz"}));
  // A case-only difference: the name as it is spelled.
  CHECK(ClosestName("zipf", {"UNIFORM", "ZIPF"}) == "ZIPF");
}

TEST_CASE("A mistyped preset gets the nearest preset") {
  auto p = topology::FindNodePreset("dgx-h10", {});
  REQUIRE_FALSE(p.ok());
  CHECK(p.error().message() ==
        "cluster.node_preset = \"dgx-h10\": unknown node preset (did you mean \"dgx-h100\"?); "
        "valid: dgx-a100, dgx-h100, dgx-h200, hgx-h800, gb200-nvl72, pcie-8gpu");
}

TEST_CASE("A mistyped enum value or field in a text file gets the nearest and the valid ones") {
  pb::Scenario scenario;
  auto bad_value = TextFile::ParseString("routing {\n  synthetic { distribution: ZIPFF }\n}\n",
                                         "s.pbtxt", &scenario);
  REQUIRE_FALSE(bad_value.ok());
  // protobuf's sentence, then ours: the nearest value and every value of the field's enum.
  CHECK_THAT(bad_value.error().message(),
             Catch::StartsWith("s.pbtxt:2:35: Unknown enumeration value of \"ZIPFF\" for field "
                               "\"distribution\". Did you mean \"ZIPF\"? Valid values: "
                               "DISTRIBUTION_UNSPECIFIED, UNIFORM, ZIPF, COLLAPSE"));
  auto bad_field = TextFile::ParseString("plan {\n  ep: 8\n  tpp: 2\n}\n", "s.pbtxt", &scenario);
  REQUIRE_FALSE(bad_field.ok());
  CHECK_THAT(bad_field.error().message(),
             Catch::StartsWith("s.pbtxt:3:6: Message type \"moesim.pb.ParallelPlan\" has no field "
                               "named \"tpp\". Did you mean \"tp\"? Valid fields: "));
}

TEST_CASE("A mistyped command gets the nearest command, at any level") {
  const testing::MoesimRun top = testing::Moesim({"simulte", "x.pbtxt"});
  CHECK(top.status == 2);
  CHECK(top.err ==
        "moesim: error: \"simulte\" is not a command of moesim (did you mean \"simulate\"?); "
        "valid: simulate, topo, collective, trace, model, plan, sweep, placement, calibrate, "
        "validate, "
        "report, result, export\n");
  const testing::MoesimRun nested = testing::Moesim({"trace", "stat", "x.moetrace"});
  CHECK(nested.status == 2);
  CHECK_THAT(nested.err, Catch::StartsWith("moesim: error: \"stat\" is not a command of moesim "
                                           "trace (did you mean \"stats\"?); valid: "));
  // Nothing near: CLI11's own message.
  const testing::MoesimRun far = testing::Moesim({"frobnicate"});
  CHECK(far.status == 2);
  CHECK_THAT(far.err, Catch::Contains("frobnicate"));
  CHECK_THAT(far.err, !Catch::Contains("did you mean"));
}

}  // namespace
}  // namespace moesim
