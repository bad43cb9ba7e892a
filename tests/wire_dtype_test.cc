// What one token weighs in dispatch and combine (models/wire_dtype.h): BF16, FP8 with its
// per-128-channel fp32 scales, and the model's own dtype when the workload names none.
#include "models/wire_dtype.h"

#include <catch2/catch.hpp>

#include "models/model_spec.h"

namespace moesim::models {
namespace {

pb::ModelSpec WithHidden(uint32_t hidden, pb::DType dtype) {
  pb::ModelSpec m;
  m.set_hidden_size(hidden);
  m.set_dtype(dtype);
  return m;
}

}  // namespace

TEST_CASE("DeepSeek-V3's token: 7,392 B in FP8 dispatch, 14,336 B in BF16 combine") {
  auto v3 = LoadCatalogModel("deepseek-v3", {}, *CatalogDir());
  REQUIRE(v3.ok());
  REQUIRE(v3->hidden_size() == 7168);
  // FP8: 7168 x 1 B of e4m3 values + 7168 / 128 = 56 fp32 scales x 4 B = 224 B: 7,392 B, 51.6% of
  // BF16's 7168 x 2 = 14,336 B (DeepEP's FP8 dispatch sends x and x_scales, its combine BF16).
  CHECK(WireTokenBytes(*v3, WireDtype::kFp8).value == 7392);
  CHECK(WireTokenBytes(*v3, WireDtype::kBf16).value == 14336);
  // Absent: the model's dtype, as before these fields existed. The catalog has FP8 (its released
  // weights), so 7168 x 1 B and no scales: 168 B under DeepEP's FP8 dispatch, and half the BF16
  // combine, which `combine_dtype: "bf16"` now says.
  CHECK(v3->dtype() == pb::FP8);
  CHECK(WireTokenBytes(*v3, std::nullopt).value == 7168);
  CHECK(WireTokenBytes(*v3, std::nullopt) == TokenBytes(*v3));
}

TEST_CASE("A token's wire bytes follow the rule, whatever the model's own dtype") {
  // hidden 4096: FP8 4096 + 32 x 4 = 4,224 B; BF16 8,192 B.
  CHECK(WireTokenBytes(WithHidden(4096, pb::BF16), WireDtype::kFp8).value == 4224);
  CHECK(WireTokenBytes(WithHidden(4096, pb::FP32), WireDtype::kBf16).value == 8192);
  // The model's dtype when absent, without scales: FP32 4 x 4096, FP8 1 x 4096.
  CHECK(WireTokenBytes(WithHidden(4096, pb::FP32), std::nullopt).value == 16384);
  CHECK(WireTokenBytes(WithHidden(4096, pb::FP8), std::nullopt).value == 4096);
  // A last partial group of channels has its own scale: hidden 4000 = 31 x 128 + 32, 32 scales:
  // 4000 + 128 = 4,128 B. hidden 64 (under one group): 64 + 4 = 68 B.
  CHECK(WireTokenBytes(WithHidden(4000, pb::BF16), WireDtype::kFp8).value == 4128);
  CHECK(WireTokenBytes(WithHidden(64, pb::BF16), WireDtype::kFp8).value == 68);
}

TEST_CASE("Wire dtypes are parsed by name; an unknown one names the field and the valid names") {
  const Location where{"s.pbtxt", 12, 3};
  auto fp8 = ParseWireDtype("fp8", where, "workload.dispatch_dtype");
  REQUIRE(fp8.ok());
  CHECK(*fp8 == WireDtype::kFp8);
  auto bf16 = ParseWireDtype("bf16", where, "workload.dispatch_dtype");
  REQUIRE(bf16.ok());
  CHECK(*bf16 == WireDtype::kBf16);
  auto absent = ParseWireDtype("", where, "workload.dispatch_dtype");
  REQUIRE(absent.ok());
  CHECK_FALSE(absent->has_value());
  for (WireDtype d : {WireDtype::kBf16, WireDtype::kFp8}) {
    auto again = ParseWireDtype(ToString(d), where, "f");
    REQUIRE(again.ok());
    CHECK(*again == d);
  }

  auto bad = ParseWireDtype("FP8", where, "workload.combine_dtype");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message() ==
        "s.pbtxt:12:3: workload.combine_dtype = FP8: unknown dtype for the all-to-all; valid: "
        "bf16, fp8 (absent: the model's dtype)");
}

}  // namespace moesim::models
