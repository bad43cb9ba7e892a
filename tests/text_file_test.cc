#include "proto/text_file.h"

#include <catch2/catch.hpp>

#include "proto/scenario.pb.h"

namespace moesim {
namespace {

constexpr const char* kText =
    "cluster { node_preset: \"dgx-h100\" }\n"  // line 1
    "plan {\n"                                 // line 2
    "  ep: 8\n"                                // line 3
    "}\n"                                      // line 4
    "routing { explicit {\n"                   // line 5
    "  rank { rank: 0 experts: [1, 2] }\n"     // line 6
    "  rank { rank: 1 experts: [3, 4] }\n"     // line 7
    "} }\n";

}  // namespace

TEST_CASE("TextFile locates fields and nested fields and repeated elements") {
  pb::Scenario s;
  auto file = TextFile::ParseString(kText, "s.pbtxt", &s);
  REQUIRE(file.ok());
  CHECK(s.plan().ep() == 8);
  // Lines and columns count from 1, as editors show them.
  CHECK(file->Locate("plan").ToString() == "s.pbtxt:2:1");
  CHECK(file->Locate("plan.ep").ToString() == "s.pbtxt:3:3");
  CHECK(file->Locate("routing.explicit.rank[1]").ToString() == "s.pbtxt:7:3");
  // "  rank { rank: 1 experts: [3, 4] }": the element 4 stands at column 31.
  CHECK(file->Locate("routing.explicit.rank[1].experts[1]").ToString() == "s.pbtxt:7:31");
}

TEST_CASE("TextFile falls back to the nearest written field and then to the file") {
  pb::Scenario s;
  auto file = TextFile::ParseString(kText, "s.pbtxt", &s);
  REQUIRE(file.ok());
  CHECK(file->Locate("plan.tp").ToString() == "s.pbtxt:2:1");  // tp not written: the plan block
  CHECK(file->Locate("workload.tokens_per_gpu").ToString() == "s.pbtxt");
}

TEST_CASE("TextFile reports syntax errors at line:column") {
  pb::Scenario s;
  auto file = TextFile::ParseString("plan {\n  ep: eight\n}\n", "bad.pbtxt", &s);
  REQUIRE_FALSE(file.ok());
  CHECK(file.error().message().rfind("bad.pbtxt:2:7: ", 0) == 0);
  CHECK_THAT(file.error().message(), Catch::Contains("integer"));
}

TEST_CASE("TextFile names the valid fields when a field is unknown") {
  pb::Scenario s;
  auto file = TextFile::ParseString("plan { epp: 8 }\n", "bad.pbtxt", &s);
  REQUIRE_FALSE(file.ok());
  CHECK_THAT(file.error().message(), Catch::StartsWith("bad.pbtxt:1:"));
  CHECK_THAT(file.error().message(), Catch::Contains("\"epp\""));
  CHECK_THAT(file.error().message(),
             Catch::Contains("Valid fields: tp, cp, dp, pp, ep, etp, order"));
}

TEST_CASE("TextFile says when a file cannot be opened") {
  pb::Scenario s;
  auto file = TextFile::Parse("/no/such/dir/scenario.pbtxt", &s);
  REQUIRE_FALSE(file.ok());
  CHECK(file.error().message() ==
        "/no/such/dir/scenario.pbtxt: cannot open file: No such file or directory");
}

}  // namespace moesim
