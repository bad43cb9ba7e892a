// proto/checked.h and the saturating time arithmetic of proto/units.h: every user-given figure is
// checked against the range its field declares, and no reported time wraps.
#include "proto/checked.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "proto/byte_size.h"
#include "proto/cluster.pb.h"
#include "proto/host_memory.h"
#include "proto/plan.pb.h"
#include "proto/result.pb.h"
#include "proto/scenario.pb.h"
#include "proto/text_file.h"

namespace moesim {
namespace {

std::string ParseError(std::string_view text) {
  pb::Cluster cluster;
  auto file = TextFile::ParseString(text, "c.pbtxt", &cluster);
  return file.ok() ? "ok" : file.error().message();
}

}  // namespace

TEST_CASE("Duration saturates at about 106 days instead of wrapping") {
  const Duration max = Duration::Picoseconds(INT64_MAX - 1);
  CHECK((max + Duration::Picoseconds(2)).is_infinite());
  CHECK((max + Duration::Picoseconds(1)).picoseconds() == INT64_MAX);  // exactly the limit
  CHECK(((Duration() - max) - Duration::Picoseconds(5)).is_infinite());
  CHECK(((Duration() - max) - Duration::Picoseconds(5)) < Duration());  // minus infinity
  // 2^40 micro-batches x 2^30 ps = 2^70 ps: past int64 (2^63), so infinite, not a wrapped number.
  CHECK((int64_t{1} << 40) * Duration::Picoseconds(int64_t{1} << 30) == Duration::Infinite());
  // Infinity stays infinite through later sums and differences.
  CHECK((Duration::Infinite() - Duration::Nanoseconds(1)).is_infinite());
  CHECK((Duration::Nanoseconds(1) + Duration::Infinite()).is_infinite());
  CHECK(0 * Duration::Infinite() == Duration());
  // Nanoseconds(2^62) = 2^62 * 1000 ps: past int64.
  CHECK(Duration::Nanoseconds(int64_t{1} << 62).is_infinite());
  CHECK(Duration::Infinite().nanoseconds_ceil() == INT64_MAX / 1000 + 1);
  CHECK(Duration::Picoseconds(-1500).nanoseconds_ceil() == -1);  // ceil(-1.5 ns)
}

TEST_CASE("TimeFor saturates instead of dividing by zero or wrapping") {
  // 2^64 - 1 bytes at 1 B/s = 1.8e19 s = 1.8e31 ps: past int64.
  CHECK(TimeFor(UINT64_MAX, Rate::PerSecond(1)).is_infinite());
  CHECK(TimeFor(1, Rate()).is_infinite());  // work at a zero rate never ends
  CHECK(TimeFor(0, Rate()) == Duration());
  // Rate rounding: NaN and negative to 0, past 2^64 to UINT64_MAX.
  CHECK(Rate::GigaPerSecond(std::nan("")).per_second() == 0);
  CHECK(Rate::GigaPerSecond(1e20).per_second() == UINT64_MAX);
}

TEST_CASE("A cluster file's figures are checked against the ranges the schema declares") {
  // 5e-324 GB/s rounds to 0 B/s: before, a SIGFPE in TimeFor.
  CHECK(ParseError("node_preset: \"dgx-h100\"\nnode { nvlink { bandwidth_gbps: 5e-324 } }") ==
        "c.pbtxt:2:17: node.nvlink.bandwidth_gbps = 5e-324: out of range; valid: 0.001 to 1000000 "
        "GB/s");
  // 1.85e10 GB/s = 1.85e19 B/s, past uint64: before, the link silently vanished.
  CHECK(ParseError("node { nvlink { bandwidth_gbps: 1.85e10 } }") ==
        "c.pbtxt:1:17: node.nvlink.bandwidth_gbps = 18500000000: out of range; valid: 0.001 to "
        "1000000 GB/s");
  CHECK(ParseError("node { nics { gbit_per_s: nan } }") ==
        "c.pbtxt:1:15: node.nics.gbit_per_s = nan: not a finite number; valid: 0.008 to 8000000 "
        "Gb/s");
  CHECK(ParseError("node { pcie { latency_ns: -1 } }") ==
        "c.pbtxt:1:15: node.pcie.latency_ns = -1: out of range; valid: 0 to 1000000000 ns");
  CHECK(ParseError("nodes: 4294967295") ==
        "c.pbtxt:1:1: nodes = 4294967295: out of range; valid: 1 to 131072");
  CHECK(ParseError("fabric { torus { dims: [2, 0] } }") ==
        "c.pbtxt:1:28: fabric.torus.dims[1] = 0: out of range; valid: 1 to 4096");
  CHECK(ParseError("node_preset: \"dgx-h100\"\nnodes: 4") == "ok");
}

TEST_CASE("A scenario's counts are bounded where they would overflow or exhaust memory") {
  pb::Scenario scenario;
  auto file = TextFile::ParseString("step { global_batch: 1000000000000 seq_len: 4096 }", "s.pbtxt",
                                    &scenario);
  REQUIRE_FALSE(file.ok());
  CHECK(file.error().message() ==
        "s.pbtxt:1:8: step.global_batch = 1000000000000: out of range; valid: 0 to 16777216");
  file = TextFile::ParseString("workload { tokens_per_gpu: 100000000 }", "s.pbtxt", &scenario);
  REQUIRE_FALSE(file.ok());
  CHECK(file.error().message() ==
        "s.pbtxt:1:12: workload.tokens_per_gpu = 100000000: out of range; valid: 0 to 16777216");
}

TEST_CASE("DeclaredRange gives the schema's range to figures from elsewhere") {
  const pb::Range& nic = DeclaredRange<pb::NicSpec>("gbit_per_s");
  CHECK(nic.min() == 0.008);
  CHECK(nic.max() == 8e6);
  CHECK(DescribeRange(nic) == "0.008 to 8000000 Gb/s");
  CHECK(CheckFigure(400, nic, {}, "--nic").ok());
  CHECK(CheckFigure(1e300, nic, {}, "--nic").error().message() ==
        "--nic = 1e+300: out of range; valid: 0.008 to 8000000 Gb/s");
  // A field that declares no range: the empty range, which refuses all but 0.
  CHECK(DeclaredRange<pb::NicSpec>("no_such_field").max() == 0);
  auto rate = CheckedGigaPerSecond(450, DeclaredRange<pb::NvLinkSpec>("bandwidth_gbps"), {}, "bw");
  REQUIRE(rate.ok());
  CHECK(rate->per_second() == 450'000'000'000ULL);
  // 1.5 ns = 1500 ps.
  auto latency = CheckedNanoseconds(1.5, DeclaredRange<pb::NvLinkSpec>("latency_ns"), {}, "lat");
  REQUIRE(latency.ok());
  CHECK(latency->picoseconds() == 1500);
}

TEST_CASE("Reported figures: no negative, non-finite or saturated number leaves a command") {
  pb::CollectiveSweep sweep;
  pb::CollectiveRow* row = sweep.add_rows();
  row->set_time_us(12.5);
  CHECK(CheckReportedFigures(sweep, "the sweep").ok());
  row->set_busbw_gbps(std::numeric_limits<double>::infinity());
  CHECK(CheckReportedFigures(sweep, "the sweep").error().message() ==
        "the sweep: rows[0].busbw_gbps = inf: not a finite number (a bug: please report it)");
  row->set_busbw_gbps(-3);
  CHECK(CheckReportedFigures(sweep, "the sweep").error().message() ==
        "the sweep: rows[0].busbw_gbps = -3: negative (a bug: please report it)");
  pb::StepResult step;
  // Duration::Infinite() in whole nanoseconds, rounded up: INT64_MAX / 1000 + 1.
  step.set_step_ns(Duration::Infinite().nanoseconds_ceil());
  CHECK(CheckReportedFigures(step, "the step of s").error().message() ==
        "the step of s: step_ns = 9223372036854776: result exceeds the representable range (about "
        "106 days)");
  CHECK(CheckRepresentable(Duration::Infinite(), "the step").error().message() ==
        "the step: result exceeds the representable range (about 106 days)");
  CHECK(CheckRepresentable(Duration::Nanoseconds(5), "the step").ok());
}

TEST_CASE("Sizes on the command line stop at 1 PiB, and negative ones are refused") {
  CHECK(ParseByteSize("1048576G", "-e").value() == uint64_t{1} << 50);
  CHECK(ParseByteSize("1048577G", "-e").error().message() ==
        "-e = 1048577G: too large; valid: bytes, optionally with K, M or G (1024 powers), up to 1 "
        "PiB");
  CHECK(ParseByteSize("-5", "-b").error().message() ==
        "-b = -5: not a size; valid: bytes, optionally with K, M or G (1024 powers), up to 1 PiB");
  CHECK(ParseByteSize("99999999999999999999", "-e").error().message() ==
        "-e = 99999999999999999999: too large; valid: bytes, optionally with K, M or G (1024 "
        "powers), up to 1 PiB");
}

TEST_CASE("A command refuses work that would not fit in memory, with the figure and the limit") {
  CHECK(CheckFitsInMemory(900, "x", "", 1000.0).ok());  // 900 <= 0.9 x 1000
  CHECK(CheckFitsInMemory(1e6, "x", "", std::nullopt).ok());  // unknown: not checked
  // 3 TiB against 16 GiB available.
  CHECK(CheckFitsInMemory(3.0 * (1ull << 40), "the routing of 8 GPUs", "use fewer tokens",
                          16.0 * (1ull << 30))
            .error()
            .message() ==
        "the routing of 8 GPUs needs 3.00 TiB of memory, but only 16.0 GiB is available "
        "(MemAvailable, /proc/meminfo; moesim plans to use at most 90% of it); use fewer tokens");
}

}  // namespace moesim
