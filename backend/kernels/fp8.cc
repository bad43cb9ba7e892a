#include "backend/kernels/fp8.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "backend/kernels/bf16.h"

namespace moesim::backend {
namespace {

// Round half to even under the default floating-point environment.
float RoundEven(float x) { return std::nearbyint(x); }

Fp8Tensor Quantize(uint64_t rows, uint64_t cols, const float* x, uint32_t block_rows) {
  Fp8Tensor t;
  t.rows = rows;
  t.cols = cols;
  t.block_rows = block_rows;
  t.codes.resize(rows * cols);
  const uint64_t row_blocks = (rows + block_rows - 1) / block_rows;
  t.scales.assign(row_blocks * t.col_blocks(), 1.0f);
  for (uint64_t br = 0; br < row_blocks; ++br) {
    const uint64_t r0 = br * block_rows, r1 = std::min(rows, r0 + block_rows);
    for (uint64_t bc = 0; bc < t.col_blocks(); ++bc) {
      const uint64_t c0 = bc * kFp8Block, c1 = std::min(cols, c0 + kFp8Block);
      float amax = 0;
      for (uint64_t r = r0; r < r1; ++r) {
        for (uint64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(x[r * cols + c]));
      }
      const float scale = amax > 0 ? amax / kE4m3Max : 1.0f;
      t.scales[br * t.col_blocks() + bc] = scale;
      for (uint64_t r = r0; r < r1; ++r) {
        for (uint64_t c = c0; c < c1; ++c)
          t.codes[r * cols + c] = FloatToE4m3(x[r * cols + c] / scale);
      }
    }
  }
  return t;
}

}  // namespace

uint8_t FloatToE4m3(float x) {
  if (std::isnan(x)) return 0x7F;
  const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  const float a = std::fabs(x);
  if (a >= kE4m3Max) return sign | 0x7E;  // saturate (448 itself is 0x7E)
  // Subnormals: m x 2^-9, m = 0..7; m = 8 is the smallest normal, 2^-6 (exponent field 1).
  if (a < 0.015625f) {
    const int m = static_cast<int>(RoundEven(std::ldexp(a, 9)));
    return sign | static_cast<uint8_t>(m);  // m == 8 reads as exponent 1, mantissa 0
  }
  int e = 0;
  const float f = std::frexp(a, &e);  // a = f x 2^e, f in [0.5, 1)
  // a = (1 + m/8) x 2^(e - 1): m = (2f - 1) x 8, exact before rounding.
  int exponent = e - 1;
  int m = static_cast<int>(RoundEven((2 * f - 1) * 8));
  if (m == 8) {
    m = 0;
    ++exponent;
  }
  // exponent <= 8 here (a < 448); 0x7F (exponent 8, mantissa 7) would be NaN: a rounds to 480
  // only from >= 464, which saturated above.
  return sign | static_cast<uint8_t>(((exponent + 7) << 3) | m);
}

float E4m3ToFloat(uint8_t code) {
  const float sign = (code & 0x80) != 0 ? -1.0f : 1.0f;
  const int field = (code >> 3) & 0xF, m = code & 0x7;
  if (field == 0xF && m == 0x7) return std::nanf("");
  if (field == 0) return sign * std::ldexp(static_cast<float>(m), -9);
  return sign * std::ldexp(1.0f + static_cast<float>(m) / 8, field - 7);
}

Fp8Tensor QuantizeTiles1x128(uint64_t rows, uint64_t cols, const float* x) {
  return Quantize(rows, cols, x, 1);
}

Fp8Tensor QuantizeBlocks128(uint64_t rows, uint64_t cols, const float* x) {
  return Quantize(rows, cols, x, kFp8Block);
}

std::vector<float> Fp8GemmReference(const Fp8Tensor& a, const Fp8Tensor& w) {
  if (a.cols != w.cols) {
    throw std::invalid_argument("Fp8GemmReference: " + std::to_string(a.cols) +
                                " columns against " + std::to_string(w.cols));
  }
  std::vector<float> y(a.rows * w.rows);
  std::vector<double> row(a.cols), weights(w.rows * w.cols);
  for (uint64_t j = 0; j < w.rows; ++j) {
    for (uint64_t c = 0; c < w.cols; ++c) weights[j * w.cols + c] = w.Value(j, c);
  }
  for (uint64_t i = 0; i < a.rows; ++i) {
    for (uint64_t c = 0; c < a.cols; ++c) row[c] = a.Value(i, c);
    for (uint64_t j = 0; j < w.rows; ++j) {
      double sum = 0;
      for (uint64_t c = 0; c < a.cols; ++c) sum += row[c] * weights[j * w.cols + c];
      y[i * w.rows + j] = static_cast<float>(sum);
    }
  }
  return y;
}

std::vector<float> Fp8ExpertFfnReference(const float* x, uint64_t rows, const ExpertWeights& w) {
  const uint64_t h = w.hidden, f = w.ffn;
  if (w.experts != 1 || h % kFp8Block != 0 || f % kFp8Block != 0) {
    throw std::invalid_argument("Fp8ExpertFfnReference: " + std::to_string(w.experts) +
                                " experts, hidden " + std::to_string(h) + ", ffn " +
                                std::to_string(f) + " (one expert, multiples of 128)");
  }
  // The GPU's layout, in bf16 as uploaded.
  const DeviceLayoutWeights d = ToDeviceLayout(w);
  std::vector<float> w1(d.w1.size()), w2(d.w2.size());
  for (uint64_t i = 0; i < w1.size(); ++i) w1[i] = Bf16ToFloat(d.w1[i]);
  for (uint64_t i = 0; i < w2.size(); ++i) w2[i] = Bf16ToFloat(d.w2[i]);
  std::vector<float> xb(x, x + rows * h);
  for (float& v : xb) v = RoundToBf16(v);
  std::vector<float> up = Fp8GemmReference(QuantizeTiles1x128(rows, h, xb.data()),
                                           QuantizeBlocks128(2 * f, h, w1.data()));
  std::vector<float> a(rows * f);
  for (uint64_t r = 0; r < rows; ++r) {
    for (uint64_t j = 0; j < f; ++j) {
      const float g = RoundToBf16(up[r * 2 * f + j]), u = RoundToBf16(up[r * 2 * f + f + j]);
      a[r * f + j] = RoundToBf16(g / (1.0f + std::exp(-g)) * u);
    }
  }
  std::vector<float> y =
      Fp8GemmReference(QuantizeTiles1x128(rows, f, a.data()), QuantizeBlocks128(h, f, w2.data()));
  for (float& v : y) v = RoundToBf16(v);
  return y;
}

}  // namespace moesim::backend
