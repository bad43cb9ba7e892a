// Progress of a long command on stderr (moesim plan's candidates, moesim sweep's points): a bar
// with the time left on a terminal; in a log (stderr not a terminal), a line at each tenth and at
// the end; nothing when disabled (--quiet, MPI ranks other than 0, output captured by a test).
//
//   ProgressBar bar("moesim plan", "plans", candidates.size(), /*enabled=*/!quiet);
//   bar(done);   // from one thread, done counting up to total
//
// Not thread-safe: call it from one thread (EvaluatePlans and RunSweepPoints do).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace moesim::sim {

class ProgressBar {
 public:
  // `command` starts each log line ("moesim plan"), `unit` names what is counted ("plans").
  ProgressBar(std::string command, std::string unit, size_t total, bool enabled);
  void operator()(size_t done);

 private:
  std::string command_, unit_;
  size_t total_;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_;
  size_t logged_tenth_ = 0;
  bool finished_ = false;
};

}  // namespace moesim::sim
