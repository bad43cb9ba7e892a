#include "proto/input_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace moesim {
namespace {

// "67108864 bytes (64 MiB)", "10 bytes": a limit with its binary unit when it is a whole number
// of MiB or GiB.
std::string Limit(uint64_t bytes) {
  std::string out = std::to_string(bytes) + " bytes";
  if (bytes >= (uint64_t{1} << 30) && bytes % (uint64_t{1} << 30) == 0) {
    out += " (" + std::to_string(bytes >> 30) + " GiB)";
  } else if (bytes >= (uint64_t{1} << 20) && bytes % (uint64_t{1} << 20) == 0) {
    out += " (" + std::to_string(bytes >> 20) + " MiB)";
  }
  return out;
}

Error CannotOpen(const std::string& path, int error) {
  return Error(Location{path}.ToString() + ": cannot open file: " + std::strerror(error));
}

}  // namespace

Status CheckRegularFile(const std::string& path) {
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (ec) return CannotOpen(path, ec.value());
  const char* kind = nullptr;
  switch (status.type()) {
    case std::filesystem::file_type::regular:
      return Status::Ok();
    case std::filesystem::file_type::directory:
      kind = "is a directory";
      break;
    case std::filesystem::file_type::character:
      kind = "is a character device";
      break;
    case std::filesystem::file_type::block:
      kind = "is a block device";
      break;
    case std::filesystem::file_type::fifo:
      kind = "is a FIFO (named pipe)";
      break;
    case std::filesystem::file_type::socket:
      kind = "is a socket";
      break;
    default:
      kind = "is not a regular file";
      break;
  }
  return InputError(Location{path}, "", "", kind, "a regular file");
}

StatusOr<std::string> ReadInputFile(const std::string& path, uint64_t max_bytes) {
  MOESIM_RETURN_IF_ERROR(CheckRegularFile(path));
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return CannotOpen(path, ec.value());
  if (size > max_bytes) {
    return InputError(Location{path}, "", "", "is " + std::to_string(size) + " bytes",
                      "at most " + Limit(max_bytes) + ", the limit on a file read whole");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return CannotOpen(path, errno);
  std::string text(size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (in.bad()) {
    return Error(Location{path}.ToString() + ": cannot read file: " + std::strerror(errno));
  }
  // A file that shrank since file_size: keep what was there.
  text.resize(static_cast<size_t>(in.gcount()));
  // One that grew: read on, up to the limit.
  char extra[1 << 16];
  while (in.read(extra, sizeof extra) || in.gcount() > 0) {
    if (text.size() + static_cast<uint64_t>(in.gcount()) > max_bytes) {
      return InputError(Location{path}, "", "", "grew past the limit while being read",
                        "at most " + Limit(max_bytes) + ", the limit on a file read whole");
    }
    text.append(extra, static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) {
    return Error(Location{path}.ToString() + ": cannot read file: " + std::strerror(errno));
  }
  return text;
}

StatusOr<bool> ReadLine(std::istream& in, std::string* line, const Location& where,
                        uint64_t max_bytes) {
  line->clear();
  std::streambuf* buffer = in.rdbuf();
  bool any = false;
  for (;;) {
    const int c = buffer->sbumpc();
    if (c == std::char_traits<char>::eof()) break;
    any = true;
    if (c == '\n') return true;
    if (line->size() >= max_bytes) {
      line->clear();
      return InputError(where, "", "", "line longer than the limit",
                        "lines of at most " + Limit(max_bytes));
    }
    line->push_back(static_cast<char>(c));
  }
  return any;
}

Status CheckJsonDepth(std::string_view json, const Location& where, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character, a quote included
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth <= max_depth) continue;
      // Line and column of byte i, counting from `where` (a tab counts one column).
      Location at{where.file, 0, 0};
      if (where.line > 0) {
        at.line = where.line;
        size_t line_start = 0;
        for (size_t k = 0; k < i; ++k) {
          if (json[k] == '\n') {
            ++at.line;
            line_start = k + 1;
          }
        }
        const int first = at.line == where.line ? std::max(where.column, 1) : 1;
        at.column = first + static_cast<int>(i - line_start);
      }
      return InputError(at, "", "",
                        "JSON nested deeper than " + std::to_string(max_depth) + " levels",
                        "at most " + std::to_string(max_depth) + " levels of [ and {");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return Status::Ok();
}

}  // namespace moesim
