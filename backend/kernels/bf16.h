// bfloat16 on the host, without CUDA headers: the bit pattern the GPU stores, and the rounding the
// CPU reference applies to its inputs so that both sides start from the same numbers.
//
//   uint16_t bits = FloatToBf16(1.0f / 3.0f);   // round to nearest, ties to even
//   float back = Bf16ToFloat(bits);             // 0.333984375
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace moesim::backend {

inline uint16_t FloatToBf16(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0) {
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // NaN stays a (quiet) NaN
  }
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even on the 16 dropped bits
  return static_cast<uint16_t>(bits >> 16);
}

inline float Bf16ToFloat(uint16_t b) {
  const uint32_t bits = uint32_t{b} << 16;
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

inline float RoundToBf16(float v) { return Bf16ToFloat(FloatToBf16(v)); }

inline std::vector<float> RoundedToBf16(std::span<const float> v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = RoundToBf16(v[i]);
  return out;
}

}  // namespace moesim::backend
