#include "proto/status.h"

namespace moesim {

namespace {

// Length of the valid UTF-8 sequence starting at text[i] (2 to 4), or 0 if there is none
// (RFC 3629, section 4: the well-formed byte sequences).
size_t Utf8Length(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // the allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    length = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    length = 3;
    if (c == 0xE0) low = 0xA0;   // no overlong forms
    if (c == 0xED) high = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    length = 4;
    if (c == 0xF0) low = 0x90;   // no overlong forms
    if (c == 0xF4) high = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

}  // namespace

std::string Printable(std::string_view text, size_t max_chars) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  size_t shown = 0;  // characters of `out`, a UTF-8 character counting one
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    char unit[4];
    size_t unit_bytes = 1, unit_chars = 1, consumed = 1;
    if (c == '\n' || c == '\r' || c == '\t') {
      unit[0] = '\\';
      unit[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
      unit_bytes = unit_chars = 2;
    } else if (c >= 0x20 && c < 0x7F) {
      unit[0] = static_cast<char>(c);
    } else if (const size_t length = c >= 0x80 ? Utf8Length(text, i) : 0; length > 0) {
      unit_bytes = consumed = length;  // a whole UTF-8 character, shown as it is
      text.copy(unit, length, i);
    } else {  // a control byte, DEL, or a byte outside valid UTF-8
      unit[0] = '\\';
      unit[1] = 'x';
      unit[2] = kHex[c >> 4];
      unit[3] = kHex[c & 0xF];
      unit_bytes = unit_chars = 4;
    }
    if (shown + unit_chars > max_chars) return out + "...";
    out.append(unit, unit_bytes);
    shown += unit_chars;
    i += consumed;
  }
  return out;
}

bool IsValidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t length = Utf8Length(text, i);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

std::string Location::ToString() const {
  if (file.empty()) return {};
  std::string out = Printable(file, std::string_view::npos);
  if (line <= 0) return out;
  out += ":" + std::to_string(line);
  if (column > 0) out += ":" + std::to_string(column);
  return out;
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
      out += Printable(value);
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
