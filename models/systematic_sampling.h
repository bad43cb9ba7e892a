// The sampling primitives of the seeded routing generators (models/synthetic.cc): exact inclusion
// probabilities as integers, batched Fisher-Yates draws, and randomized systematic sampling.
// Internal to models/; compiled, as synthetic.cc, without fused multiply-add
// (models/CMakeLists.txt).
//
//   const std::vector<uint64_t> units = InclusionUnits(pi, k);   // pi_e in units of 2^-32
//   ZipfOrder z = MakeZipfOrder(units, ids);                     // ids[i]: what position i draws
//   std::vector<uint64_t> scratch = z.initial;
//   const std::vector<Batch> batches = Batches(z.initial.size());
//   Systematic(rng, z, k, batches, scratch, out);                 // k distinct ids into out[0..k)
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "models/rng.h"

namespace moesim::models {

// Probability 1 in units of 2^-32: inclusion probabilities become integers in [0, 2^32].
constexpr uint64_t kUnit = uint64_t{1} << 32;

// Appends a uniformly random k-subset of [0, n) to `ids` (Floyd's algorithm: exactly k draws).
void Floyd(Rng& rng, uint32_t n, uint32_t k, std::vector<uint32_t>& ids);

// Inclusion probabilities in units of 2^-32: floor(pi_e 2^32), then the units still missing from
// k 2^32 (or in excess of it, from rounding in pi) given to (taken from) the largest (smallest)
// remainders, lower expert first; never above one unit 2^32.
std::vector<uint64_t> InclusionUnits(std::span<const double> pi, uint32_t k);

// Fisher-Yates draws in batches: a run of consecutive bounds n_1, n_2, ... whose product P is at
// most 2^56 comes from one 64-bit word x (Brackett-Rozinsky & Lemire, "Batched Ranged Random
// Integer Generation", 2024). x P = R 2^64 + l, where R, written in the mixed radix of the bounds,
// is the run's draws, read off as the high words of x n_1, l_1 n_2, ... (l_j the low words), and
// l = x P mod 2^64 the last low word: that is Lemire's multiply-and-reject draw of R uniform in
// [0, P) (as Rng::Below), rejecting x when l is below 2^64 mod P (probability < 2^-8), so every
// tuple of draws is exactly equally likely. One word and one multiply per draw instead of
// Rng::Below's word, multiply and check.
struct Batch {
  uint32_t first = 0;      // position of the run's first draw: bounds n - first, n - first - 1, ...
  uint32_t count = 0;      // draws in the run
  uint64_t product = 1;    // P
  uint64_t threshold = 0;  // 2^64 mod P
};

// The batches of a forward Fisher-Yates shuffle of n: position i (0 <= i < n - 1) draws from
// [0, n - i).
std::vector<Batch> Batches(uint32_t n);

// One popularity order's experts, split for systematic sampling. An expert whose interval is a
// whole unit (pi = 1) holds exactly one of the points u, u + 1, ... wherever it stands, and taking
// it out of the line moves every later interval down by exactly one unit, which maps the points to
// the points: so those experts are in every token, and the others are chosen by systematic sampling
// on their own, in a uniformly random order, with k minus that many points.
struct ZipfOrder {
  std::vector<uint32_t> always;   // units = 2^32, by popularity rank
  std::vector<uint64_t> initial;  // the others, by expert id, as units (< 2^32) << 32 | expert:
                                  // the shuffle's start for each rank
};

// The ZipfOrder of ids[i] with inclusion units[i] (each at most 2^32): whole units always, the
// others in `initial`.
ZipfOrder MakeZipfOrder(std::span<const uint64_t> units, std::span<const uint32_t> ids);

// The k - always.size() other experts of one token, into out[0..): positions of `order` are
// shuffled one at a time (forward Fisher-Yates; the order the last token left is as good a start as
// any, as every permutation comes out equally likely from any start) and each expert goes on the
// line as soon as its position is fixed, so the draws stop at the last point. Branch-free: with
// acc = (start - u - 1) mod 2^32 in units of 2^-32, the interval [start, start + units) holds a
// point exactly when acc + units wraps past 2^32 (units < 2^32: at most one point).
void Systematic(Rng& rng, const ZipfOrder& z, uint32_t k, std::span<const Batch> batches,
                std::vector<uint64_t>& order, uint32_t* out);

}  // namespace moesim::models
