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
class Duration {
 public:
  constexpr Duration() = default;
  static constexpr Duration Picoseconds(int64_t ps) { return Duration(ps); }
  static constexpr Duration Nanoseconds(int64_t ns) { return Duration(ns * 1000); }

  constexpr int64_t picoseconds() const { return ps_; }
  // Whole nanoseconds, rounded up: a phase that took any time reports at least 1 ns.
  constexpr int64_t nanoseconds_ceil() const {
    return ps_ >= 0 ? (ps_ + 999) / 1000 : -((-ps_) / 1000);
  }

  constexpr auto operator<=>(const Duration&) const = default;
  constexpr Duration& operator+=(Duration other) {
    ps_ += other.ps_;
    return *this;
  }
  friend constexpr Duration operator+(Duration a, Duration b) { return Duration(a.ps_ + b.ps_); }
  // Differences of spans (a step minus what overlap hid); may be negative.
  friend constexpr Duration operator-(Duration a, Duration b) { return Duration(a.ps_ - b.ps_); }
  // n repetitions of a span (micro-batches of a pipeline).
  friend constexpr Duration operator*(int64_t n, Duration d) { return Duration(n * d.ps_); }

 private:
  constexpr explicit Duration(int64_t ps) : ps_(ps) {}
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
  static constexpr uint64_t Round(double x) { return x <= 0 ? 0 : static_cast<uint64_t>(x + 0.5); }
  uint64_t per_second_ = 0;
};

// Time to get `amount` units through at `rate`: ceil(amount * 1e12 / rate) picoseconds.
// Requires rate > 0 (callers validate inputs; a zero rate here is a programming error).
constexpr Duration TimeFor(uint64_t amount, Rate rate) {
  const unsigned __int128 numerator = static_cast<unsigned __int128>(amount) * 1'000'000'000'000ULL;
  const unsigned __int128 per_second = rate.per_second();
  return Duration::Picoseconds(static_cast<int64_t>((numerator + per_second - 1) / per_second));
}

constexpr Duration TransferTime(Bytes bytes, Rate bandwidth) {
  return TimeFor(bytes.value, bandwidth);
}

}  // namespace moesim
