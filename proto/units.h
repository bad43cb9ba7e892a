// Quantities that are easy to mix up, as distinct types: bytes, time, and rates.
//
//   Duration t = TransferTime(Bytes{8192}, Rate::GigaPerSecond(450));  // 8192 B over 450 GB/s
//   t.picoseconds() == 18205;   // ceil(8192 / 450e9 s) = ceil(18204.4 ps)
//
// Time is an integer count of picoseconds (int64: about 106 days), never floating-point seconds.
// Every division of an amount by a rate rounds up, explicitly, in 128-bit arithmetic.
// All types are plain values: copy freely, no thread-safety concerns.
#pragma once

#include <compare>
#include <cstdint>

namespace moesim {

// A count of bytes.
struct Bytes {
  uint64_t value = 0;

  constexpr auto operator<=>(const Bytes&) const = default;
  constexpr Bytes& operator+=(Bytes other) {
    value += other.value;
    return *this;
  }
  friend constexpr Bytes operator+(Bytes a, Bytes b) { return Bytes{a.value + b.value}; }
};

// A span of simulated time, in picoseconds.
//
// Arithmetic saturates instead of wrapping (as absl::Duration does): a sum, difference or
// product past int64's range (about 106 days) is Duration::Infinite() (or its negative), and stays
// so through later arithmetic. Whoever reports a time checks it with CheckRepresentable
// (proto/checked.h), which turns an infinite span into an error naming what was being computed.
class Duration {
 public:
  constexpr Duration() = default;
  static constexpr Duration Picoseconds(int64_t ps) { return Duration(ps); }
  static constexpr Duration Nanoseconds(int64_t ns) { return 1000 * Duration(ns); }
  // Longer than any span int64 picoseconds hold: the result of an overflow.
  static constexpr Duration Infinite() { return Duration(kInfinite); }

  constexpr int64_t picoseconds() const { return ps_; }
  // Whole nanoseconds, rounded up: a phase that took any time reports at least 1 ns.
  constexpr int64_t nanoseconds_ceil() const {
    return ps_ >= 0 ? ps_ / 1000 + (ps_ % 1000 != 0) : -((-ps_) / 1000);
  }
  // Whether an overflow made this span infinite (either sign).
  constexpr bool is_infinite() const { return ps_ == kInfinite || ps_ == -kInfinite; }

  constexpr auto operator<=>(const Duration&) const = default;
  constexpr Duration& operator+=(Duration other) { return *this = *this + other; }
  friend constexpr Duration operator+(Duration a, Duration b) {
    if (a.is_infinite()) return a;
    if (b.is_infinite()) return b;
    int64_t sum = 0;
    if (__builtin_add_overflow(a.ps_, b.ps_, &sum)) return Saturated(a.ps_ > 0);
    return Duration(sum);
  }
  // Differences of spans (a step minus what overlap hid); may be negative.
  friend constexpr Duration operator-(Duration a, Duration b) {
    if (a.is_infinite()) return a;
    if (b.is_infinite()) return Duration(-b.ps_);
    int64_t difference = 0;
    if (__builtin_sub_overflow(a.ps_, b.ps_, &difference)) return Saturated(a.ps_ > 0);
    return Duration(difference);
  }
  // n repetitions of a span (micro-batches of a pipeline).
  friend constexpr Duration operator*(int64_t n, Duration d) {
    if (d.is_infinite()) return n == 0 ? Duration() : Saturated((n > 0) == (d.ps_ > 0));
    int64_t product = 0;
    if (__builtin_mul_overflow(n, d.ps_, &product)) return Saturated((n > 0) == (d.ps_ > 0));
    return Duration(product);
  }

 private:
  // INT64_MIN is kept out of the range, so that every span has a negative.
  static constexpr int64_t kInfinite = INT64_MAX;
  static constexpr Duration Saturated(bool positive) {
    return Duration(positive ? kInfinite : -kInfinite);
  }
  constexpr explicit Duration(int64_t ps) : ps_(ps == INT64_MIN ? -kInfinite : ps) {}
  int64_t ps_ = 0;
};

// Something per second: bytes per second for bandwidth, FLOPs per second for compute.
class Rate {
 public:
  constexpr Rate() = default;
  static constexpr Rate PerSecond(uint64_t units) { return Rate(units); }
  // GB/s (1e9 bytes per second) as datasheets quote bandwidth.
  static constexpr Rate GigaPerSecond(double giga) { return Rate(Round(giga * 1e9)); }
  // TFLOP/s (1e12 per second) as datasheets quote compute.
  static constexpr Rate TeraPerSecond(double tera) { return Rate(Round(tera * 1e12)); }

  constexpr uint64_t per_second() const { return per_second_; }
  constexpr double giga() const { return static_cast<double>(per_second_) / 1e9; }
  constexpr double tera() const { return static_cast<double>(per_second_) / 1e12; }

  constexpr auto operator<=>(const Rate&) const = default;
  friend constexpr Rate operator+(Rate a, Rate b) { return Rate(a.per_second_ + b.per_second_); }

 private:
  constexpr explicit Rate(uint64_t per_second) : per_second_(per_second) {}
  // Nearest integer, 0 for anything not above 0 (NaN included), UINT64_MAX past its range:
  // user-given figures are range-checked before they get here (proto/checked.h).
  static constexpr uint64_t Round(double x) {
    if (!(x > 0)) return 0;
    if (x >= 18446744073709551615.0) return UINT64_MAX;
    return static_cast<uint64_t>(x + 0.5);
  }
  uint64_t per_second_ = 0;
};

// Time to get `amount` units through at `rate`: ceil(amount * 1e12 / rate) picoseconds;
// Duration::Infinite() when that is past int64's range, or when the rate is 0 and there is work
// (readers refuse a zero rate; this keeps a missed case from dividing by zero).
constexpr Duration TimeFor(uint64_t amount, Rate rate) {
  if (amount == 0) return Duration();
  const unsigned __int128 per_second = rate.per_second();
  if (per_second == 0) return Duration::Infinite();
  const unsigned __int128 numerator = static_cast<unsigned __int128>(amount) * 1'000'000'000'000ULL;
  const unsigned __int128 ps = (numerator + per_second - 1) / per_second;
  if (ps >= static_cast<unsigned __int128>(INT64_MAX)) return Duration::Infinite();
  return Duration::Picoseconds(static_cast<int64_t>(ps));
}

constexpr Duration TransferTime(Bytes bytes, Rate bandwidth) {
  return TimeFor(bytes.value, bandwidth);
}

}  // namespace moesim
