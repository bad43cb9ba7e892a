#include "proto/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "proto/host_memory.h"

namespace moesim {
namespace {

namespace fs = std::filesystem;

// The folder a file at `path` lands in ("." for a bare name).
fs::path FolderOf(const fs::path& path) {
  const fs::path folder = path.parent_path();
  return folder.empty() ? fs::path(".") : folder;
}

// The file a write to `path` should replace: the target of a symbolic link (so that renaming
// replaces the file, not the link), else `path` itself.
fs::path Target(const std::string& path) {
  std::error_code ec;
  if (fs::is_symlink(fs::symlink_status(path, ec))) {
    const fs::path resolved = fs::weakly_canonical(path, ec);
    if (!ec) return resolved;
  }
  return path;
}

}  // namespace

Status CheckOutputPath(const std::string& path, std::string_view option) {
  if (path.empty()) return InputError({}, option, "\"\"", "an empty path", "a file path");
  const fs::path target = Target(path);
  std::error_code ec;
  const fs::file_status status = fs::status(target, ec);
  if (fs::is_directory(status)) {
    return InputError({}, option, path, "is a directory", "a file path");
  }
  if (fs::exists(status) && !fs::is_regular_file(status)) return Status::Ok();  // /dev/stdout
  const fs::path folder = FolderOf(target);
  const fs::file_status folder_status = fs::status(folder, ec);
  const int error = !fs::exists(folder_status)            ? ENOENT
                    : !fs::is_directory(folder_status)    ? ENOTDIR
                    : ::access(folder.c_str(), W_OK) != 0 ? errno
                                                          : 0;
  if (error != 0) {
    return InputError({}, option, path,
                      "cannot write in folder " + Printable(folder.string(), std::string::npos) +
                          ": " + std::strerror(error));
  }
  return Status::Ok();
}

Status CheckSpaceFor(const std::string& path, double bytes, std::string_view option,
                     std::string_view what) {
  const fs::path target = Target(path);
  std::error_code ec;
  const fs::file_status status = fs::status(target, ec);
  if (fs::exists(status) && !fs::is_regular_file(status)) return Status::Ok();  // /dev/null
  const fs::space_info space = fs::space(FolderOf(target), ec);
  if (ec || space.available == static_cast<std::uintmax_t>(-1)) return Status::Ok();
  if (bytes <= static_cast<double>(space.available)) return Status::Ok();
  return InputError({}, option, path,
                    std::string(what) + " needs about " + FormatBytes(bytes) +
                        " but its folder has " +
                        FormatBytes(static_cast<double>(space.available)) + " free",
                    "fewer steps, layers, ranks or tokens, or a folder with room");
}

StatusOr<AtomicFile> AtomicFile::Create(const std::string& path, std::string_view what) {
  AtomicFile f;
  f.path_ = path;
  f.what_ = what;
  const fs::path target = Target(path);
  std::error_code ec;
  const fs::file_status status = fs::status(target, ec);
  if (fs::is_directory(status)) {
    return Error(Location{path}.ToString() + ": cannot write " + f.what_ + ": is a directory");
  }
  if (fs::exists(status) && !fs::is_regular_file(status)) {
    // A device or FIFO: nothing to rename over, written as it is.
    f.fd_ = ::open(target.c_str(), O_WRONLY | O_CLOEXEC);
    if (f.fd_ < 0) return f.WriteError(errno);
    return f;
  }
  // Unique within the process by the counter, across processes by the pid; O_EXCL makes sure.
  static std::atomic<uint64_t> counter{0};
  const std::string stem = "." + target.filename().string() + "." + std::to_string(::getpid());
  for (int attempt = 0; attempt < 100; ++attempt) {
    const fs::path temp =
        FolderOf(target) / (stem + "." + std::to_string(counter.fetch_add(1)) + ".tmp");
    f.fd_ = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (f.fd_ >= 0) {
      f.temp_ = temp.string();
      f.target_ = target.string();
      return f;
    }
    if (errno != EEXIST) break;
  }
  return f.WriteError(errno);
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept { *this = std::move(other); }

AtomicFile& AtomicFile::operator=(AtomicFile&& other) noexcept {
  if (this != &other) {
    Abandon();
    path_ = std::move(other.path_);
    target_ = std::move(other.target_);
    temp_ = std::move(other.temp_);
    what_ = std::move(other.what_);
    fd_ = std::exchange(other.fd_, -1);
    other.temp_.clear();
  }
  return *this;
}

AtomicFile::~AtomicFile() { Abandon(); }

void AtomicFile::Abandon() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_.empty()) ::unlink(temp_.c_str());
  temp_.clear();
}

Error AtomicFile::WriteError(int error) const {
  return Error(Location{path_}.ToString() + ": cannot write " + what_ + ": " +
               std::strerror(error));
}

Status AtomicFile::Write(std::string_view bytes) {
  if (fd_ < 0) return WriteError(EBADF);
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return WriteError(errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status AtomicFile::Commit() {
  if (fd_ < 0) return WriteError(EBADF);
  const int fd = std::exchange(fd_, -1);
  if (temp_.empty()) {  // written directly
    if (::close(fd) != 0) return WriteError(errno);
    return Status::Ok();
  }
  // Flushed to disk before the rename, so the name never points at data still in flight.
  if (::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    return WriteError(error);
  }
  if (::close(fd) != 0) return WriteError(errno);
  if (std::rename(temp_.c_str(), target_.c_str()) != 0) return WriteError(errno);
  temp_.clear();
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, std::string_view bytes, std::string_view what) {
  MOESIM_ASSIGN_OR_RETURN(AtomicFile file, AtomicFile::Create(path, what));
  MOESIM_RETURN_IF_ERROR(file.Write(bytes));
  return file.Commit();
}

}  // namespace moesim
