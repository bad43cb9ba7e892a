#include "proto/byte_size.h"

#include <cstdlib>

namespace moesim {

StatusOr<uint64_t> ParseByteSize(const std::string& text, const std::string& flag) {
  char* end = nullptr;
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
    return InputError({}, flag, text, "not a size",
                      "bytes, optionally with K, M or G (1024 powers)");
  }
  return static_cast<uint64_t>(value) * scale;
}

}  // namespace moesim
