#include "backend/comm/watchdog.h"

#include <sstream>

namespace moesim::backend {

Watchdog::Watchdog(std::chrono::milliseconds limit, OnTimeout on_timeout)
    : limit_(limit),
      on_timeout_(std::move(on_timeout)),
      deadline_(std::chrono::steady_clock::now() + limit) {
  thread_ = std::thread([this] { Watch(); });
}

Watchdog::~Watchdog() {
  Stop();
  thread_.join();
}

void Watchdog::Progress(std::string step) {
  std::lock_guard<std::mutex> lock(mu_);
  step_ = std::move(step);
  deadline_ = std::chrono::steady_clock::now() + limit_;
}

void Watchdog::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
  }
  cv_.notify_all();
}

bool Watchdog::fired() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fired_;
}

void Watchdog::Watch() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopped_) {
    if (std::chrono::steady_clock::now() < deadline_) {
      cv_.wait_until(lock, deadline_);  // woken early by Stop; Progress only moves the deadline
      continue;
    }
    fired_ = true;
    std::ostringstream msg;
    const auto ms = limit_.count();
    msg << "timed out: no progress for " << ms / 1000 << "." << (ms % 1000) / 100 << " s during "
        << step_ << " (a peer rank may have died or hung)";
    const std::string message = msg.str();
    lock.unlock();
    on_timeout_(message);
    return;
  }
}

}  // namespace moesim::backend
