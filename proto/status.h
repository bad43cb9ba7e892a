// Errors as values: library code returns Status / StatusOr<T> and never exits; `main` decides.
//
//   StatusOr<Plan> plan = ResolvePlan(...);
//   if (!plan.ok()) return plan.error();          // propagate
//   MOESIM_ASSIGN_OR_RETURN(Plan p, ResolvePlan(...));
//
// An Error is one line meant for a user: where (file:line:column when known), which field, the
// value, and what would be valid. Build it with InputError so every message has the same shape;
// the value it echoes, and the file name, go through Printable, so input with newlines, control or
// non-UTF-8 bytes, or a 50 MB line, still gives one short line.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace moesim {

// A position in a user's file. line and column count from 1; 0 means unknown.
struct Location {
  std::string file;
  int line = 0;
  int column = 0;

  // "file:line:column", "file:line", "file" or "" depending on what is known (the file name
  // escaped as Printable does, never cut).
  std::string ToString() const;
};

// The most characters of a user's value an error message echoes (Printable cuts the rest).
inline constexpr size_t kMaxEchoedChars = 80;

// `text` as it can be echoed on one line: newline, carriage return and tab as \n \r \t, other
// control bytes and bytes that are not part of valid UTF-8 as \xNN (two lowercase hex digits);
// valid UTF-8 is kept. When the escaped text is longer than `max_chars` characters (a UTF-8
// character counts one, an escape its length), the longest run of whole characters and escapes
// that fits in max_chars is kept and "..." added.
//   Printable("a\nb\xff")            -> "a\\nb\\xff" (as C++ literals; 8 characters shown)
//   Printable(std::string(100, 'x')) -> 80 x's and "..."
std::string Printable(std::string_view text, size_t max_chars = kMaxEchoedChars);

// Whether `text` is valid UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view text);

class Error {
 public:
  explicit Error(std::string message) : message_(std::move(message)) {}
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

// "a, b, c": for the lists of valid values in error messages.
std::string Join(const std::vector<std::string>& items, std::string_view separator = ", ");

// "<where>: <field> = <value>: <problem>; valid: <valid>" (parts that are empty are left out;
// <value> is Printable(value), so at most 80 characters of it).
Error InputError(const Location& where, std::string_view field, std::string_view value,
                 std::string_view problem, std::string_view valid = {});

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)) {}  // NOLINT: implicit by design
  static Status Ok() { return Status(); }

  bool ok() const { return !error_.has_value(); }
  const Error& error() const { return *error_; }

 private:
  std::optional<Error> error_;
};

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  StatusOr(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Error& error() const { return std::get<Error>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace moesim

#define MOESIM_CONCAT_INNER_(a, b) a##b
#define MOESIM_CONCAT_(a, b) MOESIM_CONCAT_INNER_(a, b)

// Evaluates a Status expression and returns its error from the enclosing function if it failed.
#define MOESIM_RETURN_IF_ERROR(expr)                         \
  do {                                                       \
    ::moesim::Status moesim_status_ = (expr);                \
    if (!moesim_status_.ok()) return moesim_status_.error(); \
  } while (0)

// `MOESIM_ASSIGN_OR_RETURN(T x, f());` declares x from f()'s value, or returns f()'s error.
#define MOESIM_ASSIGN_OR_RETURN(lhs, expr) \
  MOESIM_ASSIGN_OR_RETURN_IMPL_(MOESIM_CONCAT_(moesim_or_, __LINE__), lhs, expr)
#define MOESIM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.error();                  \
  lhs = std::move(tmp).value()
