#include "sim/sweep/sweep_field.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>

#include "proto/checked.h"
#include "proto/did_you_mean.h"
#include "proto/range.pb.h"
#include "proto/text_file.h"

namespace moesim::sim {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// The names of an enum's values, for the error that lists them.
std::vector<std::string> EnumNames(const google::protobuf::EnumDescriptor* e) {
  std::vector<std::string> names;
  for (int i = 0; i < e->value_count(); ++i) names.push_back(e->value(i)->name());
  return names;
}

// `text` as a whole number of type T (all of it, no sign for unsigned), or none.
template <typename T>
std::optional<T> WholeNumber(const std::string& text) {
  T value{};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return value;
}

std::optional<double> RealNumber(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return std::nullopt;
  return v;
}

// Sets `field` (singular scalar) of `holder` from `value`, checked as SetField says.
Status SetScalar(Message& holder, const FieldDescriptor* field, const std::string& path,
                 const std::string& value, const Location& where) {
  const Reflection* r = holder.GetReflection();
  auto bad = [&](std::string_view problem, std::string_view valid) -> Status {
    return InputError(where, path, value, problem, valid);
  };
  // The range the field declares (proto/range.proto), as a scenario file gets it checked.
  auto in_range = [&](double v) -> Status {
    if (!field->options().HasExtension(pb::range)) {
      if (!std::isfinite(v)) return bad("not a finite number", "a finite number");
      return Status::Ok();
    }
    return CheckFigure(v, field->options().GetExtension(pb::range), where, path);
  };
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: {
      const auto v = WholeNumber<int32_t>(value);
      if (!v) return bad("not a whole number of 32 bits", "an integer");
      MOESIM_RETURN_IF_ERROR(in_range(*v));
      r->SetInt32(&holder, field, *v);
      return Status::Ok();
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      const auto v = WholeNumber<int64_t>(value);
      if (!v) return bad("not a whole number of 64 bits", "an integer");
      MOESIM_RETURN_IF_ERROR(in_range(static_cast<double>(*v)));
      r->SetInt64(&holder, field, *v);
      return Status::Ok();
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      const auto v = WholeNumber<uint32_t>(value);
      if (!v) return bad("not a whole number from 0 to 4294967295", "an integer >= 0");
      MOESIM_RETURN_IF_ERROR(in_range(*v));
      r->SetUInt32(&holder, field, *v);
      return Status::Ok();
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      const auto v = WholeNumber<uint64_t>(value);
      if (!v) return bad("not a whole number of 64 bits", "an integer >= 0");
      MOESIM_RETURN_IF_ERROR(in_range(static_cast<double>(*v)));
      r->SetUInt64(&holder, field, *v);
      return Status::Ok();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      const auto v = RealNumber(value);
      if (!v) return bad("not a number", "a decimal number, e.g. 0.5 or 1e3");
      MOESIM_RETURN_IF_ERROR(in_range(*v));
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
        r->SetDouble(&holder, field, *v);
      } else {
        r->SetFloat(&holder, field, static_cast<float>(*v));
      }
      return Status::Ok();
    }
    case FieldDescriptor::CPPTYPE_BOOL:
      if (value != "true" && value != "false") return bad("not a bool", "true, false");
      r->SetBool(&holder, field, value == "true");
      return Status::Ok();
    case FieldDescriptor::CPPTYPE_ENUM: {
      const google::protobuf::EnumValueDescriptor* e = field->enum_type()->FindValueByName(value);
      if (e == nullptr) {
        const std::vector<std::string> names = EnumNames(field->enum_type());
        return bad("not a value of " + field->enum_type()->name() + DidYouMean(value, names),
                   Join(names));
      }
      r->SetEnum(&holder, field, e);
      return Status::Ok();
    }
    case FieldDescriptor::CPPTYPE_STRING:
      if (!IsValidUtf8(value)) return bad("not valid UTF-8 text", "UTF-8");
      r->SetString(&holder, field, value);
      return Status::Ok();
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return bad("not a field that takes a value", "a number, bool, enum or string field");
}

