#include "sim/cli/cli.h"

#include <google/protobuf/util/json_util.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "moesim_runner.h"
#include "proto/result.pb.h"
#include "sim/calibration/calibration_data.h"
#include "test_paths.h"

namespace moesim::sim {
namespace {

using Run = testing::MoesimRun;
using testing::Moesim;

}  // namespace

TEST_CASE("moesim with no arguments simulates the default scenario") {
  const Run r = Moesim({});
  CHECK(r.status == 0);
  CHECK(r.err.empty());
  CHECK_THAT(r.out, Catch::Contains("mixtral-8x7b"));
  CHECK_THAT(r.out, Catch::Contains("Layer 0 dispatch all-to-all"));
  CHECK_THAT(r.out, Catch::Contains("Layer 0 combine all-to-all"));
  CHECK_THAT(r.out, Catch::Contains("total"));
  // `moesim simulate` without a scenario is the same run.
  CHECK(Moesim({"simulate"}).out == r.out);
}

TEST_CASE("moesim simulate prints the seed example's send matrices") {
  const Run r = Moesim({"simulate", testing::SourcePath("scenarios/seed_example.pbtxt")});
  REQUIRE(r.status == 0);
  // GPU 0's dispatch row: 1 kept, 2 to GPU 1, 0 to GPU 2, 1 to GPU 3; 3 sent and 3 received.
  CHECK_THAT(r.out,
             Catch::Contains("  gpu0          1      2      0      1  |       3         3\n"));
}

TEST_CASE("moesim simulate names a workload's kernel rates and the phases they bind") {
  // UCCL-EP's EP 16 row (A03): deepep_normal at DeepEP's 43 GB/s "RDMA" rate, which binds both
  // all-to-alls (the value itself: tests/moe_layer_test.cc, "The kernels' own rates ...").
  const Run r =
      Moesim({"simulate", testing::SourcePath("scenarios/validation/uccl-ep-p5en-ep16.pbtxt")});
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("\n           the kernels at most dispatch 43, combine 43 GB/s "
                                    "per GPU (RDMA: a GPU's tokens x the nodes each reaches, its "
                                    "own included)\n"));
  CHECK_THAT(r.out,
             Catch::Matches("[\\s\\S]*\\n  0      dispatch +[0-9.]+ ms +[0-9.]+ GB +- +kernel "
                            "[\\s\\S]*"));
}

