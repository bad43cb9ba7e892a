// Under AddressSanitizer (scripts/check-sanitized.sh, the end of README command 2) code runs
// several times slower. A test that checks a property over many drawn cases checks the first
// quarter of them there; the Release suite checks them all. Everything else runs unchanged.
#pragma once

#include <algorithm>
#include <cstddef>

namespace moesim::testing {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kUnderSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kUnderSanitizer = true;
#else
inline constexpr bool kUnderSanitizer = false;
#endif
#else
inline constexpr bool kUnderSanitizer = false;
#endif

// How many of `cases` drawn cases to check: all of them, or the first quarter (at least one)
// under a sanitizer.
inline size_t CasesToCheck(size_t cases) {
  return kUnderSanitizer ? std::max<size_t>(1, cases / 4) : cases;
}

}  // namespace moesim::testing
