// What the harnesses in tests/fuzz/ share: the fuzzer's bytes as text, or as a file for the
// readers whose entry point takes a path (the CLI's own entry point, so the fuzzer reaches what a
// user's file reaches, CheckRegularFile and the size limit included).
//
//   static moesim::fuzz::InputFile file(".moetrace");
//   const std::string& path = file.Write(data, size);
//   auto reader = moesim::models::TraceReader::Open(path);
//
// One InputFile per harness and process (a static): the file is named for the process id, so
// parallel fuzzing jobs (-jobs=N) never share one, and rewritten for each input. Not thread-safe.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace moesim::fuzz {

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

class InputFile {
 public:
  // A file in $TMPDIR (else /tmp) ending in `suffix`, which tells readers such as ReadMeasured
  // and LoadModelArgument what the file is.
  explicit InputFile(std::string_view suffix) {
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir && *dir ? dir : "/tmp") + "/moesim-fuzz-" + std::to_string(getpid()) +
            std::string(suffix);
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile() { std::remove(path_.c_str()); }

  // Replaces the file's contents with `data`; the path. A file that cannot be written is the
  // machine's fault, not the input's: the harness stops with a message rather than fuzz nothing.
  const std::string& Write(const uint8_t* data, size_t size) {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    if (f == nullptr || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
      std::fprintf(stderr, "fuzz harness: cannot write %s\n", path_.c_str());
      std::abort();
    }
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace moesim::fuzz
