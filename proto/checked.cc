#include "proto/checked.h"

#include <google/protobuf/descriptor.h>

#include <charconv>
#include <cmath>

namespace moesim {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Shortest text that reads back as `value` ("5e-324", "1e+20", "0.001", "nan"); whole numbers
// below 10^15 as integers ("1000000000", "100000"), as a user writes counts.
std::string Shortest(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char text[32];
  const bool whole = value == std::floor(value) && std::fabs(value) < 1e15;
  const auto [end, ec] = whole ? std::to_chars(text, text + sizeof text, value,
                                               std::chars_format::fixed, 0)
                               : std::to_chars(text, text + sizeof text, value);
  return ec == std::errc() ? std::string(text, end) : std::to_string(value);
}

bool IsNumber(const FieldDescriptor* field) {
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return true;
    default:
      return false;
  }
}

// The i-th value of a numeric field (i ignored for a singular one), as a double: exact for every
// count below 2^53, which every declared range is.
double NumberAt(const Message& m, const FieldDescriptor* f, int i) {
  const Reflection* r = m.GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return rep ? r->GetRepeatedDouble(m, f, i) : r->GetDouble(m, f);
    case FieldDescriptor::CPPTYPE_FLOAT:
      return rep ? r->GetRepeatedFloat(m, f, i) : r->GetFloat(m, f);
    case FieldDescriptor::CPPTYPE_INT32:
      return rep ? r->GetRepeatedInt32(m, f, i) : r->GetInt32(m, f);
    case FieldDescriptor::CPPTYPE_INT64:
      return static_cast<double>(rep ? r->GetRepeatedInt64(m, f, i) : r->GetInt64(m, f));
    case FieldDescriptor::CPPTYPE_UINT32:
      return rep ? r->GetRepeatedUInt32(m, f, i) : r->GetUInt32(m, f);
    case FieldDescriptor::CPPTYPE_UINT64:
      return static_cast<double>(rep ? r->GetRepeatedUInt64(m, f, i) : r->GetUInt64(m, f));
    default:
      return 0;
  }
}

// The value as written, for the error: integers exactly, doubles in shortest form.
std::string TextAt(const Message& m, const FieldDescriptor* f, int i) {
  const Reflection* r = m.GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT64:
      return std::to_string(rep ? r->GetRepeatedInt64(m, f, i) : r->GetInt64(m, f));
    case FieldDescriptor::CPPTYPE_UINT64:
      return std::to_string(rep ? r->GetRepeatedUInt64(m, f, i) : r->GetUInt64(m, f));
    default:
      return Shortest(NumberAt(m, f, i));
  }
}

std::string Dotted(std::string_view prefix, const std::string& name) {
  return prefix.empty() ? name : std::string(prefix) + "." + name;
}

bool EndsWith(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

Status CheckValue(const std::string& text, double value, const pb::Range& range,
                  const Location& where, std::string_view field) {
  if (!std::isfinite(value)) {
    return InputError(where, field, text, "not a finite number", DescribeRange(range));
  }
  const bool low = range.above_min() ? !(value > range.min()) : !(value >= range.min());
  if (low || !(value <= range.max())) {
    return InputError(where, field, text, "out of range", DescribeRange(range));
  }
  return Status::Ok();
}

}  // namespace

std::string DescribeRange(const pb::Range& range) {
  std::string text = (range.above_min() ? "more than " : "") + Shortest(range.min()) + " to " +
                     Shortest(range.max());
  if (!range.unit().empty()) text += " " + range.unit();
  return text;
}

const pb::Range& DeclaredRange(const Descriptor* type, std::string_view field) {
  const FieldDescriptor* f = type->FindFieldByName(std::string(field));
  if (f == nullptr || !f->options().HasExtension(pb::range)) return pb::Range::default_instance();
  return f->options().GetExtension(pb::range);
}

Status CheckFigure(double value, const pb::Range& range, const Location& where,
                   std::string_view field) {
  return CheckValue(Shortest(value), value, range, where, field);
}

namespace {

Status Visit(const Message& message, std::string_view prefix, const ScalarVisitor& visit) {
  const Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const int count = field->is_repeated() ? reflection->FieldSize(message, field) : 1;
    for (int i = 0; i < count; ++i) {
      const std::string at = Dotted(
          prefix, field->name() + (field->is_repeated() ? "[" + std::to_string(i) + "]" : ""));
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        MOESIM_RETURN_IF_ERROR(Visit(field->is_repeated()
                                         ? reflection->GetRepeatedMessage(message, field, i)
                                         : reflection->GetMessage(message, field),
                                     at, visit));
      } else {
        MOESIM_RETURN_IF_ERROR(visit(at, message, field, i));
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Status VisitScalars(const Message& message, const ScalarVisitor& visit) {
  return Visit(message, {}, visit);
}

Status CheckDeclaredRanges(const Message& message,
                           const std::function<Location(const std::string&)>& locate) {
  return VisitScalars(message, [&](const std::string& path, const Message& holder,
                                   const FieldDescriptor* field, int i) -> Status {
    if (!IsNumber(field) || !field->options().HasExtension(pb::range)) return Status::Ok();
    return CheckValue(TextAt(holder, field, i), NumberAt(holder, field, i),
                      field->options().GetExtension(pb::range), locate(path), path);
  });
}

StatusOr<Rate> CheckedGigaPerSecond(double giga, const pb::Range& range, const Location& where,
                                    std::string_view field) {
  MOESIM_RETURN_IF_ERROR(CheckFigure(giga, range, where, field));
  return Rate::GigaPerSecond(giga);
}

StatusOr<Duration> CheckedNanoseconds(double ns, const pb::Range& range, const Location& where,
                                      std::string_view field) {
  MOESIM_RETURN_IF_ERROR(CheckFigure(ns, range, where, field));
  return Duration::Picoseconds(static_cast<int64_t>(std::llround(ns * 1e3)));
}

Status CheckRepresentable(Duration time, std::string_view what) {
  if (!time.is_infinite()) return Status::Ok();
  return Error(std::string(what) + ": " + std::string(kPastRange));
}

Status CheckReportedFigures(const Message& message, std::string_view what) {
  return VisitScalars(message, [&](const std::string& path, const Message& holder,
                                   const FieldDescriptor* field, int i) -> Status {
    if (!IsNumber(field)) return Status::Ok();
    const std::string& name = field->name();
    const bool is_signed = name.find("error") != std::string::npos ||
                           name.find("residual") != std::string::npos ||
                           name.find("delta") != std::string::npos;
    const double value = NumberAt(holder, field, i);
    auto fail = [&](std::string_view problem) {
      return Error(std::string(what) + ": " + path + " = " + TextAt(holder, field, i) + ": " +
                   std::string(problem));
    };
    if (!std::isfinite(value)) return fail("not a finite number (a bug: please report it)");
    if (value < 0 && !is_signed) return fail("negative (a bug: please report it)");
    const bool past = (EndsWith(name, "_ns") && value >= static_cast<double>(kMaxReportableNs)) ||
                      (EndsWith(name, "_ps") && value >= static_cast<double>(INT64_MAX));
    if (past) return fail(kPastRange);
    return Status::Ok();
  });
}

}  // namespace moesim
