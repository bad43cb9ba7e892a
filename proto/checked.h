// One checked path from a figure a user gave to a number moesim computes with, and one check on
// every figure moesim reports.
//
// Input: each numeric field of a moesim file may declare its valid range beside it in the .proto
// (proto/range.proto). TextFile::Parse checks every such field of every file as it reads it; NCCL's
// XML and the command line check their figures against the same declared ranges:
//
//   MOESIM_RETURN_IF_ERROR(CheckFigure(gbps, DeclaredRange<pb::NvLinkSpec>("bandwidth_gbps"),
//                                      where, "nvlink.bandwidth_gbps"));
//   -> "c.pbtxt:7:17: node.nvlink.bandwidth_gbps = 5e-324: out of range; valid: 0.001 to 1e+06 GB/s"
//
// Output: CheckReportedFigures walks a Result, PlanTable or any reported message and refuses a
// non-finite number, a negative time, size or rate, or a time past int64 picoseconds (an overflow
// saturated it, proto/units.h), naming what was being computed:
//   "the step of plan tp 8 ep 64: step_ns = 9223372036854775 ns: result exceeds the representable
//    range (about 106 days)"
#pragma once

#include <google/protobuf/message.h>

#include <functional>
#include <string>
#include <string_view>

#include "proto/range.pb.h"
#include "proto/status.h"
#include "proto/units.h"

namespace moesim {

// "0.001 to 1e+06 GB/s", "more than 0 to 1", "1 to 131072": the valid part of an error.
std::string DescribeRange(const pb::Range& range);

// The range `field` of `type` declares. A field without one is a programming error: this returns
// an empty range (min = max = 0), which every figure but 0 fails, so a test catches it.
const pb::Range& DeclaredRange(const google::protobuf::Descriptor* type, std::string_view field);
template <typename Message>
const pb::Range& DeclaredRange(std::string_view field) {
  return DeclaredRange(Message::descriptor(), field);
}

// OK when `value` is finite and within `range`; otherwise an InputError at `where` naming `field`,
// the value (shortest round-trip form) and the range: "not a finite number" or "out of range".
Status CheckFigure(double value, const pb::Range& range, const Location& where,
                   std::string_view field);

// Calls `visit` on every value of a set scalar field of `message`, at any depth, in field order,
// with its path ("node.nvlink.bandwidth_gbps", "rank[2].experts[5]"), the message holding it, the
// field and the index (0 for a singular field); stops at the first error `visit` returns. The one
// walk behind the checks below and TextFile's UTF-8 check.
using ScalarVisitor =
    std::function<Status(const std::string& path, const google::protobuf::Message& holder,
                         const google::protobuf::FieldDescriptor* field, int index)>;
Status VisitScalars(const google::protobuf::Message& message, const ScalarVisitor& visit);

// Every field of `message`, at any depth, that declares a range, checked as CheckFigure does.
// `locate` maps a field path to where it was written; the error names the field by that path.
Status CheckDeclaredRanges(const google::protobuf::Message& message,
                           const std::function<Location(const std::string&)>& locate);

// Checked conversions for figures that do not come from a protobuf file (NCCL XML, the command
// line, computed from several fields): CheckFigure, then the unit.
StatusOr<Rate> CheckedGigaPerSecond(double giga, const pb::Range& range, const Location& where,
                                    std::string_view field);
StatusOr<Duration> CheckedNanoseconds(double ns, const pb::Range& range, const Location& where,
                                      std::string_view field);

// The largest time a report can hold: int64 picoseconds, in whole nanoseconds.
inline constexpr int64_t kMaxReportableNs = INT64_MAX / 1000;
inline constexpr std::string_view kPastRange =
    "result exceeds the representable range (about 106 days)";

// OK unless `time` is Duration::Infinite() (an overflow), then "<what>: result exceeds ...".
Status CheckRepresentable(Duration time, std::string_view what);

// Every number in `message` (a Result, PlanTable, StepResult...), at any depth: doubles finite;
// times (fields ending _ns, _ps, _us, _ms), sizes and rates not negative, except signed-by-nature
// fields (named *error*, *residual*, *delta*); a time at or past kMaxReportableNs is an overflow.
// The error starts with `what`.
Status CheckReportedFigures(const google::protobuf::Message& message, std::string_view what);

}  // namespace moesim
