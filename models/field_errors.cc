#include "models/field_errors.h"

#include <algorithm>
#include <charconv>

namespace moesim::models {

std::string NumberText(double x) {
  char buffer[32];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, x).ptr;
  return std::string(buffer, end);
}

Status RejectUnused(std::span<const FieldUse> fields, int kind, const std::string& what,
                    const std::string& kind_text, const std::function<std::string(int)>& name,
                    const FieldErrors& errors) {
  for (const FieldUse& f : fields) {
    if (!f.given) continue;
    if (std::find(f.kinds.begin(), f.kinds.end(), kind) != f.kinds.end()) continue;
    std::vector<std::string> names;
    for (int k : f.kinds) names.push_back(name(k));
    return errors.At(f.field, f.value, "does not apply to " + what + " " + kind_text,
                     "only with " + what + " " + Join(names, " or "));
  }
  return Status::Ok();
}

}  // namespace moesim::models
