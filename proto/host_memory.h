// A guard against allocations that cannot succeed: a command estimates what it will allocate
// before it allocates, and refuses with the figure and the limit instead of dying in the
// allocator (std::bad_alloc) or the OOM killer. moebench checks its ranks' buffers this way
// (backend/run/host_memory.h), moesim its routing, traffic matrices and traces (models/workload.h).
//
//   MOESIM_RETURN_IF_ERROR(CheckFitsInMemory(need_bytes, "the routing of 2048 GPUs x 61 layers",
//                                            "use fewer tokens, layers or GPUs",
//                                            AvailableHostBytes()));
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "proto/status.h"

namespace moesim {

// MemAvailable from /proc/meminfo, in bytes; nullopt when it cannot be read.
std::optional<double> AvailableHostBytes();

// "1.50 GiB", "12.0 MiB", "3.2 TiB" (1024 powers; bytes as a double so absurd sizes do not wrap).
std::string FormatBytes(double bytes);

// The share of MemAvailable a command may plan to use; the rest is for the system and for what an
// estimate misses.
inline constexpr double kUsableHostShare = 0.9;

// Fails when `need` bytes exceed kUsableHostShare of `available` (nothing is checked when
// `available` is unknown): "<what> needs 3.2 TiB of memory, but only 12.5 GiB is available
// (MemAvailable, /proc/meminfo; moesim plans to use at most 90% of it); <hint>".
Status CheckFitsInMemory(double need, std::string_view what, std::string_view hint,
                         std::optional<double> available);

}  // namespace moesim
