#include "proto/text_file.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>

#include <algorithm>
#include <vector>

#include "proto/checked.h"
#include "proto/did_you_mean.h"
#include "proto/input_file.h"
#include "proto/protobuf_log.h"

namespace moesim {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::FieldDescriptor;
using google::protobuf::TextFormat;

// The n-th double-quoted word of protobuf's message ("Message type \"T\" has no field named
// \"F\"."), or "" when there is none.
std::string Quoted(const std::string& message, int n) {
  size_t at = 0;
  for (int i = 0; i <= n; ++i) {
    const size_t open = message.find('"', at);
    if (open == std::string::npos) return "";
    const size_t close = message.find('"', open + 1);
    if (close == std::string::npos) return "";
    if (i == n) return message.substr(open + 1, close - open - 1);
    at = close + 1;
  }
  return "";
}

// The enum values of the first field named `field` with an enum type, in `root` or the messages
// below it (breadth first), for "Unknown enumeration value"; empty when there is none.
std::vector<std::string> EnumValuesOf(const Descriptor* root, const std::string& field) {
  std::vector<const Descriptor*> queue = {root};
  for (size_t i = 0; i < queue.size() && i < 256; ++i) {
    for (int f = 0; f < queue[i]->field_count(); ++f) {
      const FieldDescriptor* fd = queue[i]->field(f);
      if (fd->name() == field && fd->enum_type() != nullptr) {
        std::vector<std::string> values;
        for (int v = 0; v < fd->enum_type()->value_count(); ++v)
          values.push_back(fd->enum_type()->value(v)->name());
        return values;
      }
      if (fd->message_type() != nullptr &&
          std::find(queue.begin(), queue.end(), fd->message_type()) == queue.end()) {
        queue.push_back(fd->message_type());
      }
    }
  }
  return {};
}

// " Did you mean \"NAME\"?" after protobuf's sentence, or "".
std::string Nearest(const std::string& word, const std::vector<std::string>& names) {
  const std::optional<std::string> closest = ClosestName(word, names);
  return closest ? " Did you mean \"" + *closest + "\"?" : "";
}

// Keeps the first error protobuf's parser reports; adds the valid field names to "no field named"
// and the valid values to "Unknown enumeration value", each with the nearest name when one is near.
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  FirstErrorCollector(std::string file, const Descriptor* root)
      : file_(std::move(file)), root_(root) {}

  void AddError(int line, int column, const std::string& message) override {
    if (error_) return;
    // protobuf counts lines and columns from 0; editors count from 1.
    Location where{file_, line + 1, column + 1};
    // Escaped and cut: protobuf quotes the token it did not expect, which may be anything.
    std::string text = Printable(message, 200);
    if (message.find("has no field named") != std::string::npos &&
        message.rfind("Message type \"", 0) == 0) {
      if (const Descriptor* d =
              DescriptorPool::generated_pool()->FindMessageTypeByName(Quoted(message, 0))) {
        const std::vector<std::string> names = FieldNameList(d);
        text += Nearest(Quoted(message, 1), names) + " Valid fields: " + Join(names) + ".";
      }
    } else if (message.rfind("Unknown enumeration value of \"", 0) == 0) {
      const std::vector<std::string> values = EnumValuesOf(root_, Quoted(message, 1));
      if (!values.empty()) {
        text += Nearest(Quoted(message, 0), values) + " Valid values: " + Join(values) + ".";
      }
    }
    error_ = Error(where.ToString() + ": " + text);
  }
  void AddWarning(int, int, const std::string&) override {}

  const std::optional<Error>& error() const { return error_; }

 private:
  std::string file_;
  const Descriptor* root_;
  std::optional<Error> error_;
};

}  // namespace

std::vector<std::string> FieldNameList(const Descriptor* descriptor) {
  std::vector<std::string> names;
  for (int i = 0; i < descriptor->field_count(); ++i) names.push_back(descriptor->field(i)->name());
  return names;
}

