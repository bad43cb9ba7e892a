#include "sim/cli/progress_bar.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "proto/progress.h"

namespace moesim::sim {

ProgressBar::ProgressBar(std::string command, std::string unit, size_t total, bool enabled)
    : command_(std::move(command)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(enabled),
      tty_(enabled && isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()) {}

void ProgressBar::operator()(size_t done) {
  if (!enabled_ || finished_) return;
  finished_ = done >= total_;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const std::string text = ProgressText(done, total_, elapsed);
  const size_t total = std::max<size_t>(total_, 1);
  if (tty_) {
    const int width = 30, filled = static_cast<int>(width * std::min(done, total) / total);
    fmt::print(stderr, "\r[{}{}] {} {}\033[K", std::string(filled, '='),
               std::string(width - filled, ' '), unit_, text);
    if (finished_) fmt::print(stderr, "\n");
  } else if (finished_ || done * 10 / total > logged_tenth_) {
    logged_tenth_ = done * 10 / total;
    fmt::print(stderr, "{}: {} {}\n", command_, unit_, text);
  }
}

}  // namespace moesim::sim
