// A small, fully specified random generator, so that a seed gives the same routing on every
// compiler and standard library (std::uniform_int_distribution does not promise that).
//
//   Rng rng(Rng::Mix(seed, layer, rank));
//   uint64_t e = rng.Below(num_experts);  // uniform in [0, num_experts)
//
// Xoshiro256** (Blackman & Vigna, https://prng.di.unimi.it/) seeded through SplitMix64; bounded
// draws by Lemire's multiply-and-reject method ("Fast Random Integer Generation in an Interval",
// 2019), which is exactly uniform. Not thread-safe: one Rng per thread or per stream.
#pragma once

#include <cstdint>

namespace moesim::models {

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& word : s_) word = SplitMix(seed);
  }

  // Combines a seed with stream coordinates into an independent stream seed.
  static uint64_t Mix(uint64_t seed, uint64_t a, uint64_t b) {
    uint64_t x = seed;
    x = SplitMix(x) ^ a;
    x = SplitMix(x) ^ b;
    return SplitMix(x);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n); requires n >= 1.
  uint64_t Below(uint64_t n) {
    unsigned __int128 m = static_cast<unsigned __int128>(Next()) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<unsigned __int128>(Next()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t SplitMix(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  static uint64_t SplitMix(uint64_t&& state) { return SplitMix(state); }

  uint64_t s_[4];
};

}  // namespace moesim::models