std::string FieldNames(const Descriptor* descriptor) { return Join(FieldNameList(descriptor)); }

StatusOr<TextFile> TextFile::Parse(const std::string& path, google::protobuf::Message* message) {
  MOESIM_ASSIGN_OR_RETURN(const std::string text, ReadInputFile(path));
  return ParseString(text, path, message);
}

StatusOr<TextFile> TextFile::ParseString(std::string_view text, const std::string& name,
                                         google::protobuf::Message* message) {
  TextFile file(name, message->GetDescriptor());
  file.text_ = std::make_shared<const std::string>(text);
  file.tree_ = std::make_shared<TextFormat::ParseInfoTree>();
  FirstErrorCollector errors(name, message->GetDescriptor());
  TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(file.tree_.get());
  message->Clear();
  ProtobufLogCapture protobuf_says;
  const bool ok = parser.ParseFromString(*file.text_, message);
  if (errors.error()) return *errors.error();
  if (!ok) {
    return Error(Location{name}.ToString() + ": cannot parse as text format of " +
                 message->GetTypeName() + protobuf_says.Reason());
  }
  // protobuf's text parser accepts any bytes in a string, but a proto3 string must be UTF-8: its
  // binary and JSON writers would log an error and write a file that cannot be read back.
  MOESIM_RETURN_IF_ERROR(VisitScalars(
      *message,
      [&file](const std::string& path, const google::protobuf::Message& holder,
              const FieldDescriptor* field, int i) -> Status {
        if (field->type() != FieldDescriptor::TYPE_STRING) return Status::Ok();
        const google::protobuf::Reflection* r = holder.GetReflection();
        std::string scratch;
        const std::string& text = field->is_repeated()
                                      ? r->GetRepeatedStringReference(holder, field, i, &scratch)
                                      : r->GetStringReference(holder, field, &scratch);
        if (IsValidUtf8(text)) return Status::Ok();
        return InputError(file.Locate(path), path, "\"" + text + "\"", "not valid UTF-8 text",
                          "UTF-8 (a string field of a protobuf file is text)");
      }));
  // Every number against the range its field declares (proto/range.proto).
  MOESIM_RETURN_IF_ERROR(CheckDeclaredRanges(
      *message, [&file](const std::string& field) { return file.Locate(field); }));
  return file;
}

TextFile TextFile::WithValueFrom(std::string field_path, Location where) const {
  TextFile copy = *this;
  copy.set_elsewhere_.emplace_back(std::move(field_path), std::move(where));
  return copy;
}

namespace {

// Whether `prefix` is `path` or a field above it ("plan" covers "plan.ep", "a.b" covers
// "a.b[2].c"); a prefix without [index] also covers every element ("a.b.c" covers "a.b[2].c").
bool CoversPath(std::string_view prefix, std::string_view path) {
  auto below = [](std::string_view p, std::string_view path) {
    return path.substr(0, p.size()) == p &&
           (path.size() == p.size() || path[p.size()] == '.' || path[p.size()] == '[');
  };
  if (below(prefix, path)) return true;
  if (prefix.find('[') != std::string_view::npos) return false;
  std::string bare;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '[') {
      i = std::min(path.find(']', i), path.size());
      continue;
    }
    bare += path[i];
  }
  return below(prefix, bare);
}

}  // namespace

