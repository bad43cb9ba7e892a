// Compiled with -ffp-contract=off (models/CMakeLists.txt), as synthetic.cc: see there.
#include "models/systematic_sampling.h"

#include <algorithm>

namespace moesim::models {

void Floyd(Rng& rng, uint32_t n, uint32_t k, std::vector<uint32_t>& ids) {
  const size_t first = ids.size();
  for (uint32_t j = n - k; j < n; ++j) {
    const uint32_t pick = static_cast<uint32_t>(rng.Below(uint64_t{j} + 1));
    const bool taken = std::find(ids.begin() + first, ids.end(), pick) != ids.end();
    ids.push_back(taken ? j : pick);
  }
}

std::vector<uint64_t> InclusionUnits(std::span<const double> pi, uint32_t k) {
  const size_t n = pi.size();
  std::vector<uint64_t> units(n);
  std::vector<double> frac(n);
  int64_t missing = static_cast<int64_t>(k * kUnit);
  for (size_t e = 0; e < n; ++e) {
    const double scaled = std::min(pi[e], 1.0) * static_cast<double>(kUnit);
    units[e] = static_cast<uint64_t>(scaled);
    frac[e] = scaled - static_cast<double>(units[e]);
    missing -= static_cast<int64_t>(units[e]);
  }
  std::vector<uint32_t> ids(n);
  for (uint32_t e = 0; e < n; ++e) ids[e] = e;
  std::sort(ids.begin(), ids.end(),
            [&](uint32_t a, uint32_t b) { return frac[a] != frac[b] ? frac[a] > frac[b] : a < b; });
  while (missing > 0) {
    for (uint32_t e : ids) {
      if (missing > 0 && units[e] < kUnit) {
        ++units[e];
        --missing;
      }
    }
  }
  while (missing < 0) {
    for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
      if (missing < 0 && units[*it] > 0) {
        --units[*it];
        ++missing;
      }
    }
  }
  return units;
}

std::vector<Batch> Batches(uint32_t n) {
  constexpr uint64_t kMaxProduct = uint64_t{1} << 56;
  std::vector<Batch> out;
  for (uint32_t i = 0; i + 1 < n; ++i) {
    const uint64_t bound = n - i;
    if (out.empty() || out.back().product > kMaxProduct / bound) {
      out.push_back({.first = i, .count = 0, .product = 1, .threshold = 0});
    }
    out.back().product *= bound;
    ++out.back().count;
  }
  for (Batch& b : out) b.threshold = (0 - b.product) % b.product;
  return out;
}

ZipfOrder MakeZipfOrder(std::span<const uint64_t> units, std::span<const uint32_t> ids) {
  ZipfOrder z;
  for (size_t i = 0; i < units.size(); ++i) {
    if (units[i] == kUnit) z.always.push_back(ids[i]);
  }
  for (size_t i = 0; i < units.size(); ++i) {
    if (units[i] != kUnit) z.initial.push_back(units[i] << 32 | ids[i]);
  }
  return z;
}

void Systematic(Rng& rng, const ZipfOrder& z, uint32_t k, std::span<const Batch> batches,
                std::vector<uint64_t>& order, uint32_t* out) {
  for (uint32_t e : z.always) *out++ = e;
  k -= static_cast<uint32_t>(z.always.size());
  if (k == 0) return;
  // u in [0, 1/2) only: reading the line backwards (x -> k - 2^-32 - x) chooses the same experts
  // with the order reversed, just as uniformly random, and offset 1 - 2^-32 - u, so each offset in
  // [1/2, 1) draws the same sets with the same probabilities as one in [0, 1/2); and a small u
  // leaves more of the line after the last point, which is never visited.
  uint32_t acc = 0xffffffff - static_cast<uint32_t>(rng.Next() >> 33);
  uint64_t* o = order.data();
  const uint32_t n = static_cast<uint32_t>(order.size());
  uint32_t found = 0;
  for (const Batch& batch : batches) {
    uint64_t x = rng.Next();
    while (x * batch.product < batch.threshold) x = rng.Next();  // x P mod 2^64: the last low word
    uint64_t bound = n - batch.first;
    uint64_t* p = o + batch.first;
    uint64_t* const stop = p + batch.count;
    for (; p != stop; ++p, --bound) {
      const unsigned __int128 m = static_cast<unsigned __int128>(x) * bound;
      x = static_cast<uint64_t>(m);
      uint64_t* const q = p + static_cast<uint64_t>(m >> 64);
      const uint64_t v = *q;
      *q = *p;
      *p = v;
      const uint32_t next = acc + static_cast<uint32_t>(v >> 32);
      out[found] = static_cast<uint32_t>(v);
      found += next < acc ? 1 : 0;
      acc = next;
      if (found == k) return;
    }
  }
  out[found] = static_cast<uint32_t>(o[n - 1]);  // the last position: no draw, the last point
}

}  // namespace moesim::models
