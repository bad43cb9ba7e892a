#include "models/model_spec.h"

#include <catch2/catch.hpp>

#include "proto/text_file.h"

namespace moesim::models {
namespace {

pb::ModelSpec Toy() {
  pb::ModelSpec m;
  m.set_name("toy");
  m.set_hidden_size(64);
  m.set_expert_ffn_size(128);
  m.set_num_experts(8);
  m.set_top_k(2);
  m.set_num_layers(4);
  m.set_dtype(pb::BF16);
  return m;
}

}  // namespace

TEST_CASE("The catalog's Mixtral-8x7B has its published hyperparameters") {
  auto m = LoadCatalogModel("mixtral-8x7b", {}, *CatalogDir());
  REQUIRE(m.ok());
  // arXiv:2401.04088 Table 1: dim 4096, hidden_dim 14336, n_layers 32, num_experts 8,
  // top_k_experts 2.
  CHECK(m->hidden_size() == 4096);
  CHECK(m->expert_ffn_size() == 14336);
  CHECK(m->num_layers() == 32);
  CHECK(m->num_experts() == 8);
  CHECK(m->top_k() == 2);
  CHECK(m->dtype() == pb::BF16);
  // Its expert weights: 32 layers x 8 experts x 3 x 4096 x 14336 = 45.1e9 of the published 46.7e9
  // total (attention and embeddings make up the rest).
  const double expert_params = 32.0 * 8 * 3 * 4096 * 14336;
  CHECK(expert_params / 46.7e9 == Approx(0.966).epsilon(0.01));
}

TEST_CASE("An unknown catalog name lists the models that exist") {
  auto m = LoadCatalogModel("mixtral-9x9b", Location{"s.pbtxt", 3, 1}, *CatalogDir());
  REQUIRE_FALSE(m.ok());
  CHECK_THAT(m.error().message(), Catch::StartsWith("s.pbtxt:3:1: model = \"mixtral-9x9b\": "));
  CHECK_THAT(m.error().message(),
             Catch::EndsWith(
                 "valid: dbrx, deepseek-v2, deepseek-v2-lite, deepseek-v3, gpt-oss-120b, "
                 "gpt-oss-20b, grok-1, kimi-k2, llama-4-maverick, mixtral-8x22b, mixtral-8x7b, "
                 "olmoe-1b-7b, phi-3.5-moe, qwen1.5-moe-a2.7b, qwen2-57b-a14b, qwen3-235b-a22b, "
                 "qwen3-30b-a3b, snowflake-arctic, switch-base-128"));
}

TEST_CASE("Expert SwiGLU FFN cost: 3 GEMMs in FLOPs and weights plus activations in bytes") {
  const pb::ModelSpec m = Toy();
  const OpCost c = ExpertFfnCost(m, 10);
  // 6 * n * h * f = 6 * 10 * 64 * 128 = 491,520.
  CHECK(c.flops == 491'520);
  // (3*h*f + 3*n*h + 6*n*f) elements * 2 B = (24,576 + 1,920 + 7,680) * 2 = 68,352 B.
  CHECK(c.bytes.value == 68'352);
  // An expert with no tokens does nothing (grouped GEMM skips it): no weight reads either.
  CHECK(ExpertFfnCost(m, 0).flops == 0);
  CHECK(ExpertFfnCost(m, 0).bytes.value == 0);
  // Ungated (Switch Transformer's ReLU MLP): 2 GEMMs, 4 * 10 * 64 * 128 = 327,680 FLOPs;
  // (2*h*f + 2*n*h + 4*n*f) * 2 B = (16,384 + 1,280 + 5,120) * 2 = 45,568 B.
  pb::ModelSpec relu = Toy();
  relu.set_ffn_kind(pb::ModelSpec::UNGATED);
  CHECK(ExpertFfnCost(relu, 10).flops == 327'680);
  CHECK(ExpertFfnCost(relu, 10).bytes.value == 45'568);
}

TEST_CASE("Router cost: the logits GEMM") {
  const OpCost c = RouterCost(Toy(), 10);
  // 2 * n * h * E = 2 * 10 * 64 * 8 = 10,240 FLOPs; (n*h + h*E + n*E) * 2 B = (640 + 512 + 80) * 2.
  CHECK(c.flops == 10'240);
  CHECK(c.bytes.value == 2'464);
}

TEST_CASE("Element sizes per dtype") {
  CHECK(BytesPerElement(pb::FP32) == 4);
  CHECK(BytesPerElement(pb::BF16) == 2);
  CHECK(BytesPerElement(pb::FP16) == 2);
  CHECK(BytesPerElement(pb::FP8) == 1);
  CHECK(TokenBytes(Toy()).value == 128);  // 64 x 2 B
}

TEST_CASE("Model validation names the bad field") {
  pb::ModelSpec m = Toy();
  m.set_top_k(9);
  Status s = ValidateModelSpec(m, nullptr, "model_spec");
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message() ==
        "model_spec.top_k = 9: more experts per token than the model has; valid: 1 to "
        "num_experts = 8");

  m = Toy();
  m.set_hidden_size(0);
  s = ValidateModelSpec(m, nullptr, "model_spec");
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.error().message(), Catch::StartsWith("model_spec.hidden_size = 0: "));

  m = Toy();
  m.clear_dtype();
  s = ValidateModelSpec(m, nullptr, "model_spec");
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.error().message(), Catch::Contains("valid: FP32, BF16, FP16, FP8"));
}

TEST_CASE("Model validation of layer layout and shared experts") {
  pb::ModelSpec m = Toy();  // 4 layers
  m.set_first_k_dense_layers(4);
  Status s = ValidateModelSpec(m, nullptr, "model_spec");
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message() ==
        "model_spec.first_k_dense_layers = 4: leaves no MoE layer; valid: 0 to num_layers - 1 = 3");

  m = Toy();
  m.set_moe_layer_frequency(5);  // no layer i < 4 has (i + 1) a multiple of 5
  s = ValidateModelSpec(m, nullptr, "model_spec");
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.error().message(), Catch::StartsWith("model_spec.moe_layer_frequency = 5: no layer "
                                                    "would be an MoE layer"));

  m = Toy();
  m.set_moe_layer_frequency(2);  // layers 0 and 2 are dense and need an FFN size
  s = ValidateModelSpec(m, nullptr, "model_spec");
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message() ==
        "model_spec.dense_ffn_size = 0: missing: 2 of the 4 layers are dense; valid: an integer "
        ">= 1");
  m.set_dense_ffn_size(256);
  CHECK(ValidateModelSpec(m, nullptr, "model_spec").ok());

  m = Toy();
  m.set_shared_expert_ffn_size(256);
  s = ValidateModelSpec(m, nullptr, "");
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.error().message(),
             Catch::StartsWith("shared_expert_ffn_size = 256: set but num_shared_experts is 0"));
}

