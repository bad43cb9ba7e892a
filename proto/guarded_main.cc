#include "proto/guarded_main.h"

#include <new>
#include <stdexcept>

#include "proto/status.h"

namespace moesim {

int RunGuarded(std::string_view program, const std::vector<std::string>& args, std::ostream& err,
               const std::function<int()>& body, bool* threw) {
  std::string problem;
  try {
    return body();
  } catch (const std::bad_alloc&) {
    problem = "out of memory (std::bad_alloc)";
  } catch (const std::out_of_range& e) {
    problem = "internal error: " + Printable(e.what()) + " (std::out_of_range)";
  } catch (const std::exception& e) {
    problem = "internal error: " + Printable(e.what()) + " (std::exception)";
  } catch (...) {
    problem = "internal error: an exception that is not a std::exception";
  }
  if (threw != nullptr) *threw = true;
  // After bad_alloc this still needs a little memory; the strings are short.
  const std::string command = Join(args, " ");
  err << program << ": error: " << (command.empty() ? "" : Printable(command) + ": ") << problem;
  if (problem.rfind("internal error", 0) == 0) {
    err << "; please report it with the command and its input";
  }
  err << "\n";
  err.flush();
  return 1;
}

}  // namespace moesim
