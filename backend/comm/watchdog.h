// A watchdog for runs that can hang: when a peer dies or stalls, the other ranks wait in an
// all-to-all forever. The run reports progress before every step; when no progress comes for
// `limit`, the watchdog's thread calls `on_timeout` once with a message naming the step that did
// not finish. What to do then is the caller's choice: moebench's command calls MPI_Abort, which
// ends every rank of the job (library code never ends the process itself).
//
//   Watchdog dog(std::chrono::seconds(60), [](const std::string& why) { ... MPI_Abort(...); });
//   dog.Progress("layer 0 dispatch, iteration 3");
//   ...
//   dog.Stop();   // also done by the destructor
//
// Progress and Stop may be called from any thread; on_timeout runs on the watchdog's own thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace moesim::backend {

class Watchdog {
 public:
  using OnTimeout = std::function<void(const std::string& message)>;

  Watchdog(std::chrono::milliseconds limit, OnTimeout on_timeout);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Restarts the clock; `step` names what runs now.
  void Progress(std::string step);
  void Stop();
  bool fired() const;

 private:
  void Watch();

  const std::chrono::milliseconds limit_;
  const OnTimeout on_timeout_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::chrono::steady_clock::time_point deadline_;
  std::string step_ = "start-up";
  bool stopped_ = false, fired_ = false;
  std::thread thread_;
};

}  // namespace moesim::backend