TEST_CASE("moesim simulate --json keeps the JSON contract") {
  const Run r = Moesim({"simulate", testing::SourcePath("scenarios/seed_example.pbtxt"), "--json"});
  REQUIRE(r.status == 0);
  // The contract's names, spelled as later tools read them.
  for (const char* key : {"\"totalNs\"", "\"phases\"", "\"sendMatrices\"", "\"timeNs\"",
                          "\"bytes\"", "\"layer\": 0", "\"tokens\""}) {
    CHECK_THAT(r.out, Catch::Contains(key));
  }
  // Rows are JSON arrays: the dispatch matrix's first row.
  CHECK_THAT(r.out, Catch::Contains("[\n     1,\n     2,\n     0,\n     1\n    ]"));
  pb::Result parsed;
  REQUIRE(google::protobuf::util::JsonStringToMessage(r.out, &parsed).ok());
  CHECK(parsed.total_ns() == 212'944);  // tests/moe_layer_test.cc derives it
  CHECK(parsed.send_matrices(0).phase() == "dispatch");
  CHECK(parsed.send_matrices(0).tokens(0).values(1).number_value() == 2);
}

TEST_CASE("--help works on every level and bad options exit 2") {
  const Run top = Moesim({"--help"});
  CHECK(top.status == 0);
  CHECK_THAT(top.out, Catch::Contains("simulate"));
  const Run sub = Moesim({"simulate", "--help"});
  CHECK(sub.status == 0);
  CHECK_THAT(sub.out, Catch::Contains("--json"));
  const Run bad = Moesim({"simulate", "--no-such-flag"});
  CHECK(bad.status == 2);
  CHECK_THAT(bad.err, Catch::Contains("--no-such-flag"));
  CHECK(Moesim({"simulate", "--fidelity", "packet"}).status == 2);
}

TEST_CASE("moesim simulate and collective --flow-tolerance: said in the header and the JSON") {
  // The flow model's tolerance (sim/network/flow_model.h); its error bound is tests/
  // flow_tolerance_test.cc's. Here: the option reaches the model and the output says so.
  const Run text = Moesim({"simulate", "--fidelity", "flow", "--flow-tolerance", "0.01"});
  REQUIRE(text.status == 0);
  CHECK_THAT(text.out, Catch::Contains("(flow fidelity, tolerance 1 % on direct all-to-alls)"));
  const Run json = Moesim({"simulate", "--fidelity", "flow", "--flow-tolerance", "0.01", "--json"});
  REQUIRE(json.status == 0);
  pb::Result parsed;
  REQUIRE(google::protobuf::util::JsonStringToMessage(json.out, &parsed).ok());
  CHECK(parsed.flow_tolerance() == 0.01);
  CHECK(parsed.executor() == "flow");
  const Run collective = Moesim(
      {"collective", "--fidelity", "flow", "--flow-tolerance", "0.02", "-b", "1M", "-e", "1M"});
  REQUIRE(collective.status == 0);
  CHECK_THAT(collective.out, Catch::Contains("flow model, tolerance 2 % on direct all-to-alls"));
  const Run high = Moesim({"simulate", "--fidelity", "flow", "--flow-tolerance", "0.5"});
  CHECK(high.status == 1);
  CHECK_THAT(high.err, Catch::Contains("--flow-tolerance = 0.5: out of range; valid: 0 to 0.1"));
  const Run analytical = Moesim({"simulate", "--flow-tolerance", "0.01"});
  CHECK(analytical.status == 1);
  CHECK_THAT(analytical.err, Catch::Contains("applies to the flow model only"));
}

// Every bad input: exit status 1 and one line naming file:line:column, the field and what is valid.
TEST_CASE("Bad input: one clear line and never a crash") {
  struct Case {
    std::string file;
    std::string expected;  // the whole message after "moesim: error: <path>"
  };
  const std::vector<Case> cases = {
      {"syntax_error.pbtxt", ":6:20: Need space between number and identifier."},
      {"unknown_field.pbtxt",
       ":5:18: Message type \"moesim.pb.ParallelPlan\" has no field named \"expert_parallel\". "
       "Valid fields: tp, cp, dp, pp, ep, etp, order, pp_first_stage_layers, "
       "pp_last_stage_layers, placement."},
      {"ep_not_dividing_experts.pbtxt",
       ":5:3: plan.ep = 3: does not divide the model's 8 experts; valid: 1, 2"},
      {"plan_product.pbtxt",
       ":6:3: plan = tp 2 x cp 1 x dp 2 x pp 1 = 4: the parallel sizes do not multiply to the 8 "
       "GPUs "
       "of the cluster; valid: sizes whose product is 8 (leave dp out to get gpus / (tp*cp*pp))"},
      {"expert_out_of_range.pbtxt",
       ":12:36: routing.explicit.rank[1].experts[2] = 9: expert id out of range; valid: 0 to 7 "
       "(the "
       "model has 8 experts)"},
      {"token_count_mismatch.pbtxt",
       ":12:20: routing.explicit.rank[1].experts = 3 expert ids: does not match "
       "workload.tokens_per_gpu = 4 tokens x top_k = 1; valid: 4 expert ids"},
      {"unknown_preset.pbtxt",
       ":2:11: cluster.node_preset = \"dgx-h900\": unknown node preset (did you mean "
       "\"dgx-h100\"?); valid: dgx-a100, dgx-h100, "
       "dgx-h200, hgx-h800, gb200-nvl72, pcie-8gpu"},
      // The newline in the value is echoed as \n: the message stays one line.
      {"newline_in_value.pbtxt",
       ":2:11: cluster.node_preset = \"dgx\\nh100\": unknown node preset (did you mean "
       "\"dgx-h100\"?); valid: dgx-a100, "
       "dgx-h100, dgx-h200, hgx-h800, gb200-nvl72, pcie-8gpu"},
      // protobuf's text parser takes any bytes in a string; a proto3 string must be UTF-8.
      {"invalid_utf8.pbtxt",
       ":2:1: name = \"seed\\xff\": not valid UTF-8 text; valid: UTF-8 (a string field of a "
       "protobuf file is text)"},
  };
  for (const Case& c : cases) {
    INFO(c.file);
    const std::string path = testing::BadFixture(c.file);
    const Run r = Moesim({"simulate", path});
    CHECK(r.status == 1);
    CHECK(r.out.empty());
    CHECK(r.err == "moesim: error: " + path + c.expected + "\n");
  }
}

TEST_CASE("Bad input: unknown model lists the catalog") {
  const std::string path = testing::BadFixture("unknown_model.pbtxt");
  const Run r = Moesim({"simulate", path});
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Catch::StartsWith("moesim: error: " + path +
                                      ":3:1: model = \"mixtral-9x9b\": unknown model"));
  CHECK_THAT(
      r.err,
      Catch::EndsWith("valid: dbrx, deepseek-v2, deepseek-v2-lite, deepseek-v3, gpt-oss-120b, "
                      "gpt-oss-20b, grok-1, kimi-k2, llama-4-maverick, mixtral-8x22b, "
                      "mixtral-8x7b, olmoe-1b-7b, phi-3.5-moe, qwen1.5-moe-a2.7b, qwen2-57b-a14b, "
                      "qwen3-235b-a22b, qwen3-30b-a3b, snowflake-arctic, switch-base-128\n"));
}

