// Protobuf output that is the same, bit for bit, for the same message in every run. Protobuf keeps
// a map field in a hash map whose iteration order changes from process to process, and both its
// binary and its JSON printers follow that order unless told otherwise: a Result's
// link_class_bytes came out in a different order run after run. Here map entries are written sorted
// by key (protobuf's deterministic serialization; the JSON is converted from those bytes).
//
//   std::string bytes = DeterministicBytes(result);          // for --out files
//   MOESIM_ASSIGN_OR_RETURN(std::string json, DeterministicJson(result));   // for --json
//
// Thread-safe (each call builds what it uses).
#pragma once

#include <google/protobuf/message.h>

#include <string>

#include "proto/status.h"

namespace moesim {

std::string DeterministicBytes(const google::protobuf::Message& message);

// Indented, with every field printed, zeros included (a layer 0 or a zero count is data, not a
// default), field names in lowerCamelCase as protobuf's JSON mapping has them.
StatusOr<std::string> DeterministicJson(const google::protobuf::Message& message);

}  // namespace moesim
