// The one error path of moesim's and moebench's main (proto/guarded_main.h): an exception becomes
// one line naming the command, exit status 1, never an abort.
#include "proto/guarded_main.h"

#include <catch2/catch.hpp>
#include <new>
#include <sstream>
#include <stdexcept>

namespace moesim {

TEST_CASE("RunGuarded: exceptions become one line and status 1") {
  const std::vector<std::string> args = {"trace", "stats", "t.moetrace"};
  std::ostringstream err;
  bool threw = false;
  CHECK(RunGuarded(
            "moesim", args, err, []() -> int { throw std::bad_alloc(); }, &threw) == 1);
  CHECK(threw);
  CHECK(err.str() == "moesim: error: trace stats t.moetrace: out of memory (std::bad_alloc)\n");

  err.str("");
  CHECK(RunGuarded("moesim", {"calibrate", "r.pb"}, err, []() -> int {
          throw std::out_of_range("vector::_M_range_check: __n (which is 4) >= this->size()");
        }) == 1);
  CHECK(err.str() ==
        "moesim: error: calibrate r.pb: internal error: vector::_M_range_check: __n (which is 4) "
        ">= this->size() (std::out_of_range); please report it with the command and its input\n");

  // what() and the command line are escaped (one line) and cut like any echoed value.
  err.str("");
  CHECK(RunGuarded("moebench", {"run", "a\nb.pbtxt"}, err,
                   []() -> int { throw std::runtime_error("two\nlines"); }) == 1);
  CHECK(err.str() ==
        "moebench: error: run a\\nb.pbtxt: internal error: two\\nlines (std::exception); please "
        "report it with the command and its input\n");

  err.str("");
  CHECK(RunGuarded("moesim", {}, err, []() -> int { throw 42; }) == 1);
  CHECK(err.str() ==
        "moesim: error: internal error: an exception that is not a std::exception; please report "
        "it with the command and its input\n");
}

TEST_CASE("RunGuarded: no exception, the body's own status and nothing printed") {
  std::ostringstream err;
  bool threw = false;
  CHECK(RunGuarded(
            "moesim", {"simulate"}, err, [] { return 2; }, &threw) == 2);
  CHECK_FALSE(threw);
  CHECK(err.str().empty());
}

}  // namespace moesim