Location TextFile::Locate(std::string_view field_path) const {
  Location best{path_, 0, 0};
  if (!root_field_.empty() && field_path.substr(0, root_field_.size()) == root_field_) {
    field_path.remove_prefix(root_field_.size());
    if (!field_path.empty() && field_path.front() == '.') field_path.remove_prefix(1);
  }
  const std::pair<std::string, Location>* elsewhere = nullptr;
  for (const auto& set : set_elsewhere_) {
    if (CoversPath(set.first, field_path) &&
        (elsewhere == nullptr || set.first.size() >= elsewhere->first.size())) {
      elsewhere = &set;
    }
  }
  if (elsewhere != nullptr) return elsewhere->second;
  const TextFormat::ParseInfoTree* tree = tree_.get();
  const Descriptor* type = root_;
  while (!field_path.empty() && tree != nullptr && type != nullptr) {
    const size_t dot = field_path.find('.');
    std::string_view part = field_path.substr(0, dot);
    field_path = dot == std::string_view::npos ? std::string_view{} : field_path.substr(dot + 1);

    int index = -1;
    if (const size_t bracket = part.find('['); bracket != std::string_view::npos) {
      index = std::stoi(std::string(part.substr(bracket + 1)));
      part = part.substr(0, bracket);
    }
    const FieldDescriptor* field = type->FindFieldByName(std::string(part));
    if (field == nullptr) break;
    const bool element_asked = index >= 0;
    if (field->is_repeated() && index < 0) index = 0;  // the first occurrence stands for the list
    if (element_asked && field->is_repeated() && field->type() != FieldDescriptor::TYPE_MESSAGE) {
      const Location element = LocateElement(*tree, field, index);
      if (element.line > 0) best = element;
      break;
    }
    const auto where = tree->GetLocation(field, field->is_repeated() ? index : -1);
    if (where.line < 0) break;
    best = Location{path_, where.line + 1, where.column + 1};
    if (field->type() != FieldDescriptor::TYPE_MESSAGE) break;
    tree = tree->GetTreeForNested(field, field->is_repeated() ? index : -1);
    type = field->message_type();
  }
  return best;
}

Location TextFile::LocateElement(const TextFormat::ParseInfoTree& tree,
                                 const FieldDescriptor* field, int element) const {
  using google::protobuf::io::Tokenizer;
  // Byte offset where each line starts, to restart tokenizing at a recorded (line, column).
  std::vector<size_t> line_start = {0};
  for (size_t i = 0; i < text_->size(); ++i) {
    if ((*text_)[i] == '\n') line_start.push_back(i + 1);
  }
  Location first;
  int seen = 0;
  for (int occurrence = 0;; ++occurrence) {
    const auto at = tree.GetLocation(field, occurrence);
    if (at.line < 0 || static_cast<size_t>(at.line) >= line_start.size()) break;
    if (occurrence == 0) first = Location{path_, at.line + 1, at.column + 1};
    // Columns expand tabs to multiples of 8, as protobuf's tokenizer counts them.
    size_t offset = line_start[at.line];
    for (int column = 0; column < at.column && offset < text_->size(); ++offset) {
      column = (*text_)[offset] == '\t' ? (column / 8 + 1) * 8 : column + 1;
    }
    google::protobuf::io::ArrayInputStream input(text_->data() + offset,
                                                 static_cast<int>(text_->size() - offset));
    struct Quiet : google::protobuf::io::ErrorCollector {
      void AddError(int, int, const std::string&) override {}
    } quiet;
    Tokenizer tokens(&input, &quiet);
    tokens.set_comment_style(Tokenizer::SH_COMMENT_STYLE);
    auto here = [&](const Tokenizer::Token& t) {
      // The tokenizer restarted mid-line: its line 0 is `at.line`, its columns are offset by it.
      return Location{path_, at.line + t.line + 1, (t.line == 0 ? at.column : 0) + t.column + 1};
    };
    tokens.Next();  // the field name
    tokens.Next();  // ':'
    if (tokens.current().text == ":") tokens.Next();
    if (tokens.current().text != "[") {  // a single value
      if (seen++ == element) return here(tokens.current());
      continue;
    }
    while (tokens.Next() && tokens.current().text != "]") {
      if (tokens.current().text == ",") continue;
      if (tokens.current().text == "-") tokens.Next();  // a negative number is two tokens
      if (seen++ == element) return here(tokens.current());
    }
  }
  return first;
}

}  // namespace moesim
