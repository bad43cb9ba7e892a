// Writing an output file so that it is whole or absent: the bytes go to a temporary file beside
// the target (same folder, so same filesystem), which is flushed to disk (fsync) and renamed over
// the target only when everything was written. A full disk, a crash or an error half-way leaves
// the target as it was (absent, or the previous version), never a 0-byte or cut file.
//
//   MOESIM_RETURN_IF_ERROR(CheckOutputPath(o.out, "--out"));   // before long work
//   ...
//   MOESIM_RETURN_IF_ERROR(WriteFileAtomically(o.out, bytes, "the result file"));
//
//   // Writing in pieces (a trace): write through fd() or Write(), then Commit().
//   MOESIM_ASSIGN_OR_RETURN(AtomicFile f, AtomicFile::Create(path, "the trace file"));
//   MOESIM_RETURN_IF_ERROR(f.Write(header));
//   MOESIM_RETURN_IF_ERROR(f.Commit());          // not committed: the destructor removes it
//
// A target that exists and is not a regular file (/dev/stdout, /dev/null, a FIFO) cannot be
// renamed over: it is opened and written directly. Errors name the target and carry errno's text
// ("r.pb: cannot write the result file: No space left on device"). An AtomicFile is move-only and
// not thread-safe; different AtomicFiles may be used from different threads.
#pragma once

#include <string>
#include <string_view>

#include "proto/status.h"

namespace moesim {

// Whether `path` can be written, checked before long work so a typo fails at once: not empty,
// not a directory, and its folder exists and is writable. `option` names the flag in the error
// ("--out = /no/such/r.pb: cannot write in folder /no/such: No such file or directory").
Status CheckOutputPath(const std::string& path, std::string_view option);

// Whether about `bytes` fit in the free space of `path`'s folder (std::filesystem::space), checked
// before a long write: "--output = t.moetrace: the trace needs about 37.3 TiB but its folder has
// 12.0 GiB free". Unknown free space (a special file, a filesystem that does not say) passes.
Status CheckSpaceFor(const std::string& path, double bytes, std::string_view option,
                     std::string_view what);

class AtomicFile {
 public:
  // Creates the temporary file ".<name>.<pid>.<n>.tmp" beside `path` (permissions 0666 less the
  // umask, as a plain create would give). `what` names the file in errors ("the timeline").
  static StatusOr<AtomicFile> Create(const std::string& path, std::string_view what);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&& other) noexcept;
  ~AtomicFile();  // not committed: the temporary file is removed, the target left as it was

  // The descriptor to write to (for writers that write themselves, such as a protobuf
  // FileOutputStream); -1 after Commit.
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

  // Writes all of `bytes` (retrying short writes and EINTR).
  Status Write(std::string_view bytes);
  // The error for a write through fd() that failed with `error` (an errno value).
  Error WriteError(int error) const;
  // fsync, close, rename over the target. After an error the target is left as it was.
  Status Commit();

 private:
  AtomicFile() = default;
  void Abandon();

  std::string path_;    // as the caller named it, for errors
  std::string target_;  // what the rename replaces: path_, or the file a symbolic link names
  std::string temp_;    // empty when writing the target directly
  std::string what_;
  int fd_ = -1;
};

// The whole of `bytes` to `path` through an AtomicFile.
Status WriteFileAtomically(const std::string& path, std::string_view bytes, std::string_view what);

}  // namespace moesim
