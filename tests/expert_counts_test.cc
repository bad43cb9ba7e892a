#include "models/expert_counts.h"

#include <catch2/catch.hpp>

namespace moesim::models {

TEST_CASE("Expert counts CSV rows are grouped by model and domain and layer") {
  // CRLF line ends, as in the shared data file.
  auto t = ExpertCounts::ParseCsv(
      "model,domain,layer,expert,count\r\n"
      "m,web,0,1,7\r\n"
      "m,web,0,0,3\r\n"
      "m,code,2,0,5\r\n"
      "m,code,2,1,0\r\n",
      "c.csv");
  REQUIRE(t.ok());
  REQUIRE(t->Find("m", "web", 0) != nullptr);
  CHECK(*t->Find("m", "web", 0) == std::vector<uint64_t>{3, 7});  // index = expert
  CHECK(*t->Find("m", "code", 2) == std::vector<uint64_t>{5, 0});
  CHECK(t->Find("m", "web", 2) == nullptr);
  CHECK(t->Models() == std::vector<std::string>{"m"});
  CHECK(t->Domains("m") == std::vector<std::string>{"code", "web"});
  CHECK(t->Layers("m", "code") == std::vector<uint32_t>{2});
}

TEST_CASE("Expert counts CSV errors name the line and column") {
  auto header = ExpertCounts::ParseCsv("model,layer,count\n", "c.csv");
  REQUIRE_FALSE(header.ok());
  CHECK(header.error().message() ==
        "c.csv:1:1: header = model,layer,count: not an expert-counts CSV; valid: "
        "model,domain,layer,expert,count");

  auto number = ExpertCounts::ParseCsv("model,domain,layer,expert,count\nm,web,0,0,-3\n", "c.csv");
  REQUIRE_FALSE(number.ok());
  CHECK(number.error().message() == "c.csv:2:11: count = -3: not a non-negative integer");

  auto columns = ExpertCounts::ParseCsv("model,domain,layer,expert,count\nm,web,0,0\n", "c.csv");
  REQUIRE_FALSE(columns.ok());
  CHECK(columns.error().message() ==
        "c.csv:2:1: row = 4 fields: wrong number of columns; valid: 5 "
        "(model,domain,layer,expert,count)");

  auto twice = ExpertCounts::ParseCsv("model,domain,layer,expert,count\nm,web,0,0,1\nm,web,0,0,2\n",
                                      "c.csv");
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.error().message() ==
        "c.csv:3:9: expert = 0: given twice for m/web/0; valid: each expert once per model, "
        "domain and layer");

  auto gap = ExpertCounts::ParseCsv("model,domain,layer,expert,count\nm,web,0,0,1\nm,web,0,2,2\n",
                                    "c.csv");
  REQUIRE_FALSE(gap.ok());
  CHECK(gap.error().message() ==
        "c.csv:2:1: m/web/0: no row for expert 1; valid: experts 0 to 2, each once");

  auto missing = ExpertCounts::ReadCsv("/nonexistent/counts.csv");
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error().message(),
             Catch::StartsWith("/nonexistent/counts.csv: cannot open file: "));
}

}  // namespace moesim::models
