// Merging traces (models/trace_merge.h): shapes that must agree, shifts along an axis, overlaps.
#include "models/trace_merge.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "models/trace.h"
#include "test_paths.h"

namespace moesim::models {
namespace {

// A trace of one record per (step, rank) of layer 0: `ids[i]` the top-1 experts of rank i.
std::string WriteMergeInput(const std::string& name, uint32_t experts,
                            const std::vector<std::vector<uint32_t>>& ids, uint64_t step = 0,
                            const std::string& model = "") {
  const std::string path = testing::TempPath(name);
  pb::TraceHeader header;
  header.set_num_experts(experts);
  header.set_top_k(1);
  header.set_model(model);
  header.set_source("test " + name);
  auto w = TraceWriter::Create(path, header);
  REQUIRE(w.ok());
  for (uint32_t r = 0; r < ids.size(); ++r) {
    pb::TraceRecord rec;
    rec.set_step(step);
    rec.set_rank(r);
    rec.set_tokens(ids[r].size());
    rec.mutable_experts()->Add(ids[r].begin(), ids[r].end());
    REQUIRE(w->Write(rec).ok());
  }
  REQUIRE(w->Close().ok());
  return path;
}

}  // namespace

TEST_CASE("trace merge --along rank: two 1-rank traces make one 2-rank trace, loads summed") {
  const std::string a = WriteMergeInput("merge_a.trace", 4, {{0, 0, 1, 2}});
  const std::string b = WriteMergeInput("merge_b.trace", 4, {{3, 3, 3, 0}});
  const std::string out = testing::TempPath("merge_ab.trace");
  auto s = MergeTraces({a, b}, out, {.along = TraceAxis::kRank});
  REQUIRE(s.ok());
  CHECK(s->records == 2);
  CHECK(s->tokens == 8);
  CHECK(s->ranks == 2);
  auto merged = CountTrace(out);
  REQUIRE(merged.ok());
  // A's loads [2, 1, 1, 0] + B's [1, 0, 0, 3] = [3, 1, 1, 3], over 4 + 4 = 8 tokens, ranks 0 and 1.
  CHECK(merged->ranks == 2);
  CHECK(merged->counts.at(0) == std::vector<uint64_t>{3, 1, 1, 3});
  CHECK(merged->tokens.at(0) == 8);
  CHECK_THAT(merged->header.source(), Catch::Contains("moesim trace merge --along rank of 2"));
  // B's record is now rank 1, its ids unchanged.
  auto reader = TraceReader::Open(out);
  REQUIRE(reader.ok());
  pb::TraceRecord rec;
  REQUIRE(*reader->Next(&rec));
  CHECK(rec.rank() == 0);
  REQUIRE(*reader->Next(&rec));
  CHECK(rec.rank() == 1);
  CHECK(std::vector<uint32_t>(rec.experts().begin(), rec.experts().end()) ==
        std::vector<uint32_t>{3, 3, 3, 0});
  for (const std::string& p : {a, b, out}) std::filesystem::remove(p);
}

TEST_CASE("trace merge --along step shifts by the steps before; without it cells must not meet") {
  // A holds step 1 (ranks 0 and 1), B step 0: A's extent is 1 + its largest step = 2, so along
  // step B's step 0 becomes step 2.
  const std::string a0 = WriteMergeInput("merge_s0.trace", 4, {{0}, {1}}, 1);
  const std::string b = WriteMergeInput("merge_s1.trace", 4, {{2}, {3}});
  const std::string out = testing::TempPath("merge_steps.trace");
  auto s = MergeTraces({a0, b}, out, {.along = TraceAxis::kStep});
  REQUIRE(s.ok());
  CHECK(s->max_step == 2);
  SECTION("no --along: the same (step, layer, rank) in two traces is an error naming both") {
    const std::string c = WriteMergeInput("merge_s2.trace", 4, {{3}, {2}});
    auto overlap = MergeTraces({b, c}, out, {});
    REQUIRE_FALSE(overlap.ok());
    CHECK_THAT(overlap.error().message(),
               Catch::Contains(c + ": record 0: step 0, layer 0, rank 0 is also in " + b));
    std::filesystem::remove(c);
  }
  for (const std::string& p : {a0, b, out}) std::filesystem::remove(p);
}

TEST_CASE("trace merge refuses traces of different experts, top-k or model, naming both") {
  const std::string a = WriteMergeInput("merge_e4.trace", 4, {{0}}, 0, "olmoe-1b-7b");
  const std::string b = WriteMergeInput("merge_e8.trace", 8, {{0}});
  const std::string c = WriteMergeInput("merge_m.trace", 4, {{0}}, 0, "mixtral-8x7b");
  const std::string out = testing::TempPath("merge_bad.trace");
  auto experts = MergeTraces({a, b}, out, {.along = TraceAxis::kRank});
  REQUIRE_FALSE(experts.ok());
  CHECK(experts.error().message() ==
        b + ": header.num_experts = 8 but " + a +
            " has 4; traces merge only when they agree on num_experts, top_k and the model");
  auto model = MergeTraces({a, c}, out, {.along = TraceAxis::kRank});
  REQUIRE_FALSE(model.ok());
  CHECK_THAT(model.error().message(),
             Catch::Contains("header.model = \"mixtral-8x7b\" but " + a + " has \"olmoe-1b-7b\""));
  CHECK_FALSE(std::filesystem::exists(out));  // nothing left behind
  auto one = MergeTraces({a}, out, {});
  REQUIRE_FALSE(one.ok());
  CHECK_THAT(one.error().message(), Catch::Contains("merging needs at least two traces"));
  auto axis = ParseTraceAxis("expert");
  REQUIRE_FALSE(axis.ok());
  CHECK_THAT(axis.error().message(), Catch::Contains("step, layer, rank"));
  for (const std::string& p : {a, b, c}) std::filesystem::remove(p);
}

}  // namespace moesim::models
