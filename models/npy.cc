#include "models/npy.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <string_view>

#include "proto/host_memory.h"
#include "proto/input_file.h"

namespace moesim::models {
namespace {

// The value of 'key' in the header dict, up to the next ',' at depth 0 or '}'.
std::string_view DictValue(std::string_view dict, std::string_view key) {
  for (const char quote : {'\'', '"'}) {
    const std::string quoted = std::string(1, quote) + std::string(key) + quote;
    size_t p = dict.find(quoted);
    if (p == std::string_view::npos) continue;
    p = dict.find(':', p + quoted.size());
    if (p == std::string_view::npos) return {};
    ++p;
    while (p < dict.size() && dict[p] == ' ') ++p;
    int depth = 0;
    size_t q = p;
    for (; q < dict.size(); ++q) {
      const char c = dict[q];
      if (c == '(') ++depth;
      if (c == ')') --depth;
      if ((c == ',' && depth == 0) || c == '}') break;
    }
    std::string_view v = dict.substr(p, q - p);
    while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
    return v;
  }
  return {};
}

}  // namespace

StatusOr<NpyHeader> ReadNpyHeader(std::ifstream& in, const std::string& input, bool allow_float) {
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) {
    return Error(input + ": not a .npy file (no \\x93NUMPY magic at the start)");
  }
  const int major = static_cast<unsigned char>(magic[6]);
  uint64_t header_len = 0;
  uint64_t prefix = 0;
  if (major == 1) {
    unsigned char b[2];
    if (!in.read(reinterpret_cast<char*>(b), 2)) return Error(input + ": .npy header cut off");
    header_len = b[0] | (b[1] << 8);
    prefix = 10;
  } else if (major == 2 || major == 3) {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char*>(b), 4)) return Error(input + ": .npy header cut off");
    header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint64_t>(b[3]) << 24);
    prefix = 12;
  } else {
    return Error(input + ": .npy format version " + std::to_string(major) +
                 " unknown; valid: 1, 2, 3");
  }
  if (header_len > (1 << 20)) return Error(input + ": .npy header length implausible");
  std::string dict(header_len, '\0');
  if (!in.read(dict.data(), static_cast<std::streamsize>(header_len))) {
    return Error(input + ": .npy header cut off");
  }
  NpyHeader h;
  h.data_offset = prefix + header_len;
  std::string descr(DictValue(dict, "descr"));
  if (descr.size() >= 2 && (descr.front() == '\'' || descr.front() == '"')) {
    descr = descr.substr(1, descr.size() - 2);
  }
  const bool little = !descr.empty() && (descr[0] == '<' || descr[0] == '|');
  const bool is_float = allow_float && (descr == "<f4" || descr == "<f8");
  if (allow_float && !is_float) {
    return Error(input + ": .npy descr = '" + descr +
                 "': router logits must be little-endian floats; valid: <f4, <f8 (np.float32, "
                 "np.float64)");
  }
  if (!is_float &&
      (!little || descr.size() != 3 || (descr[1] != 'i' && descr[1] != 'u') ||
       (descr[2] != '1' && descr[2] != '2' && descr[2] != '4' && descr[2] != '8') ||
       (descr[0] == '|') != (descr[2] == '1'))) {
    return Error(input + ": .npy descr = '" + descr +
                 "': expert ids must be little-endian integers; valid: <i8, <i4, <i2, |i1, <u8, "
                 "<u4, <u2, |u1 (np.int64 ... np.uint8)");
  }
  h.kind = descr[1];
  h.itemsize = static_cast<size_t>(descr[2] - '0');
  const std::string_view fortran = DictValue(dict, "fortran_order");
  if (fortran != "False") {
    return Error(input + ": .npy fortran_order = " + std::string(fortran) +
                 ": expected False (C order; np.ascontiguousarray first)");
  }
  std::string_view shape = DictValue(dict, "shape");
  const std::string shape_text(shape);
  std::vector<uint64_t> dims;
  if (shape.size() >= 2 && shape.front() == '(' && shape.back() == ')') {
    shape = shape.substr(1, shape.size() - 2);
    while (!shape.empty()) {
      while (!shape.empty() && (shape.front() == ' ' || shape.front() == ',')) {
        shape.remove_prefix(1);
      }
      if (shape.empty()) break;
      uint64_t d = 0;
      const auto [end, ec] = std::from_chars(shape.data(), shape.data() + shape.size(), d);
      if (ec != std::errc()) return Error(input + ": .npy shape = " + shape_text + " unreadable");
      dims.push_back(d);
      shape.remove_prefix(static_cast<size_t>(end - shape.data()));
    }
  }
  if (dims.size() != 2 || dims[1] == 0) {
    return Error(input + ": .npy shape = " + shape_text +
                 (allow_float ? ": expected 2 dimensions [tokens, experts] with experts >= 1"
                              : ": expected 2 dimensions [tokens, top_k] with top_k >= 1"));
  }
  h.rows = dims[0];
  h.columns = dims[1];
  return h;
}

