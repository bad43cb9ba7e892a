// `moesim model list | show | compare`, run in-process through RunMoesim as a user would.
#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <sstream>

#include "models/model_spec.h"
#include "moesim_runner.h"
#include "proto/model.pb.h"
#include "sim/cli/cli.h"
#include "test_paths.h"

namespace moesim::sim {
namespace {

using Run = testing::MoesimRun;
using testing::Moesim;

const char* kCatalog =
    "dbrx, deepseek-v2, deepseek-v2-lite, deepseek-v3, gpt-oss-120b, gpt-oss-20b, grok-1, kimi-k2, "
    "llama-4-maverick, mixtral-8x22b, mixtral-8x7b, olmoe-1b-7b, phi-3.5-moe, qwen1.5-moe-a2.7b, "
    "qwen2-57b-a14b, qwen3-235b-a22b, qwen3-30b-a3b, snowflake-arctic, switch-base-128";

}  // namespace

TEST_CASE("moesim model list prints one line per catalog model") {
  const Run r = Moesim({"model", "list"});
  REQUIRE(r.status == 0);
  CHECK(r.err.empty());
  for (const std::string& name : models::CatalogNames(*models::CatalogDir())) {
    CHECK_THAT(r.out, Catch::Contains("  " + name + " "));
  }
  // Mixtral-8x7B: 8 experts, top-2, no shared expert, 32 of 32 layers MoE, 46.70B total, 12.88B
  // active (tests/params_test.cc works them out).
  CHECK_THAT(r.out, Catch::Contains("  mixtral-8x7b                8      2       0        32/32"
                                    "    46.70 B    12.88 B\n"));
}

TEST_CASE("moesim model show prints parameters and FLOPs and memory") {
  const Run r = Moesim({"model", "show", "mixtral-8x7b"});
  REQUIRE(r.status == 0);
  CHECK(r.err.empty());
  CHECK_THAT(r.out, Catch::StartsWith("moesim model show: mixtral-8x7b\n"));
  CHECK_THAT(r.out, Catch::Contains("total (all in memory)"));
  CHECK_THAT(r.out, Catch::Contains("46.70 B"));
  CHECK_THAT(r.out, Catch::Contains("published 46.7 B"));
  CHECK_THAT(
      r.out,
      Catch::Contains("  active per token               12.88 B      27.6%   published 12.9 B\n"));
  CHECK_THAT(r.out, Catch::Contains(
                        "  routed experts                 45.10 B      96.6%   per token 11.27 B"));
  // Forward: 27,644,657,664 FLOPs; training 3x; weights: 2 B x 46,702,526,464 = 93.41 GB in BF16.
  CHECK_THAT(r.out, Catch::Contains(
                        "  forward      27.6 GFLOP   (matmul 25.5 GFLOP, attention 2.1 GFLOP)\n"));
  CHECK_THAT(r.out, Catch::Contains("  training     82.9 GFLOP   (3 x forward)\n"));
  CHECK_THAT(r.out, Catch::Contains("  BF16           93.41 GB   <- the spec's dtype\n"));
  CHECK_THAT(r.out, Catch::Contains("  FP32          186.81 GB\n"));
}

TEST_CASE("moesim model show --json prints a ModelSummary") {
  const Run r = Moesim({"model", "show", "deepseek-v3", "--json", "--seq-len", "8192"});
  REQUIRE(r.status == 0);
  pb::ModelSummary s;
  REQUIRE(google::protobuf::util::JsonStringToMessage(r.out, &s).ok());
  CHECK(s.name() == "deepseek-v3");
  CHECK(s.seq_len() == 8192);
  CHECK(s.moe_layers() == 58);
  CHECK(s.dense_layers() == 3);
  CHECK(s.total_params() / 1e9 == Approx(671.0).epsilon(0.002));
  CHECK(s.published_active_params() == 37e9);
  CHECK(s.routed_expert_params() + s.non_expert_params() == s.total_params());
  CHECK(s.training_flops_per_token() == 3 * s.forward_flops_per_token());
  // The contract's names, as later tools read them (64-bit integers are JSON strings).
  for (const char* key : {"\"totalParams\"", "\"activeParams\"", "\"forwardFlopsPerToken\"",
                          "\"weightMemory\"", "\"dtype\": \"FP8\""}) {
    CHECK_THAT(r.out, Catch::Contains(key));
  }
}

TEST_CASE("moesim model show reads a ModelSpec file") {
  const Run r = Moesim({"model", "show", testing::SourcePath("models/examples/dense-40b.pbtxt")});
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::StartsWith("moesim model show: dense-40b\n"));
  CHECK_THAT(r.out, Catch::Contains("dense (one FFN every token uses)"));
  CHECK_THAT(r.out, Catch::Contains("39.78 B"));
}