TEST_CASE("Model validation of attention heads") {
  pb::ModelSpec m = Toy();  // hidden 64
  m.mutable_attention()->set_kind(pb::AttentionSpec::GQA);
  m.mutable_attention()->set_num_heads(8);
  m.mutable_attention()->set_num_kv_heads(3);
  Status s = ValidateModelSpec(m, nullptr, "model_spec");
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message() ==
        "model_spec.attention.num_kv_heads = 3: does not divide num_heads = 8; valid: 1, 2, 4, 8");
  m.mutable_attention()->set_num_kv_heads(2);
  CHECK(ValidateModelSpec(m, nullptr, "model_spec").ok());

  // MHA means as many key/value heads as query heads.
  m.mutable_attention()->set_kind(pb::AttentionSpec::MHA);
  s = ValidateModelSpec(m, nullptr, "model_spec");
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.error().message(), Catch::StartsWith("model_spec.attention.num_kv_heads = 2: MHA"));

  // Heads without a kind, and a head width that hidden / heads cannot give.
  m = Toy();
  m.mutable_attention()->set_num_heads(6);
  s = ValidateModelSpec(m, nullptr, "");
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message() ==
        "attention.kind = KIND_UNSPECIFIED: missing: heads are given but not the kind; valid: MHA, "
        "GQA, MLA");
  m.mutable_attention()->set_kind(pb::AttentionSpec::MHA);
  s = ValidateModelSpec(m, nullptr, "");
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.error().message(),
             Catch::StartsWith("attention.head_dim = 0: missing: hidden_size = 64 is not a "
                               "multiple of num_heads = 6"));

  // MLA needs its latent and head widths, and takes no num_kv_heads.
  m = Toy();
  m.mutable_attention()->set_kind(pb::AttentionSpec::MLA);
  m.mutable_attention()->set_num_heads(4);
  s = ValidateModelSpec(m, nullptr, "");
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message() ==
        "attention.kv_lora_rank = 0: missing or zero (required for MLA); valid: an integer >= 1");
  m.mutable_attention()->set_kv_lora_rank(32);
  m.mutable_attention()->set_qk_nope_head_dim(16);
  m.mutable_attention()->set_qk_rope_head_dim(8);
  m.mutable_attention()->set_v_head_dim(16);
  CHECK(ValidateModelSpec(m, nullptr, "").ok());
  m.mutable_attention()->set_kind(pb::AttentionSpec::GQA);
  s = ValidateModelSpec(m, nullptr, "");
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.error().message(),
             Catch::StartsWith("attention.kv_lora_rank = 32: only for kind MLA"));
}

TEST_CASE("Model validation errors point at the line and column") {
  pb::ModelSpec m;
  const char* text =
      "name: \"t\"\n"
      "hidden_size: 64\n"
      "expert_ffn_size: 128\n"
      "num_experts: 8\n"
      "top_k: 2\n"
      "num_layers: 4\n"
      "dtype: BF16\n"
      "attention {\n"
      "  kind: GQA\n"
      "  num_heads: 8\n"
      "  sliding_window: 0\n"
      "  full_attention_every_n_layers: 2\n"
      "}\n"
      "published_total_params: 1e9\n"
      "published_active_params: 2e9\n";
  auto file = TextFile::ParseString(text, "m.pbtxt", &m);
  REQUIRE(file.ok());
  Status s = ValidateModelSpec(m, &*file, "");
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message() ==
        "m.pbtxt:12:3: attention.full_attention_every_n_layers = 2: set without a sliding window; "
        "valid: leave it out, or set sliding_window");
  m.mutable_attention()->set_sliding_window(128);
  s = ValidateModelSpec(m, &*file, "");
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message() ==
        "m.pbtxt:15:1: published_active_params = 2e+09: more than the published total; valid: 0 to "
        "published_total_params = 1e+09");
}

TEST_CASE("Every catalog file passes validation") {
  const std::vector<std::string> names = CatalogNames(*CatalogDir());
  CHECK(names.size() == 19);
  for (const std::string& name : names) {
    INFO(name);
    auto m = LoadCatalogModel(name, {}, *CatalogDir());
    CHECK(m.ok());
    if (m.ok()) CHECK(m->name() == name);  // the file name is the model's name
  }
}

}  // namespace moesim::models
