// Reading protobuf text format (.pbtxt) files with positions kept, so that errors found after
// parsing (a plan that does not fit the cluster, an expert id out of range) still point at
// file:line:column.
//
//   moesim::pb::Scenario scenario;
//   MOESIM_ASSIGN_OR_RETURN(moesim::TextFile file, moesim::TextFile::Parse("s.pbtxt", &scenario));
//   file.Locate("plan.ep")                         -> {"s.pbtxt", 7, 3}
//   file.Locate("routing.explicit.rank[1].experts[2]")
//
// Syntax errors and unknown fields are reported as "file:line:column: what" and, for an unknown
// field, the fields that are valid there. A TextFile is immutable after Parse; it may be read from
// several threads.
#pragma once

#include <google/protobuf/message.h>
#include <google/protobuf/text_format.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proto/status.h"

namespace moesim {

class TextFile {
 public:
  // Parses the file at `path` into `message` (cleared first).
  static StatusOr<TextFile> Parse(const std::string& path, google::protobuf::Message* message);
  // Parses `text` as if it were a file named `name` (tests, embedded defaults).
  static StatusOr<TextFile> ParseString(std::string_view text, const std::string& name,
                                        google::protobuf::Message* message);

  const std::string& path() const { return path_; }

  // For a file whose top-level message is what other files nest under `field` (a cluster file is
  // what a scenario writes in `cluster { ... }`): Locate then accepts paths that start with it.
  void set_root_field(std::string field) { root_field_ = std::move(field); }

  // Where the field at `field_path` was written: dot-separated field names, each optionally
  // followed by [index] for repeated fields. A field that was not written is located at the
  // nearest enclosing field that was; failing that, the location names the file only.
  Location Locate(std::string_view field_path) const;

  // A copy in which `field_path` and every field below it are located at `where` instead of in
  // the text: for a value that came from elsewhere (`moesim sweep --set plan.ep=16` locates
  // plan.ep at "--set plan.ep=16"). A path without [index] covers every element of a list; where
  // several paths cover a field, the longest wins.
  TextFile WithValueFrom(std::string field_path, Location where) const;

 private:
  TextFile(std::string path, const google::protobuf::Descriptor* root)
      : path_(std::move(path)), root_(root) {}

  // Location of the element-th value of a repeated scalar field, counting over every occurrence of
  // the field in its block; protobuf records one location per occurrence of the field's name, so
  // the values of a list (`experts: [3, 4]`) are found by tokenizing from there.
  Location LocateElement(const google::protobuf::TextFormat::ParseInfoTree& tree,
                         const google::protobuf::FieldDescriptor* field, int element) const;

  std::string path_;
  std::string root_field_;
  std::shared_ptr<const std::string> text_;
  const google::protobuf::Descriptor* root_ = nullptr;
  std::shared_ptr<google::protobuf::TextFormat::ParseInfoTree> tree_;
  std::vector<std::pair<std::string, Location>> set_elsewhere_;  // WithValueFrom's
};

// Names of the fields of `descriptor`, in declaration order; FieldNames: comma-separated
// ("tp, cp, dp").
std::vector<std::string> FieldNameList(const google::protobuf::Descriptor* descriptor);
std::string FieldNames(const google::protobuf::Descriptor* descriptor);

}  // namespace moesim
