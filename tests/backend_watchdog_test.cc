#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <thread>

#include "backend/comm/watchdog.h"

namespace moesim::backend {

using std::chrono::milliseconds;

TEST_CASE("watchdog: fires once when no progress comes within the limit and names the step") {
  std::mutex mu;
  std::string message;
  std::atomic<int> calls{0};
  Watchdog dog(milliseconds(100), [&](const std::string& why) {
    std::lock_guard<std::mutex> lock(mu);
    message = why;
    ++calls;
  });
  dog.Progress("layer 0 dispatch, iteration 3");
  std::this_thread::sleep_for(milliseconds(400));
  CHECK(dog.fired());
  CHECK(calls == 1);
  std::lock_guard<std::mutex> lock(mu);
  CHECK(message ==
        "timed out: no progress for 0.1 s during layer 0 dispatch, iteration 3 (a peer rank may "
        "have died or hung)");
}

TEST_CASE("watchdog: progress within the limit keeps it quiet and Stop ends it") {
  std::atomic<int> calls{0};
  {
    Watchdog dog(milliseconds(300), [&](const std::string&) { ++calls; });
    // 10 steps of 50 ms = 500 ms in all, longer than the limit, but never 300 ms without progress.
    for (int i = 0; i < 10; ++i) {
      dog.Progress("step " + std::to_string(i));
      std::this_thread::sleep_for(milliseconds(50));
    }
    dog.Stop();
    std::this_thread::sleep_for(milliseconds(400));
    CHECK_FALSE(dog.fired());
  }  // the destructor joins promptly after Stop
  CHECK(calls == 0);
}

}  // namespace moesim::backend
