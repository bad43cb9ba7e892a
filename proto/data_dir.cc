#include "proto/data_dir.h"

#include <cstdlib>
#include <system_error>

namespace moesim {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kValidDataDir =
    "a folder holding catalog/ and scenarios/, as PREFIX/share/moesim after `cmake --install "
    "build --prefix PREFIX`";

bool HoldsCatalog(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir / "catalog", ec);
}

// "MOESIM_DATA_DIR = PATH: PROBLEM; valid: ...": InputError's shape, with the path escaped but
// never cut (a data folder's path is often longer than the 80 characters a value may echo).
Error DataDirError(const std::string& path, std::string_view problem) {
  return Error("MOESIM_DATA_DIR = " + Location{path}.ToString() + ": " + std::string(problem) +
               "; valid: " + std::string(kValidDataDir));
}

}  // namespace

StatusOr<std::string> FindDataDir(std::string_view env, const fs::path& executable) {
  if (!env.empty()) {
    const std::string dir(env);
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return DataDirError(dir, "no such folder");
    if (!HoldsCatalog(dir)) return DataDirError(dir, "has no catalog/ folder");
    return dir;
  }
  // PREFIX/bin/moesim -> PREFIX/share/moesim; build/sim/moesim -> build/share/moesim.
  const fs::path beside =
      (executable.parent_path().parent_path() / "share" / "moesim").lexically_normal();
  if (HoldsCatalog(beside)) return beside.string();
  return Error("moesim's data not found: MOESIM_DATA_DIR is unset and " +
               Location{beside.string()}.ToString() + " (beside the executable " +
               Location{executable.string()}.ToString() +
               ") has no catalog/ folder; valid: MOESIM_DATA_DIR set to " +
               std::string(kValidDataDir));
}

StatusOr<std::string> DataDir() {
  const char* env = std::getenv("MOESIM_DATA_DIR");
  std::error_code ec;
  const fs::path executable = fs::read_symlink("/proc/self/exe", ec);
  if (ec && (env == nullptr || *env == '\0')) {
    return Error(
        "moesim's data not found: MOESIM_DATA_DIR is unset and the running executable "
        "is unknown (/proc/self/exe: " +
        ec.message() + "); valid: MOESIM_DATA_DIR set to " + std::string(kValidDataDir));
  }
  return FindDataDir(env == nullptr ? "" : env, executable);
}

}  // namespace moesim
