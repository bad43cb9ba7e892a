// `moesim trace gen | import | stats`, run in-process through RunMoesim as a user would.
#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "models/expert_counts.h"
#include "models/synthetic.h"
#include "models/trace.h"
#include "moesim_runner.h"
#include "test_paths.h"

namespace moesim::sim {
namespace {

using Run = testing::MoesimRun;
using testing::Moesim;

using testing::TempPath;

std::string Fixture(const std::string& name) {
  return testing::SourcePath("tests/fixtures/traces/" + name);
}

// All records of a trace, in order.
std::vector<pb::TraceRecord> ReadRecords(const std::string& path, pb::TraceHeader* header) {
  auto r = models::TraceReader::Open(path);
  REQUIRE(r.ok());
  *header = r->header();
  std::vector<pb::TraceRecord> records;
  pb::TraceRecord rec;
  for (;;) {
    auto got = r->Next(&rec);
    REQUIRE(got.ok());
    if (!*got) break;
    records.push_back(rec);
  }
  return records;
}

}  // namespace

TEST_CASE("moesim trace import --help gives the router JSONL schema") {
  const Run run = Moesim({"trace", "import", "--help"});
  CHECK(run.status == 0);
  CHECK_THAT(run.out, Catch::Contains("megatron-jsonl: one JSON object per line"));
  CHECK_THAT(run.out, Catch::Contains("\"top_indices\": [[5, 1], [0, 7]]"));
  CHECK_THAT(run.out, Catch::Contains("step, layer, rank, num_tokens, topk, top_indices required"));
}

TEST_CASE("moesim trace gen writes steps x layers x ranks records") {
  const std::string path = TempPath("gen.trace");
  const Run r =
      Moesim({"trace",   "gen", "--experts", "16", "--top-k", "2", "--tokens",       "100",
              "--steps", "2",   "--layers",  "3",  "--ranks", "2", "--distribution", "zipf",
              "--alpha", "1.2", "--seed",    "7",  "-o",      path});
  REQUIRE(r.status == 0);
  pb::TraceHeader header;
  const std::vector<pb::TraceRecord> records = ReadRecords(path, &header);
  // 2 steps x 3 layers x 2 ranks = 12 records of 100 tokens x top-2 = 200 ids.
  REQUIRE(records.size() == 12);
  CHECK(header.num_experts() == 16);
  CHECK(header.top_k() == 2);
  CHECK(records[11].step() == 1);
  CHECK(records[11].layer() == 2);
  CHECK(records[11].rank() == 1);
  CHECK(records[11].experts_size() == 200);
  // Steps draw from their own streams: step 0 and step 1 of layer 0, rank 0 differ.
  CHECK(records[0].SerializeAsString() != records[6].SerializeAsString());
  // Same seed, same trace: a second run writes the same bytes.
  const std::string again = TempPath("gen2.trace");
  REQUIRE(Moesim({"trace",   "gen", "--experts", "16", "--top-k", "2",  "--tokens",       "100",
                  "--steps", "2",   "--layers",  "3",  "--ranks", "2",  "--distribution", "zipf",
                  "--alpha", "1.2", "--seed",    "7",  "-o",      again})
              .status == 0);
  pb::TraceHeader header2;
  CHECK(ReadRecords(again, &header2).back().SerializeAsString() ==
        records.back().SerializeAsString());
  std::filesystem::remove(path);
  std::filesystem::remove(again);
}

TEST_CASE("moesim trace gen --router-groups: every token within its top groups") {
  // 64 experts in 8 groups of 8, top-4 from at most 2 groups; zipf and uniform alike.
  for (const char* dist : {"zipf", "uniform"}) {
    const std::string path = TempPath(std::string("gen_groups_") + dist + ".trace");
    const Run r = Moesim({"trace", "gen", "--experts", "64", "--top-k", "4", "--tokens", "500",
                          "--ranks", "2", "--distribution", dist, "--router-groups", "8",
                          "--router-group-topk", "2", "-o", path});
    REQUIRE(r.status == 0);
    pb::TraceHeader header;
    for (const pb::TraceRecord& rec : ReadRecords(path, &header)) {
      for (int t = 0; t < rec.experts_size(); t += 4) {
        uint32_t mask = 0;
        for (int j = 0; j < 4; ++j) mask |= 1u << (rec.experts(t + j) / 8);
        CHECK(__builtin_popcount(mask) <= 2);
      }
    }
    CHECK_THAT(header.source(), Catch::Contains("--router-groups 8 --router-group-topk 2"));
    std::filesystem::remove(path);
  }
  const Run bad =
      Moesim({"trace", "gen", "--experts", "64", "--top-k", "4", "--tokens", "5", "--router-groups",
              "32", "--router-group-topk", "1", "-o", TempPath("bad.trace")});
  CHECK(bad.status == 1);
  CHECK_THAT(bad.err, Catch::Contains("--router-group-topk = 1"));
}

TEST_CASE("moesim trace gen with a model takes its experts and refuses another top-k") {
  const std::string path = TempPath("gen_model.trace");
  const Run ok = Moesim({"trace", "gen", "--model", "mixtral-8x7b", "--tokens", "10",
                         "--distribution", "collapse", "--fraction", "1", "-o", path});
  REQUIRE(ok.status == 0);
  pb::TraceHeader header;
  ReadRecords(path, &header);
  CHECK(header.num_experts() == 8);  // Mixtral 8x7B: 8 experts, top-2
  CHECK(header.top_k() == 2);
  const Run bad = Moesim(
      {"trace", "gen", "--model", "mixtral-8x7b", "--top-k", "4", "--tokens", "10", "-o", path});
  CHECK(bad.status == 1);
  CHECK_THAT(bad.err, Catch::Contains("--top-k = 4"));
  CHECK_THAT(bad.err, Catch::Contains("top-2"));
  std::filesystem::remove(path);
}

TEST_CASE("moesim trace import megatron-jsonl keeps steps layers ranks and scores") {
  const std::string path = TempPath("megatron.trace");
  const Run r = Moesim({"trace", "import", "megatron-jsonl", Fixture("megatron_router.jsonl"), "-o",
                        path, "--experts", "8"});
  REQUIRE(r.status == 0);
  pb::TraceHeader header;
  const std::vector<pb::TraceRecord> records = ReadRecords(path, &header);
  // Three lines, three records; topk 2 from the lines; nested and flat top_indices alike.
  REQUIRE(records.size() == 3);
  CHECK(header.top_k() == 2);
  CHECK(std::vector<uint32_t>(records[0].experts().begin(), records[0].experts().end()) ==
        std::vector<uint32_t>{3, 1, 0, 7, 3, 2});
  CHECK(records[0].weights_size() == 6);
  CHECK(records[1].rank() == 1);
  CHECK(std::vector<uint32_t>(records[1].experts().begin(), records[1].experts().end()) ==
        std::vector<uint32_t>{5, 3, 3, 6});
  CHECK(records[2].layer() == 1);
  std::filesystem::remove(path);
}

TEST_CASE("moesim trace import megatron-jsonl names the line with a missing field") {
  const Run r =
      Moesim({"trace", "import", "megatron-jsonl", Fixture("megatron_missing_field.jsonl"), "-o",
              TempPath("missing.trace"), "--experts", "8"});
  CHECK(r.status == 1);
  // Line 2 has no num_tokens.
  CHECK_THAT(r.err, Catch::Contains("megatron_missing_field.jsonl:2: missing field num_tokens"));
  // Line 1 was already written when line 2 failed; the partial output is removed.
  CHECK_FALSE(std::filesystem::exists(TempPath("missing.trace")));
  std::filesystem::remove(TempPath("missing.trace"));
}

TEST_CASE("moesim trace import csv and npy give the same routing") {
  const std::string csv = TempPath("csv.trace");
  const std::string npy64 = TempPath("npy64.trace");
  const std::string npy32 = TempPath("npy32.trace");
  REQUIRE(
      Moesim({"trace", "import", "csv", Fixture("topk.csv"), "-o", csv, "--experts", "8"}).status ==
      0);
  REQUIRE(Moesim({"trace", "import", "npy", Fixture("topk_int64.npy"), "-o", npy64, "--experts",
                  "8", "--top-k", "2"})
              .status == 0);
  REQUIRE(
      Moesim({"trace", "import", "npy", Fixture("topk_int32.npy"), "-o", npy32, "--experts", "8"})
          .status == 0);
  // All three hold the rows [[3, 1], [0, 7], [3, 2], [5, 3]]: 4 tokens, top-2, one record.
  for (const std::string& path : {csv, npy64, npy32}) {
    pb::TraceHeader header;
    const std::vector<pb::TraceRecord> records = ReadRecords(path, &header);
    REQUIRE(records.size() == 1);
    CHECK(header.top_k() == 2);
    CHECK(records[0].tokens() == 4);
    CHECK(std::vector<uint32_t>(records[0].experts().begin(), records[0].experts().end()) ==
          std::vector<uint32_t>{3, 1, 0, 7, 3, 2, 5, 3});
    std::filesystem::remove(path);
  }
}

TEST_CASE("moesim trace import refuses bad csv and npy input") {
  const std::string out = TempPath("bad.trace");
  const Run bad_id =
      Moesim({"trace", "import", "csv", Fixture("topk_bad_id.csv"), "-o", out, "--experts", "8"});
  CHECK(bad_id.status == 1);
  CHECK_THAT(bad_id.err, Catch::Contains("topk_bad_id.csv:2:3: column 2 = \"x\""));

  const Run range =
      Moesim({"trace", "import", "csv", Fixture("topk.csv"), "-o", out, "--experts", "6"});
  CHECK(range.status == 1);  // line 3 holds expert 7; 6 experts means ids 0..5
  CHECK_THAT(range.err, Catch::Contains("topk.csv:3:3: expert id 7 out of range; valid: 0..5"));

  const Run dtype =
      Moesim({"trace", "import", "npy", Fixture("topk_float32.npy"), "-o", out, "--experts", "8"});
  CHECK(dtype.status == 1);
  CHECK_THAT(dtype.err, Catch::Contains("descr = '<f4'"));

  const Run shape =
      Moesim({"trace", "import", "npy", Fixture("topk_1d.npy"), "-o", out, "--experts", "8"});
  CHECK(shape.status == 1);
  CHECK_THAT(shape.err, Catch::Contains("shape = (8,)"));
  CHECK_THAT(shape.err, Catch::Contains("[tokens, top_k]"));

  const Run top_k = Moesim({"trace", "import", "npy", Fixture("topk_int64.npy"), "-o", out,
                            "--experts", "8", "--top-k", "4"});
  CHECK(top_k.status == 1);  // shape[1] = 2 against --top-k 4
  CHECK_THAT(top_k.err, Catch::Contains("top_k = 2 in the input but --top-k 4"));
  std::filesystem::remove(out);
}

TEST_CASE("moesim trace import csv: many files by --pattern, sorted by (step, layer, rank)") {
  // 2 steps x 1 layer x 2 ranks, one token each, written out of order; a quoted glob, expanded by
  // moesim, plus one file named on its own.
  const std::filesystem::path dir = TempPath("import_many");
  std::filesystem::create_directories(dir);
  const std::pair<const char*, const char*> files[] = {{"r1_s1.csv", "e0,e1\n7,6\n"},
                                                       {"r0_s1.csv", "5,4\n"},
                                                       {"r1_s0.csv", "3,2\n"},
                                                       {"r0_s0.csv", "1,0\n"}};
  for (const auto& [name, text] : files) std::ofstream(dir / name) << text;
  const std::string out = TempPath("many.trace");
  const Run run = Moesim({"trace", "import", "csv", (dir / "r1_*.csv").string(),
                          (dir / "r0_s0.csv").string(), (dir / "r0_s1.csv").string(), "-o", out,
                          "--experts", "8", "--pattern", "r{rank}_s{step}.csv", "--layer", "2"});
  INFO(run.err);
  REQUIRE(run.status == 0);
  CHECK_THAT(run.out, Catch::Contains("4 tokens in 4 records, 8 experts, top-2, 2 step(s) x "
                                      "1 layer(s) x 2 rank(s) from 4 files"));
  pb::TraceHeader header;
  const std::vector<pb::TraceRecord> records = ReadRecords(out, &header);
  REQUIRE(records.size() == 4);
  CHECK(header.num_ranks() == 2);
  CHECK(header.num_layers() == 3);
  // (step 0, rank 0) [1, 0], (0, 1) [3, 2], (1, 0) [5, 4], (1, 1) [7, 6], all at layer 2.
  const std::vector<std::vector<uint32_t>> want = {{1, 0}, {3, 2}, {5, 4}, {7, 6}};
  for (size_t i = 0; i < 4; ++i) {
    CHECK(records[i].step() == i / 2);
    CHECK(records[i].rank() == i % 2);
    CHECK(records[i].layer() == 2);
    CHECK(std::vector<uint32_t>(records[i].experts().begin(), records[i].experts().end()) ==
          want[i]);
  }
  // A file away: the first missing cell is named; --rank beside {rank}: refused.
  std::filesystem::remove(dir / "r1_s0.csv");
  const Run hole = Moesim({"trace", "import", "csv", (dir / "*.csv").string(), "-o", out,
                           "--experts", "8", "--pattern", "r{rank}_s{step}.csv"});
  CHECK(hole.status == 1);
  CHECK_THAT(hole.err, Catch::Contains("no file for step 0, layer 0, rank 1"));
  const Run twice = Moesim({"trace", "import", "csv", (dir / "*.csv").string(), "-o", out,
                            "--experts", "8", "--pattern", "r{rank}_s{step}.csv", "--rank", "1"});
  CHECK(twice.status == 1);
  CHECK_THAT(twice.err, Catch::Contains("--rank and --pattern's {rank} both give the rank"));
  const Run no_pattern =
      Moesim({"trace", "import", "csv", (dir / "*.csv").string(), "-o", out, "--experts", "8"});
  CHECK(no_pattern.status == 1);
  CHECK_THAT(no_pattern.err, Catch::Contains("3 csv/npy files: each holds one (step, layer, "
                                             "rank), which --pattern reads from its name"));
  std::filesystem::remove_all(dir);
  std::filesystem::remove(out);
}

TEST_CASE("moesim trace merge --along rank: the stats of the merge are the sum of the parts") {
  const std::string a = TempPath("merge_cli_a.trace"), b = TempPath("merge_cli_b.trace");
  const std::string out = TempPath("merge_cli.trace");
  for (const auto& [path, seed] : {std::pair{a, "1"}, std::pair{b, "2"}}) {
    REQUIRE(Moesim({"trace", "gen", "--experts", "8", "--top-k", "2", "--tokens", "64",
                    "--distribution", "zipf", "--seed", seed, "-o", path})
                .status == 0);
  }
  const Run run = Moesim({"trace", "merge", a, b, "-o", out, "--along", "rank"});
  INFO(run.err);
  REQUIRE(run.status == 0);
  CHECK(run.out == "moesim trace merge: wrote " + out +
                       ": 2 records, 128 tokens from 2 traces; ranks 0..1, layers 0..0, steps "
                       "0..0\n");
  auto sa = models::CountTrace(a), sb = models::CountTrace(b), merged = models::CountTrace(out);
  REQUIRE(sa.ok());
  REQUIRE(sb.ok());
  REQUIRE(merged.ok());
  CHECK(merged->ranks == 2);
  CHECK(merged->tokens[0] == 128);
  for (size_t e = 0; e < 8; ++e) CHECK(merged->counts[0][e] == sa->counts[0][e] + sb->counts[0][e]);
  // Without --along both hold (step 0, layer 0, rank 0).
  const Run overlap = Moesim({"trace", "merge", a, b, "-o", out});
  CHECK(overlap.status == 1);
  CHECK_THAT(overlap.err, Catch::Contains("step 0, layer 0, rank 0 is also in " + a));
  for (const std::string& p : {a, b, out}) std::filesystem::remove(p);
}

TEST_CASE("moesim trace stats refuses a trace whose top-k disagrees with the model") {
  const std::string path = TempPath("topk.trace");
  REQUIRE(Moesim({"trace", "gen", "--experts", "64", "--top-k", "2", "--tokens", "10", "-o", path})
              .status == 0);
  const Run r = Moesim({"trace", "stats", path, "--model", "olmoe-1b-7b"});
  CHECK(r.status == 1);  // OLMoE-1B-7B routes top-8
  CHECK_THAT(r.err, Catch::Contains("header.top_k = 2"));
  CHECK_THAT(r.err, Catch::Contains("uses top-8"));
  std::filesystem::remove(path);
}

TEST_CASE("moesim trace stats on a trace of the OLMoE arxiv layer 0 counts matches the counts") {
  auto table = models::ExpertCounts::ReadCsv(testing::SharedData("routing/expert_counts_topk.csv"));
  REQUIRE(table.ok());
  const std::vector<uint64_t>* counts = table->Find("olmoe", "arxiv", 0);
  REQUIRE(counts != nullptr);
  // 208,896 tokens x top-8 = 1,671,168 selections: exactly the file's total, so no scaling.
  const models::RoutingShape shape{
      .ranks = 1, .layers = 1, .tokens_per_rank = 208896, .num_experts = 64, .top_k = 8};
  auto routing = models::CountsRouting(shape, *counts, /*seed=*/1, /*layer=*/0);
  REQUIRE(routing.ok());
  const std::string path = TempPath("olmoe.trace");
  {
    pb::TraceHeader header;
    header.set_model("olmoe-1b-7b");
    header.set_num_experts(64);
    header.set_top_k(8);
    header.set_source("CountsRouting of olmoe, arxiv, layer 0 (expert_counts_topk.csv)");
    auto w = models::TraceWriter::Create(path, header);
    REQUIRE(w.ok());
    pb::TraceRecord record;
    record.set_tokens(208896);
    record.mutable_experts()->Add(routing->experts[0].begin(), routing->experts[0].end());
    REQUIRE(w->Write(record).ok());
    REQUIRE(w->Close().ok());
  }
  const Run r = Moesim({"trace", "stats", path, "--ep", "8", "--model", "olmoe-1b-7b"});
  REQUIRE(r.status == 0);
  // The hottest expert has 204,013 selections; mean = 1,671,168 / 64 = 26,112;
  // max/mean = 204,013 / 26,112 = 7.813, the counts file's own imbalance.
  CHECK_THAT(r.out, Catch::Contains("208896"));
  CHECK_THAT(r.out, Catch::Contains("7.813"));
  CHECK_THAT(r.out, Catch::Contains("tokens per EP rank (8 ranks, contiguous)"));
  std::filesystem::remove(path);
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("moesim trace gen measured deals the OLMoE counts and refuses options of other kinds") {
  const std::string path = TempPath("measured.trace");
  const std::string counts = testing::SharedData("routing/expert_counts_topk.csv");
  // 8 ranks x 26,112 tokens = 208,896 tokens: the counts' own token count, so no scaling.
  const Run gen = Moesim({"trace", "gen", "--model", "olmoe-1b-7b", "--tokens", "26112", "--ranks",
                          "8", "--distribution", "measured", "--counts", counts, "--counts-model",
                          "olmoe", "--counts-domain", "arxiv", "-o", path});
  REQUIRE(gen.status == 0);
  const Run stats = Moesim({"trace", "stats", path});
  REQUIRE(stats.status == 0);
  CHECK_THAT(stats.out, Catch::Contains("7.813"));  // 204,013 / 26,112, as in the counts file

  const Run alpha = Moesim({"trace", "gen", "--experts", "8", "--top-k", "2", "--tokens", "4",
                            "--alpha", "2", "-o", path});
  CHECK(alpha.status == 1);  // --alpha with the default uniform distribution is a mistake
  CHECK_THAT(alpha.err, Catch::Contains("--alpha applies to --distribution zipf only"));
  const Run layer =
      Moesim({"trace", "gen", "--model", "olmoe-1b-7b", "--tokens", "4", "--distribution",
              "measured", "--counts", counts, "--counts-model", "olmoe", "--counts-domain", "arxiv",
              "--counts-layer", "3", "-o", path});
  CHECK(layer.status == 1);  // the file has layers 0, 7 and 15
  CHECK_THAT(layer.err, Catch::Contains("layers: 0, 7, 15"));
  std::filesystem::remove(path);
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("moesim trace import megatron-jsonl names the line of a bad id or count") {
  const std::string input = TempPath("bad.jsonl");
  const std::string out = TempPath("bad_jsonl.trace");
  std::ofstream(input)
      << R"({"step": 0, "layer": 0, "rank": 0, "num_tokens": 1, "topk": 2, "top_indices": [1, 2]})"
      << "\n"
      << R"({"step": 0, "layer": 0, "rank": 1, "num_tokens": 1, "topk": 2, "top_indices": [1, 9]})"
      << "\n";
  const Run range =
      Moesim({"trace", "import", "megatron-jsonl", input, "-o", out, "--experts", "8"});
  CHECK(range.status == 1);  // line 2 holds expert 9; 8 experts means ids 0..7
  CHECK_THAT(range.err, Catch::Contains("bad.jsonl:2: expert id 9 out of range; valid: 0..7"));

  std::ofstream(input)
      << R"({"step": 0, "layer": 0, "rank": 0, "num_tokens": 2, "topk": 2, "top_indices": [1, 2]})"
      << "\n";
  const Run count =
      Moesim({"trace", "import", "megatron-jsonl", input, "-o", out, "--experts", "8"});
  CHECK(count.status == 1);  // num_tokens x topk = 2 x 2 = 4 ids expected, 2 given
  CHECK_THAT(count.err,
             Catch::Contains(
                 "bad.jsonl:1: top_indices holds 2 expert ids; num_tokens x topk = 2 x 2 = 4"));
  std::filesystem::remove(input);
  std::filesystem::remove(out);
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("moesim trace import counts draws a trace whose totals are the counts") {
  const std::string out =
      (std::filesystem::temp_directory_path() / "moesim_counts_import.trace").string();
  const auto imported = testing::Moesim(
      {"trace", "import", "counts", testing::SharedData("routing/expert_counts_topk.csv"), "-o",
       out, "--model", "olmoe-1b-7b", "--tokens", "26112", "--ranks", "8", "--counts-model",
       "olmoe", "--counts-domain", "arxiv"});
  REQUIRE(imported.status == 0);
  const auto stats = testing::Moesim({"trace", "stats", out});
  REQUIRE(stats.status == 0);
  // 8 x 26,112 = 208,896 tokens: the measured batch, so the counts are used as they are and the
  // hottest expert's 204,013 selections over the mean of 26,112 give 7.813.
  CHECK_THAT(stats.out, Catch::Contains("      0       208896     7.813"));
  std::filesystem::remove(out);
  const auto no_tokens = testing::Moesim({"trace", "import", "counts",
                                          testing::SharedData("routing/expert_counts_topk.csv"),
                                          "-o", out, "--model", "olmoe-1b-7b"});
  CHECK(no_tokens.status == 1);
  CHECK_THAT(no_tokens.err, Catch::Contains("--tokens = 0: counts give totals, not tokens"));
}

TEST_CASE("moesim trace stats --ep prints the dispatch send matrix") {
  const auto r = testing::Moesim({"trace", "stats",
                                  testing::SourcePath("scenarios/traces/olmoe-zipf-4steps.trace"),
                                  "--ep", "8"});
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("layer 0 dispatch send matrix"));
  // Row 0: rank 0's 4 x 512 x 8 = 16,384 selections by destination EP rank (8 experts each); the
  // columns add up to the tokens per EP rank printed above (77,248 for rank 0, the hot experts').
  CHECK_THAT(
      r.out,
      Catch::Contains(
          "         9695      2446      1364       862       680       540       414       383"));
  CHECK_THAT(r.out,
             Catch::Contains("tokens per EP rank (8 ranks, contiguous): 77248"));
}

}  // namespace moesim::sim

namespace moesim::sim {

// tests/fixtures/bad: each hostile input of moesim issue #17 gets one line and exit 1.
TEST_CASE("moesim trace stats on a layer or rank of 2^32-1: an error at the record, no crash") {
  const std::string layer = testing::BadFixture("trace_layer_overflow.moetrace");
  const Run stats = Moesim({"trace", "stats", layer});
  CHECK(stats.status == 1);
  CHECK(stats.err == "moesim: error: " + layer +
                         ": record 0 (byte 7): layer = 4294967295: beyond the trace format's "
                         "limit of 1024 layers (kMaxTraceLayers); valid: 0..1023\n");
  const std::string rank = testing::BadFixture("trace_rank_overflow.moetrace");
  const Run ep = Moesim({"trace", "stats", rank, "--ep", "4"});
  CHECK(ep.status == 1);
  CHECK(ep.err == "moesim: error: " + rank +
                      ": record 0 (byte 7): rank = 4294967295: beyond the trace format's limit "
                      "of 1048576 ranks (kMaxTraceRanks); valid: 0..1048575\n");
}

TEST_CASE("moesim trace import: a layer of 2^32-1, deep JSON, a directory or /dev/zero refused") {
  const std::string out = TempPath("hostile.moetrace");
  std::filesystem::remove(out);
  const std::string layer = testing::BadFixture("megatron_layer_overflow.jsonl");
  const Run big = Moesim({"trace", "import", "megatron-jsonl", layer, "-o", out, "--experts", "8"});
  CHECK(big.status == 1);
  CHECK(big.err == "moesim: error: " + layer +
                       ":1: layer = 4294967295: beyond the trace format's limit of 1024 layers "
                       "(kMaxTraceLayers); valid: 0..1023\n");
  CHECK_FALSE(std::filesystem::exists(out));  // no trace left to crash `trace stats` later
  // 100 nested '[' after a 78-character prefix whose '{' is level 1: the 64th '[' (column
  // 78 + 64 = 142) is level 65, one past the limit.
  const std::string deep = testing::BadFixture("megatron_deep_nesting.jsonl");
  const Run nested =
      Moesim({"trace", "import", "megatron-jsonl", deep, "-o", out, "--experts", "8"});
  CHECK(nested.status == 1);
  CHECK(nested.err == "moesim: error: " + deep +
                          ":1:142: JSON nested deeper than 64 levels; valid: at most 64 levels of "
                          "[ and {\n");
  const std::string dir = testing::SourcePath("tests/fixtures/bad");
  const Run folder = Moesim({"trace", "import", "csv", dir, "-o", out, "--experts", "8"});
  CHECK(folder.err == "moesim: error: " + dir + ": is a directory; valid: a regular file\n");
  const Run zero =
      Moesim({"trace", "import", "megatron-jsonl", "/dev/zero", "-o", out, "--experts", "8"});
  CHECK(zero.status == 1);
  CHECK(zero.err == "moesim: error: /dev/zero: is a character device; valid: a regular file\n");
  CHECK_FALSE(std::filesystem::exists(out));
}

TEST_CASE("moesim trace import: a CSV cell of 200 bytes is echoed as 80 characters and ...") {
  const std::string csv = TempPath("long_cell.csv");
  std::ofstream(csv) << "0,1\n" << std::string(200, '7') << "x,2\n";
  const std::string out = TempPath("long_cell.moetrace");
  const Run r = Moesim({"trace", "import", "csv", csv, "-o", out, "--experts", "8"});
  CHECK(r.status == 1);
  CHECK(r.err == "moesim: error: " + csv + ":2:1: column 1 = \"" + std::string(80, '7') +
                     "...\" is not an expert id (a non-negative integer)\n");
  CHECK_FALSE(std::filesystem::exists(out));
  std::filesystem::remove(csv);
}

TEST_CASE("moesim trace gen: the output's folder checked first, write errors with errno") {
  const Run missing = Moesim({"trace", "gen", "--experts", "8", "--top-k", "2", "--tokens", "4",
                              "-o", "/no/such/dir/t.moetrace"});
  CHECK(missing.status == 1);
  CHECK(missing.err ==
        "moesim: error: --output = /no/such/dir/t.moetrace: cannot write in folder /no/such/dir: "
        "No such file or directory\n");
  // /dev/full fails every write with ENOSPC, as a full disk does: an error, never exit 0.
  const Run full = Moesim(
      {"trace", "gen", "--experts", "8", "--top-k", "2", "--tokens", "4", "-o", "/dev/full"});
  CHECK(full.status == 1);
  CHECK(full.err ==
        "moesim: error: /dev/full: cannot write the trace file: No space left on "
        "device\n");
  const Run layers = Moesim({"trace", "gen", "--experts", "8", "--top-k", "2", "--tokens", "4",
                             "--layers", "1025", "-o", TempPath("never.moetrace")});
  CHECK(layers.status == 1);
  CHECK(layers.err ==
        "moesim: error: --layers = 1025: more than a trace may hold; valid: 1..1024 "
        "(models/trace.h)\n");
  // The header states the counts; every record is checked against them when read back.
  const std::string path = TempPath("counted.moetrace");
  REQUIRE(Moesim({"trace", "gen", "--experts", "8", "--top-k", "2", "--tokens", "4", "--layers",
                  "3", "--ranks", "2", "-o", path})
              .status == 0);
  pb::TraceHeader header;
  CHECK(ReadRecords(path, &header).size() == 6);  // 1 step x 3 layers x 2 ranks
  CHECK(header.num_layers() == 3);
  CHECK(header.num_ranks() == 2);
  std::filesystem::remove(path);
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("moesim trace stats: min/mean, per-expert loads, placements and JSON") {
  // 6 tokens, top-1 of 4 experts: 0 0 0 1 2 2. Loads {3, 1, 2, 0}: mean 6 / 4 = 1.5, min 0,
  // max 3: min/mean 0, max/mean 2; one idle expert.
  const std::string csv = testing::TempPath("moesim_stats_tokens.csv");
  const std::string trace = testing::TempPath("moesim_stats.trace");
  { std::ofstream(csv) << "0\n0\n0\n1\n2\n2\n"; }
  REQUIRE(Moesim({"trace", "import", "csv", csv, "-o", trace, "--experts", "4"}).status == 0);
  const Run plain = Moesim({"trace", "stats", trace, "--per-expert"});
  REQUIRE(plain.status == 0);
  //         layer tokens max/mean cv entropy idle min/mean mean load
  CHECK_THAT(plain.out, Catch::Contains("  0            6     2.000"));
  CHECK_THAT(plain.out, Catch::Contains("            1     0.000         1.5\n"));
  CHECK_THAT(plain.out, Catch::Contains("        experts   0-3   3 1 2 0\n"));
  // Contiguous over 2 EP ranks: {0, 1} = 4 and {2, 3} = 2, max/mean 4 / 3 = 1.333.
  const Run contiguous = Moesim({"trace", "stats", trace, "--ep", "2"});
  REQUIRE(contiguous.status == 0);
  CHECK_THAT(contiguous.out,
             Catch::Contains("tokens per EP rank (2 ranks, contiguous): 4 2  max/mean 1.333"));
  // Round-robin: rank 0 holds experts 0 and 2 (5 copies), rank 1 experts 1 and 3 (1).
  const Run rr = Moesim({"trace", "stats", trace, "--ep", "2", "--placement", "round-robin"});
  REQUIRE(rr.status == 0);
  CHECK_THAT(rr.out,
             Catch::Contains("tokens per EP rank (2 ranks, round-robin): 5 1  max/mean 1.667"));
  // EPLB on the trace's own loads packs 2 experts per rank to balance them: {3 + 0} and {2 + 1}.
  const Run eplb = Moesim({"trace", "stats", trace, "--ep", "2", "--placement", "eplb"});
  REQUIRE(eplb.status == 0);
  CHECK_THAT(eplb.out, Catch::Contains(": 3 3  max/mean 1.000"));
  // JSON: every expert's load and the EP ranks'.
  const Run json = Moesim({"trace", "stats", trace, "--ep", "2", "--json"});
  REQUIRE(json.status == 0);
  CHECK_THAT(json.out, Catch::Contains("\"expertLoads\": [\n"));
  CHECK_THAT(json.out, Catch::Contains("\"minOverMean\": 0"));
  CHECK_THAT(json.out, Catch::Contains("\"meanLoad\": 1.5"));
  // --placement needs --ep.
  const Run alone = Moesim({"trace", "stats", trace, "--placement", "round-robin"});
  CHECK(alone.status == 1);
  CHECK(alone.err ==
        "moesim: error: --placement needs --ep: the experts are placed over an EP group\n");
  std::filesystem::remove(csv);
  std::filesystem::remove(trace);
}

TEST_CASE("moesim trace import counts says import and keeps the measured layer's label") {
  const std::string out = testing::TempPath("moesim_counts_layer7.trace");
  const Run imported = Moesim({"trace", "import", "counts",
                               testing::SharedData("routing/expert_counts_topk.csv"), "-o", out,
                               "--model", "olmoe-1b-7b", "--tokens", "26112", "--ranks", "8",
                               "--counts-model", "olmoe", "--counts-domain", "arxiv",
                               "--counts-layer", "7"});
  REQUIRE(imported.status == 0);
  CHECK_THAT(imported.out, Catch::StartsWith("moesim trace import: wrote "));
  CHECK_THAT(imported.out, Catch::Contains("1 steps x layer 7 (olmoe, arxiv) x 8 ranks"));
  pb::TraceHeader header;
  const std::vector<pb::TraceRecord> records = ReadRecords(out, &header);
  REQUIRE(records.size() == 8);
  for (const pb::TraceRecord& r : records) CHECK(r.layer() == 7);
  const Run stats = Moesim({"trace", "stats", out});
  REQUIRE(stats.status == 0);
  CHECK_THAT(stats.out, Catch::Contains("\n      7       208896"));
  CHECK_THAT(stats.out, Catch::Contains("  source moesim trace import counts --distribution measured"));
  std::filesystem::remove(out);
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("moesim trace stats --capacity-factor: the copies over each rank's capacity, by expert") {
  // 2 ranks x 4 tokens, top-1 over 2 experts: rank 0 sends experts [0, 0, 0, 1], rank 1
  // [1, 1, 1, 1]. Capacity factor 1: ceil(4 x 1 / 2 x 1) = 2 copies per expert on each rank.
  // Rank 0 drops 3 - 2 = 1 copy of expert 0, rank 1 drops 4 - 2 = 2 of expert 1: [1, 2], 3 of 8.
  // Factor 2: capacity 4, nothing dropped.
  const std::filesystem::path dir = TempPath("capacity_stats");
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "r0.csv") << "e0\n0\n0\n0\n1\n";
  std::ofstream(dir / "r1.csv") << "e0\n1\n1\n1\n1\n";
  const std::string trace = TempPath("capacity.trace");
  REQUIRE(Moesim({"trace", "import", "csv", (dir / "r*.csv").string(), "-o", trace, "--experts",
                  "2", "--pattern", "r{rank}.csv"})
              .status == 0);
  const Run text = Moesim({"trace", "stats", trace, "--capacity-factor", "1"});
  REQUIRE(text.status == 0);
  CHECK_THAT(text.out, Catch::Contains(
                           "dropped at capacity factor 1: 3 of 8 copies (37.50 %); most: expert 1 "
                           "(2)"));
  const Run json = Moesim({"trace", "stats", trace, "--capacity-factor", "1", "--json"});
  REQUIRE(json.status == 0);
  pb::TraceStats stats;
  REQUIRE(google::protobuf::util::JsonStringToMessage(json.out, &stats).ok());
  REQUIRE(stats.layers_size() == 1);
  CHECK(stats.capacity_factor() == 1.0);
  CHECK(stats.layers(0).dropped() == 3);
  CHECK(std::vector<uint64_t>(stats.layers(0).expert_dropped().begin(),
                              stats.layers(0).expert_dropped().end()) ==
        std::vector<uint64_t>{1, 2});
  const Run roomy = Moesim({"trace", "stats", trace, "--capacity-factor", "2"});
  CHECK_THAT(roomy.out, Catch::Contains("dropped at capacity factor 2: 0 of 8 copies (0.00 %)\n"));
  // Without the option: no dropped line; a factor of 0 or less: refused by the option's check.
  CHECK(Moesim({"trace", "stats", trace}).out.find("dropped") == std::string::npos);
  CHECK(Moesim({"trace", "stats", trace, "--capacity-factor", "0"}).status != 0);
  std::filesystem::remove_all(dir);
  std::filesystem::remove(trace);
}

}  // namespace moesim::sim