TEST_CASE("Bad input: a missing file") {
  const Run r = Moesim({"simulate", "/no/such/scenario.pbtxt"});
  CHECK(r.status == 1);
  CHECK(r.err ==
        "moesim: error: /no/such/scenario.pbtxt: cannot open file: No such file or directory\n");
}

TEST_CASE("Bad input: a directory, /dev/zero, a FIFO or a huge file is refused by what it is") {
  const std::string dir = testing::SourcePath("tests/fixtures/bad");
  const Run folder = Moesim({"simulate", dir});
  CHECK(folder.status == 1);
  CHECK(folder.err == "moesim: error: " + dir + ": is a directory; valid: a regular file\n");
  const Run zero = Moesim({"simulate", "/dev/zero"});
  CHECK(zero.status == 1);
  CHECK(zero.err == "moesim: error: /dev/zero: is a character device; valid: a regular file\n");
  const std::string fifo = testing::TempPath("scenario.fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const Run pipe = Moesim({"simulate", fifo});  // would wait for a writer if it were opened
  CHECK(pipe.err == "moesim: error: " + fifo + ": is a FIFO (named pipe); valid: a regular file\n");
  std::filesystem::remove(fifo);
  // 1 GiB + 1 byte (sparse: no disk used), one byte over kMaxInputFileBytes.
  const std::string big = testing::TempPath("huge.pbtxt");
  std::ofstream(big).close();
  std::filesystem::resize_file(big, (uint64_t{1} << 30) + 1);
  const Run huge = Moesim({"simulate", big});
  CHECK(huge.err == "moesim: error: " + big +
                        ": is 1073741825 bytes; valid: at most 1073741824 bytes (1 GiB), the limit "
                        "on a file read whole\n");
  std::filesystem::remove(big);
}

TEST_CASE("Bad input: a 200-character CSV header line is echoed as its first 80 and ...") {
  const std::string csv = testing::BadFixture("long_header.csv");
  const Run r = Moesim({"trace", "gen", "--experts", "8", "--top-k", "2", "--tokens", "4",
                        "--distribution", "measured", "--counts", csv, "--counts-model", "olmoe",
                        "--counts-domain", "arxiv", "-o", testing::TempPath("never.moetrace")});
  CHECK(r.status == 1);
  // The first line: "model,domain,layer,expert,count," (32 characters) and ",extra0" ... "extra29".
  std::ifstream in(csv);
  std::string header;
  std::getline(in, header);
  REQUIRE(header.size() > 80);
  CHECK(r.err == "moesim: error: " + csv + ":1:1: header = " + header.substr(0, 80) +
                     "...: not an expert-counts CSV; valid: model,domain,layer,expert,count\n");
}

TEST_CASE("Outputs: --timeline and --export-alltoallv checked first, write errors with errno") {
  const std::string seed = testing::SourcePath("scenarios/seed_example.pbtxt");
  const Run missing = Moesim({"simulate", seed, "--timeline", "/no/such/dir/t.json"});
  CHECK(missing.status == 1);
  CHECK(missing.out.empty());  // refused before simulating
  CHECK(missing.err ==
        "moesim: error: --timeline = /no/such/dir/t.json: cannot write in folder /no/such/dir: No "
        "such file or directory\n");
  // /dev/full: every write fails with ENOSPC, as on a full disk. It used to exit 0 with nothing
  // written.
  const Run full = Moesim({"simulate", seed, "--timeline", "/dev/full"});
  CHECK(full.status == 1);
  CHECK(full.err ==
        "moesim: error: /dev/full: cannot write the timeline: No space left on device\n");
  const Run matrix = Moesim({"simulate", seed, "--export-alltoallv", "/dev/full"});
  CHECK(matrix.status == 1);
  CHECK(matrix.err ==
        "moesim: error: /dev/full: cannot write the all-to-all(v) matrix: No space left on "
        "device\n");
  // Written whole, then renamed: the timeline is there and is JSON.
  const std::string timeline = testing::TempPath("seed_timeline.json");
  REQUIRE(Moesim({"simulate", seed, "--timeline", timeline}).status == 0);
  std::ifstream in(timeline);
  CHECK(in.peek() == '{');
  std::filesystem::remove(timeline);
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("moesim simulate --hardware: a profile's figures, named by the scenario or the flag") {
  const std::string dir = testing::SourcePath("tests/fixtures/hardware/");
  // The scenario names fixture-cpu.pbtxt beside it: its per-rank model times the layer.
  const Run named = Moesim({"simulate", dir + "with-profile.pbtxt"});
  REQUIRE(named.status == 0);
  CHECK_THAT(named.out, Catch::StartsWith("moesim simulate: with-profile  (profile fixture-cpu: "
                                          "measured figures"));
  // --hardware overrides the scenario's.
  const Run flag = Moesim({"simulate", dir + "with-profile.pbtxt", "--hardware",
                           dir + "fixture-other.pbtxt", "--json"});
  REQUIRE(flag.status == 0);
  pb::Result result;
  REQUIRE(google::protobuf::util::JsonStringToMessage(flag.out, &result).ok());
  CHECK(result.executor() == "profile fixture-other");
  // Same figures, other name: the same times; and the send matrices are still there.
  const Run same = Moesim({"simulate", dir + "with-profile.pbtxt", "--json"});
  pb::Result named_result;
  REQUIRE(google::protobuf::util::JsonStringToMessage(same.out, &named_result).ok());
  CHECK(result.total_ns() == named_result.total_ns());
  CHECK(result.send_matrices_size() == 2);
}

TEST_CASE("Bad input: a scenario naming a missing hardware profile") {
  const Run r =
      Moesim({"simulate", testing::SourcePath("tests/fixtures/hardware/missing-profile.pbtxt")});
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Catch::Contains("missing-profile.pbtxt:30:1: hardware_profile = "
                                    "\"no-such-profile.pbtxt\": no such file"));
  CHECK_THAT(r.err, Catch::Contains("valid: a HardwareProfile .pbtxt path relative to the "
                                    "scenario file"));
  const Run flag = Moesim({"simulate", testing::SourcePath("scenarios/seed_example.pbtxt"),
                           "--hardware", "/nonexistent/profile.pbtxt"});
  CHECK(flag.status == 1);
  CHECK_THAT(flag.err, Catch::Contains("/nonexistent/profile.pbtxt"));
}

}  // namespace moesim::sim

