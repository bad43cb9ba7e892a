#include "proto/host_memory.h"

#include <cmath>
#include <cstdio>
#include <fstream>

namespace moesim {

std::optional<double> AvailableHostBytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  double kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return std::nullopt;
}

std::string FormatBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) {
    bytes /= 1024;
    ++u;
  }
  char text[64];
  std::snprintf(text, sizeof text, bytes < 10 ? "%.2f %s" : "%.1f %s", bytes, units[u]);
  return text;
}

Status CheckFitsInMemory(double need, std::string_view what, std::string_view hint,
                         std::optional<double> available) {
  if (!available || need <= kUsableHostShare * *available) return Status::Ok();
  std::string message = std::string(what) + " needs " + FormatBytes(need) +
                        " of memory, but only " + FormatBytes(*available) +
                        " is available (MemAvailable, /proc/meminfo; moesim plans to use at most " +
                        std::to_string(static_cast<int>(std::lround(100 * kUsableHostShare))) +
                        "% of it)";
  if (!hint.empty()) message += "; " + std::string(hint);
  return Error(message);
}

}  // namespace moesim