TEST_CASE("moesim model compare puts compute per token against weights in memory") {
  const Run r = Moesim({"model", "compare", testing::SourcePath("models/examples/dense-40b.pbtxt"),
                        testing::SourcePath("models/examples/moe-120b-8x14b-top2.pbtxt")});
  REQUIRE(r.status == 0);
  CHECK(r.err.empty());
  CHECK_THAT(r.out, Catch::Contains("dense-40b"));
  CHECK_THAT(r.out, Catch::Contains("moe-120b-8x14b-top2"));
  // 119.61B against 39.78B in memory; 36.19B against 39.78B active per token (tests/params_test.cc
  // works them out). Forward FLOPs per token at 4096 tokens: 2 x the active matmul weights (all
  // but the 32000 x 8192 = 0.262B input embedding, a lookup) + attention scores and values,
  // 52 layers x 2 x 4096 x 64 heads x (128 + 128) = 6,979,321,856:
  //   dense-40b: 2 x (39,782,973,440 - 262,144,000) + 6,979,321,856 = 86,020,980,736
  //   MoE:       2 x (36,187,668,480 - 262,144,000) + 6,979,321,856 = 78,830,370,816
  // so 78.83 / 86.02 = 0.916x the compute for 119.61 / 39.78 = 3.007x the weights.
  CHECK_THAT(r.out, Catch::Contains("39.78 B"));
  CHECK_THAT(r.out, Catch::Contains("119.61 B"));
  CHECK_THAT(r.out, Catch::Contains("36.19 B"));
  CHECK_THAT(r.out, Catch::Contains("86.0 GFLOP"));
  CHECK_THAT(r.out, Catch::Contains("78.8 GFLOP"));
  CHECK_THAT(r.out, Catch::Contains("moe-120b-8x14b-top2 against dense-40b: 3.01x the weights in "
                                    "memory, 0.92x the compute per token."));
  // Names from the catalog work too.
  CHECK(Moesim({"model", "compare", "mixtral-8x7b", "deepseek-v3"}).status == 0);
}

TEST_CASE("moesim model: an unknown name lists the catalog") {
  const Run r = Moesim({"model", "show", "mixtral-9x9b"});
  CHECK(r.status == 1);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Catch::StartsWith("moesim: error: model = \"mixtral-9x9b\": unknown model"));
  CHECK_THAT(r.err, Catch::EndsWith(std::string("valid: ") + kCatalog + "\n"));
  CHECK(Moesim({"model", "compare", "mixtral-8x7b", "nope"}).status == 1);
}

TEST_CASE("moesim model: a bad file gets the located error") {
  const std::string path = testing::BadFixture("model_kv_heads.pbtxt");
  const Run r = Moesim({"model", "show", path});
  CHECK(r.status == 1);
  CHECK(r.out.empty());
  CHECK(r.err == "moesim: error: " + path +
                     ":12:3: attention.num_kv_heads = 5: does not divide num_heads = 32; valid: 1, "
                     "2, 4, 8, 16, 32\n");
  const Run missing = Moesim({"model", "show", "/no/such/model.pbtxt"});
  CHECK(missing.status == 1);
  CHECK(missing.err ==
        "moesim: error: /no/such/model.pbtxt: cannot open file: No such file or directory\n");
}

TEST_CASE("moesim model: help names the examples and bad command lines exit 2") {
  const Run help = Moesim({"model", "--help"});
  CHECK(help.status == 0);
  CHECK_THAT(help.out, Catch::Contains("models/examples/dense-40b.pbtxt"));
  CHECK_THAT(help.out, Catch::Contains("models/examples/moe-120b-8x14b-top2.pbtxt"));
  CHECK(Moesim({"model"}).status == 2);          // a subcommand is required
  CHECK(Moesim({"model", "show"}).status == 2);  // and show needs a model
  CHECK(Moesim({"model", "compare", "dbrx"}).status == 2);
  CHECK(Moesim({"model", "show", "dbrx", "--seq-len", "0"}).status == 2);
}

}  // namespace moesim::sim
