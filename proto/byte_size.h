// Size arguments as nccl-tests reads them ("8", "1K", "64M", "1G": bytes, K/M/G = 1024 powers),
// for `moesim collective` and `moebench a2a`.
//
//   MOESIM_ASSIGN_OR_RETURN(uint64_t bytes, ParseByteSize("64M", "-e"));   // 67,108,864
#pragma once

#include <cstdint>
#include <string>

#include "proto/status.h"

namespace moesim {

// The largest size taken: 1 PiB (2^50 bytes), far past any buffer a GPU job moves, and small
// enough that every byte count moesim derives from it stays far from 2^64.
inline constexpr uint64_t kMaxByteSize = uint64_t{1} << 50;

// Error (naming `flag`, the text and what is valid) for anything else, or for more than
// kMaxByteSize.
StatusOr<uint64_t> ParseByteSize(const std::string& text, const std::string& flag);

}  // namespace moesim