namespace moesim::sim {

namespace {

// `moesim calibrate` and `moesim validate` on the measured Result at `measured`: both exit 1 with
// exactly `expected`.
void CalibrateAndValidateRefuse(const std::string& measured, const std::string& expected) {
  const Run calibrate = Moesim({"calibrate", measured, "--out", testing::TempPath("never.pbtxt")});
  CHECK(calibrate.status == 1);
  CHECK(calibrate.err == expected);
  const Run validate = Moesim(
      {"validate", testing::SourcePath("scenarios/seed_example.pbtxt"), "--measured", measured});
  CHECK(validate.status == 1);
  CHECK(validate.err == expected);
}

}  // namespace

TEST_CASE("Measured Results: one rank_time_ns per GPU, checked before any is used") {
  // 5 rank times in a Result of gpus = 4: calibrate used to abort (std::out_of_range) and validate
  // to pass it; both now refuse it at the field.
  const std::string measured = testing::BadFixture("measured_extra_rank.json");
  const std::string expected =
      "moesim: error: " + measured +
      ": phases[0] (router, layer 0).rank_time_ns = 5 values: one per rank, and the Result has "
      "gpus = 4; valid: 4 values, or none\n";
  CalibrateAndValidateRefuse(measured, expected);
  // --out is checked before anything is read or fitted.
  const Run missing = Moesim({"calibrate", measured, "--out", "/no/such/dir/p.pbtxt"});
  CHECK(missing.err ==
        "moesim: error: --out = /no/such/dir/p.pbtxt: cannot write in folder /no/such/dir: No "
        "such file or directory\n");
}

TEST_CASE("Measured Results: send matrix cells are whole counts, checked before any is used") {
  // Found by fuzzing (tests/fuzz/result_fuzz.cc): a token count of -4.13208e+22 was converted to
  // uint64_t (undefined behaviour) when calibrate compared the matrix with the scenario's.
  const std::string measured = testing::BadFixture("measured_negative_tokens.json");
  const std::string expected =
      "moesim: error: " + measured +
      ": send_matrices[0] (dispatch, layer 0).tokens[1][0] = -4.13208e+22: not a count; valid: a "
      "whole number from 0 to 9007199254740992 (2^53)\n";
  CalibrateAndValidateRefuse(measured, expected);
  // The bounds: 2^53 = 9007199254740992 is taken; 2^53 + 2 (the next double) and 0.5 are not.
  const std::string path = testing::TempPath("measured_cells.json");
  auto with_cell = [&](const std::string& cell) {
    std::ofstream(path) << "{\"executor\": \"measured\", \"gpus\": 1, \"phases\": [{\"name\": "
                           "\"router\", \"timeNs\": \"1\"}], \"sendMatrices\": [{\"phase\": "
                           "\"combine\", \"layer\": 3, \"bytes\": [["
                        << cell << "]]}]}";
    return ReadMeasured(path);
  };
  CHECK(with_cell("9007199254740992").ok());
  auto above = with_cell("9007199254740994");
  REQUIRE_FALSE(above.ok());
  CHECK(above.error().message() ==
        path + ": send_matrices[0] (combine, layer 3).bytes[0][0] = 9007199254740994: not a "
               "count; valid: a whole number from 0 to 9007199254740992 (2^53)");
  auto half = with_cell("0.5");
  REQUIRE_FALSE(half.ok());
  CHECK_THAT(half.error().message(), Catch::Contains(".bytes[0][0] = 0.5: not a count"));
  auto text = with_cell("\"7\"");
  REQUIRE_FALSE(text.ok());
  CHECK_THAT(text.error().message(), Catch::Contains(".bytes[0][0] = \"7\": not a count"));
}

TEST_CASE("Measured Results: protobuf's complaint folded into the one line, never printed") {
  // Field 1 (scenario) holds 'A', 0xff, 'B': not UTF-8. protobuf used to print its own
  // "[libprotobuf ERROR ...]" line first.
  const std::string path = testing::TempPath("bad_utf8.pb");
  std::ofstream(path, std::ios::binary) << std::string("\x0a\x03\x41\xff\x42", 5);
  const Run r = Moesim({"calibrate", path, "--out", testing::TempPath("never.pbtxt")});
  CHECK(r.status == 1);
  CHECK(r.err ==
        "moesim: error: " + path +
            ": not a Result (proto/result.proto): String field 'moesim.pb.Result.scenario' "
            "contains invalid UTF-8 data when parsing a protocol buffer. Use the 'bytes' "
            "type if you intend to send raw bytes.; valid: what `moebench run --out` or "
            "`moebench gemm --out` writes (binary), or its --json in a file ending .json\n");
  std::filesystem::remove(path);
}

}  // namespace moesim::sim