// Sets steps[k..] below `holder`; `done` is the path so far with indices ("cluster.node").
Status SetFrom(Message& holder, const FieldPath& path, size_t k, const std::string& done,
               const std::string& value, const Location& where) {
  const FieldStep& step = path.steps[k];
  const std::string here = done.empty() ? step.field->name() : done + "." + step.field->name();
  if (k + 1 == path.steps.size()) return SetScalar(holder, step.field, path.text, value, where);
  const Reflection* r = holder.GetReflection();
  if (!step.field->is_repeated()) {
    return SetFrom(*r->MutableMessage(&holder, step.field), path, k + 1, here, value, where);
  }
  const int size = r->FieldSize(holder, step.field);
  if (step.index) {
    if (*step.index >= size) {
      return InputError(where, here + "[" + std::to_string(*step.index) + "]", "",
                        "past the end: the scenario lists " + std::to_string(size),
                        size == 0 ? "an entry the scenario lists (it lists none)"
                                  : "[0] to [" + std::to_string(size - 1) + "]");
    }
    return SetFrom(*r->MutableRepeatedMessage(&holder, step.field, *step.index), path, k + 1,
                   here + "[" + std::to_string(*step.index) + "]", value, where);
  }
  if (size == 0) {
    return InputError(where, here, "", "the scenario lists none to set",
                      "a scenario that lists at least one");
  }
  for (int i = 0; i < size; ++i) {
    MOESIM_RETURN_IF_ERROR(SetFrom(*r->MutableRepeatedMessage(&holder, step.field, i), path, k + 1,
                                   here + "[" + std::to_string(i) + "]", value, where));
  }
  return Status::Ok();
}

}  // namespace

std::string FieldPath::bare() const {
  std::string out;
  for (const FieldStep& s : steps) out += (out.empty() ? "" : ".") + s.field->name();
  return out;
}

bool FieldPath::Below(std::string_view prefix) const {
  const std::string b = bare();
  return b.size() > prefix.size() && b.compare(0, prefix.size(), prefix) == 0 &&
         b[prefix.size()] == '.';
}

StatusOr<FieldPath> ParseFieldPath(std::string_view text, const Descriptor* root,
                                   const Location& where) {
  FieldPath path;
  path.text = std::string(text);
  const Descriptor* type = root;
  std::string done;
  size_t at = 0;
  while (true) {
    const size_t dot = std::min(text.find('.', at), text.size());
    std::string part(text.substr(at, dot - at));
    std::optional<int> index;
    if (const size_t open = part.find('['); open != std::string::npos) {
      const std::optional<int> i =
          part.back() == ']' ? WholeNumber<int>(part.substr(open + 1, part.size() - open - 2))
                             : std::nullopt;
      if (!i || *i < 0) {
        return InputError(where, path.text, "", "\"" + part + "\" has no whole index",
                          "NAME[i] with i >= 0, e.g. device[0]");
      }
      index = *i;
      part.resize(open);
    }
    const FieldDescriptor* field = type == nullptr ? nullptr : type->FindFieldByName(part);
    if (field == nullptr) {
      const std::vector<std::string> names = FieldNameList(type);
      return InputError(where, path.text, "",
                        "no field \"" + part + "\" in " + (done.empty() ? "" : done + " (") +
                            type->name() + (done.empty() ? "" : ")") + DidYouMean(part, names),
                        Join(names));
    }
    done += (done.empty() ? "" : ".") + part;
    const bool last = dot == text.size();
    const bool message = field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
    if (index && !(field->is_repeated() && message)) {
      return InputError(where, path.text, "", done + " is not a list of messages to index",
                        done + " without [" + std::to_string(*index) + "]");
    }
    path.steps.push_back({field, index});
    if (last) {
      if (message) {
        return InputError(where, path.text, "", done + " is a message, not a value",
                          "one of its fields: " + FieldNames(field->message_type()));
      }
      if (field->is_repeated()) {
        return InputError(where, path.text, "", done + " is a list; --set gives single values",
                          "a field that takes one value");
      }
      return path;
    }
    if (!message) {
      return InputError(where, path.text, "", done + " is a value, not a message with fields",
                        done + " alone");
    }
    type = field->message_type();
    at = dot + 1;
  }
}

Status SetField(Message& message, const FieldPath& path, const std::string& value,
                const Location& where) {
  return SetFrom(message, path, 0, "", value, where);
}

Status CheckFieldValue(const FieldPath& path, const std::string& value, const Location& where) {
  const FieldDescriptor* leaf = path.leaf();
  const std::unique_ptr<Message> scratch(google::protobuf::MessageFactory::generated_factory()
                                             ->GetPrototype(leaf->containing_type())
                                             ->New());
  return SetScalar(*scratch, leaf, path.text, value, where);
}

}  // namespace moesim::sim
