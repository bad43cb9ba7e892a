#include "models/model_spec.h"

#include <catch2/catch.hpp>

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
  auto m = LoadCatalogModel("mixtral-8x7b", {}, CatalogDir());
  REQUIRE(m.ok());
  // arXiv:2401.04088 Table 1: dim 4096, hidden_dim 14336, n_layers 32, num_experts 8, top_k_experts 2.
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
  auto m = LoadCatalogModel("mixtral-9x9b", Location{"s.pbtxt", 3, 1}, CatalogDir());
  REQUIRE_FALSE(m.ok());
  CHECK_THAT(m.error().message(), Catch::StartsWith("s.pbtxt:3:1: model = \"mixtral-9x9b\": "));
  CHECK_THAT(m.error().message(), Catch::Contains("valid: mixtral-8x7b"));
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

}  // namespace moesim::models
