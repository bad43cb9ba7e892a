#include "models/wire_dtype.h"

#include <string>

#include "models/model_spec.h"

namespace moesim::models {

std::string_view ToString(WireDtype dtype) {
  switch (dtype) {
    case WireDtype::kBf16:
      return "bf16";
    case WireDtype::kFp8:
      return "fp8";
  }
  return "?";
}

StatusOr<std::optional<WireDtype>> ParseWireDtype(std::string_view name, const Location& where,
                                                  std::string_view field) {
  if (name.empty()) return std::optional<WireDtype>();
  for (WireDtype d : {WireDtype::kBf16, WireDtype::kFp8}) {
    if (name == ToString(d)) return std::optional<WireDtype>(d);
  }
  return InputError(where, field, name, "unknown dtype for the all-to-all",
                    "bf16, fp8 (absent: the model's dtype)");
}

Bytes WireTokenBytes(const pb::ModelSpec& model, std::optional<WireDtype> dtype) {
  const uint64_t h = model.hidden_size();
  if (!dtype) return TokenBytes(model);
  switch (*dtype) {
    case WireDtype::kBf16:
      return Bytes{2 * h};
    case WireDtype::kFp8:
      return Bytes{h + (h + kFp8ScaleChannels - 1) / kFp8ScaleChannels * kFp8ScaleBytes};
  }
  return TokenBytes(model);
}

}  // namespace moesim::models
