#include "proto/byte_size.h"

#include <cerrno>
#include <cstdlib>

namespace moesim {

StatusOr<uint64_t> ParseByteSize(const std::string& text, const std::string& flag) {
  constexpr const char* kValid = "bytes, optionally with K, M or G (1024 powers), up to 1 PiB";
  // strtoull would take "-5" as 2^64 - 5 and saturate past 2^64: digits only.
  if (text.empty() || text[0] < '0' || text[0] > '9') {
    return InputError({}, flag, text, "not a size", kValid);
  }
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  uint64_t scale = 1;
  const std::string suffix = end ? std::string(end) : "";
  if (suffix == "K" || suffix == "k") {
    scale = 1ULL << 10;
  } else if (suffix == "M" || suffix == "m") {
    scale = 1ULL << 20;
  } else if (suffix == "G" || suffix == "g") {
    scale = 1ULL << 30;
  } else if (!suffix.empty() || end == text.c_str()) {
    return InputError({}, flag, text, "not a size", kValid);
  }
  if (errno == ERANGE || value > kMaxByteSize / scale) {
    return InputError({}, flag, text, "too large", kValid);
  }
  return static_cast<uint64_t>(value) * scale;
}

}  // namespace moesim
