#include "proto/status.h"

namespace moesim {

std::string Location::ToString() const {
  if (file.empty()) return {};
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string Join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += items[i];
  }
  return out;
}

Error InputError(const Location& where, std::string_view field, std::string_view value,
                 std::string_view problem, std::string_view valid) {
  std::string out = where.ToString();
  if (!out.empty()) out += ": ";
  if (!field.empty()) {
    out += field;
    if (!value.empty()) {
      out += " = ";
      out += value;
    }
    out += ": ";
  }
  out += problem;
  if (!valid.empty()) {
    out += "; valid: ";
    out += valid;
  }
  return Error(std::move(out));
}

}  // namespace moesim
