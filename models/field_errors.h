// Errors about the fields of one block of a scenario (routing.synthetic, routing.scores), located
// in the scenario file when there is one, and the check those blocks share: a field given with a
// kind (a distribution, a router) that does not use it is refused, so a typo cannot go unnoticed.
//
//   const FieldErrors errors(file, "routing.scores");
//   return errors.At("bias", "2 values", "one bias per expert", "4 values, or none");
//   -> "s.pbtxt:9:5: routing.scores.bias = 2 values: one bias per expert; valid: 4 values, or none"
//
// Thread-safety: the class holds a pointer to the file and nothing else.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "proto/status.h"
#include "proto/text_file.h"

namespace moesim::models {

class FieldErrors {
 public:
  // `file` may be null (no location); it must outlive this object.
  FieldErrors(const TextFile* file, std::string block) : file_(file), block_(std::move(block)) {}
  Error At(const std::string& field, const std::string& value, const std::string& problem,
           const std::string& valid = {}) const {
    return InputError(Locate(field), Path(field), value, problem, valid);
  }
  // "routing.scores.skew", and where it was written (nowhere without a file).
  std::string Path(const std::string& field) const { return block_ + "." + field; }
  Location Locate(const std::string& field) const {
    return file_ ? file_->Locate(Path(field)) : Location{};
  }

 private:
  const TextFile* file_;
  std::string block_;
};

// The shortest text that reads back as the same double ("1.25", "nan").
std::string NumberText(double x);

// An optional field of a block: whether it was given, its value as text, and the kinds (enum
// values) that use it.
struct FieldUse {
  const char* field;
  bool given;
  std::string value;
  std::vector<int> kinds;
};

// The first field given with a kind that does not use it, as "<block>.<field> = <value>: does not
// apply to <what> <kind_text>; valid: only with <what> A or B" (A, B: name(kind) of its kinds).
Status RejectUnused(std::span<const FieldUse> fields, int kind, const std::string& what,
                    const std::string& kind_text, const std::function<std::string(int)>& name,
                    const FieldErrors& errors);

}  // namespace moesim::models