StatusOr<NpyFile> OpenNpy(const std::string& path, bool allow_float) {
  MOESIM_RETURN_IF_ERROR(CheckRegularFile(path));
  NpyFile f;
  f.in.open(path, std::ios::binary);
  if (!f.in) return Error(path + ": cannot open: " + std::strerror(errno));
  MOESIM_ASSIGN_OR_RETURN(f.header, ReadNpyHeader(f.in, path, allow_float));
  const NpyHeader& h = f.header;
  f.in.seekg(0, std::ios::end);
  const uint64_t data_bytes = static_cast<uint64_t>(f.in.tellg()) - h.data_offset;
  // rows x columns x itemsize, compared without overflow: rows may be any number in the header.
  const bool fits = h.rows <= data_bytes / h.itemsize / h.columns;
  f.count = fits ? h.rows * h.columns : 0;
  if (!fits || data_bytes != f.count * h.itemsize) {
    return Error(path + ": .npy data is " + std::to_string(data_bytes) + " bytes; shape (" +
                 std::to_string(h.rows) + ", " + std::to_string(h.columns) + ") x " +
                 std::to_string(h.itemsize) + " bytes needs " +
                 (fits ? std::to_string(f.count * h.itemsize) : std::string("more")) +
                 " (truncated?)");
  }
  f.in.seekg(static_cast<std::streamoff>(h.data_offset));
  return f;
}

StatusOr<NpyMatrix> ReadNpyFloats(const std::string& path) {
  MOESIM_ASSIGN_OR_RETURN(NpyFile f, OpenNpy(path, /*allow_float=*/true));
  const NpyHeader& h = f.header;
  const uint64_t count = f.count;
  std::ifstream& in = f.in;
  MOESIM_RETURN_IF_ERROR(CheckFitsInMemory(8.0 * static_cast<double>(count),
                                           path + "'s " + std::to_string(count) + " logits",
                                           "a smaller file", AvailableHostBytes()));
  NpyMatrix m{h.rows, h.columns, std::vector<double>(count)};
  std::vector<char> buffer;
  const uint64_t per_read = 1 << 16;  // values per read
  for (uint64_t done = 0; done < count;) {
    const uint64_t n = std::min(per_read, count - done);
    buffer.resize(n * h.itemsize);
    if (!in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()))) {
      return Error(path + ": cannot read the .npy data at value " + std::to_string(done));
    }
    for (uint64_t i = 0; i < n; ++i) {
      double v = 0;
      if (h.itemsize == 4) {
        float f = 0;
        std::memcpy(&f, buffer.data() + i * 4, 4);  // little-endian, as x86 and aarch64 are
        v = f;
      } else {
        std::memcpy(&v, buffer.data() + i * 8, 8);
      }
      if (!std::isfinite(v)) {
        const uint64_t index = done + i;
        return Error(path + ": element [" + std::to_string(index / h.columns) + ", " +
                     std::to_string(index % h.columns) + "] = " + std::to_string(v) +
                     ": not finite; router logits must be finite numbers");
      }
      m.values[done + i] = v;
    }
    done += n;
  }
  return m;
}

}  // namespace moesim::models
