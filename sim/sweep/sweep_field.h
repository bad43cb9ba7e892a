// A field of a scenario named by its path in protobuf text field names, and setting it from text:
// what one `moesim sweep --set FIELD=VALUE` does to a scenario, through protobuf reflection (no
// field is known by hand).
//
//   MOESIM_ASSIGN_OR_RETURN(FieldPath p, ParseFieldPath("cluster.node.nics.gbit_per_s", where));
//   MOESIM_RETURN_IF_ERROR(SetField(scenario, p, "200", where));
//
// Paths: dot-separated field names from pb::Scenario down to a singular scalar field (number,
// bool, enum by name, string). A repeated message field on the way takes an index ("device[2]");
// without one the value goes to every element. Errors are located at `where` (the flag,
// "--set plan.epp=8") and name the path, the bad component and the valid field names there.
// Thread-safety: plain functions; a FieldPath is immutable and may be shared.
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/status.h"

namespace moesim::sim {

struct FieldStep {
  const google::protobuf::FieldDescriptor* field = nullptr;
  std::optional<int> index;  // "[i]" on a repeated message field; none: every element
};

struct FieldPath {
  std::string text;              // as given: "cluster.node.nics.gbit_per_s"
  std::vector<FieldStep> steps;  // from the root message down to the scalar field
  const google::protobuf::FieldDescriptor* leaf() const { return steps.back().field; }
  // The path without indices ("cluster.node.device.id"): what the loader's errors name.
  std::string bare() const;
  // Whether the path goes through `prefix` (bare, "cluster.node") and below it.
  bool Below(std::string_view prefix) const;
};

// `text` resolved against `root` (pb::Scenario's descriptor for a sweep).
StatusOr<FieldPath> ParseFieldPath(std::string_view text, const google::protobuf::Descriptor* root,
                                   const Location& where);

// Sets the leaf of `path` in `message` (of the path's root type) to `value`: a number in the
// field's type (whole numbers for integers, finite, within the range the field declares in
// proto/range.proto), true/false, an enum value's name, or a string (UTF-8). Creates the messages
// on the way; a repeated message field without an index gets the value in every element (an error
// when it has none), with one its element (an error past its end).
Status SetField(google::protobuf::Message& message, const FieldPath& path, const std::string& value,
                const Location& where);

// The checks SetField makes of `value` alone (its form and range), on a scratch message: for every
// value of a --set before any point runs.
Status CheckFieldValue(const FieldPath& path, const std::string& value, const Location& where);

}  // namespace moesim::sim
