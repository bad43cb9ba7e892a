// What a command's main wraps around everything it runs, so that no exception ever reaches the
// user as "terminate called after throwing ..." and an abort: an exception that escapes becomes
// one line on stderr and exit status 1, naming the command that was run.
//
//   int main(int argc, char** argv) {
//     const std::vector<std::string> args(argv + 1, argv + argc);
//     return moesim::RunGuarded("moesim", args, std::cerr, [&] { return RunMoesim(args, ...); });
//   }
//
// The lines, with the command line escaped and cut as Printable does:
//   moesim: error: trace stats t.moetrace: out of memory (std::bad_alloc)
//   moesim: error: calibrate r.pb --out p.pbtxt: internal error: vector::_M_range_check: ...
//       (std::out_of_range); please report it with the command and its input
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace moesim {

// Runs `body` and returns its exit status; an exception escaping it is printed as above and
// gives 1, with *threw (when given) set to true.
int RunGuarded(std::string_view program, const std::vector<std::string>& args, std::ostream& err,
               const std::function<int()>& body, bool* threw = nullptr);

}  // namespace moesim
