#include "proto/progress.h"

#include <cstdio>

namespace moesim {
namespace {

std::string Seconds(double s) {
  char text[32];
  if (s >= 100) {
    std::snprintf(text, sizeof text, "%.1f min", s / 60);
  } else {
    std::snprintf(text, sizeof text, "%.1f s", s);
  }
  return text;
}

}  // namespace

std::string ProgressText(size_t done, size_t total, double elapsed_s) {
  const size_t percent = total == 0 ? 100 : done * 100 / total;
  std::string text = std::to_string(done) + "/" + std::to_string(total) + " (" +
                     std::to_string(percent) + " %), " + Seconds(elapsed_s) + " elapsed";
  if (done >= total) return text + ", done";
  if (done == 0) return text;
  const double left = elapsed_s * static_cast<double>(total - done) / static_cast<double>(done);
  return text + ", about " + Seconds(left) + " left";
}

}  // namespace moesim
