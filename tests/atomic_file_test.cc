// Atomic outputs (proto/atomic_file.h): whole or absent, errors with errno's text, the folder
// checked before long work.
#include "proto/atomic_file.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "test_paths.h"

namespace moesim {
namespace {

namespace fs = std::filesystem;

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Files of `folder` whose name starts with ".<name>." : temporaries left behind.
int Leftovers(const fs::path& folder, const std::string& name) {
  int n = 0;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (entry.path().filename().string().rfind("." + name + ".", 0) == 0) ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("Atomic file: written whole, the temporary renamed away") {
  const fs::path folder = testing::TempPath("atomic");
  fs::create_directories(folder);
  const std::string path = (folder / "r.pb").string();
  REQUIRE(WriteFileAtomically(path, "abc", "the result file").ok());
  CHECK(Read(path) == "abc");
  // Replacing it: the new bytes, no temporary left.
  REQUIRE(WriteFileAtomically(path, "defg", "the result file").ok());
  CHECK(Read(path) == "defg");
  CHECK(Leftovers(folder, "r.pb") == 0);
  fs::remove_all(folder);
}

TEST_CASE("Atomic file: not committed, the target is left as it was") {
  const fs::path folder = testing::TempPath("atomic_abandon");
  fs::create_directories(folder);
  const std::string path = (folder / "t.moetrace").string();
  {
    auto f = AtomicFile::Create(path, "the trace file");
    REQUIRE(f.ok());
    REQUIRE(f->Write("half a trace").ok());
    CHECK(Leftovers(folder, "t.moetrace") == 1);  // the temporary, beside the target
  }                                               // an error half-way: destroyed without Commit
  CHECK_FALSE(fs::exists(path));
  CHECK(Leftovers(folder, "t.moetrace") == 0);
  // With a previous version: still that version.
  REQUIRE(WriteFileAtomically(path, "old", "the trace file").ok());
  {
    auto f = AtomicFile::Create(path, "the trace file");
    REQUIRE(f->Write("new, unfinished").ok());
  }
  CHECK(Read(path) == "old");
  fs::remove_all(folder);
}

TEST_CASE("Atomic file: a write error carries errno's text") {
  // /dev/full: every write fails with ENOSPC, as on a full disk. A device is written directly.
  REQUIRE(fs::exists("/dev/full"));
  CHECK(WriteFileAtomically("/dev/full", "x", "the result file").error().message() ==
        "/dev/full: cannot write the result file: No space left on device");
  // A folder that does not exist: the error says which, with errno's text.
  CHECK(WriteFileAtomically("/no/such/dir/r.pb", "x", "the result file").error().message() ==
        "/no/such/dir/r.pb: cannot write the result file: No such file or directory");
}

TEST_CASE("Atomic file: a symbolic link is written through, not replaced") {
  const fs::path folder = testing::TempPath("atomic_link");
  fs::create_directories(folder);
  const fs::path real = folder / "real.txt";
  const fs::path link = folder / "link.txt";
  REQUIRE(WriteFileAtomically(real.string(), "old", "the file").ok());
  fs::create_symlink(real, link);
  REQUIRE(WriteFileAtomically(link.string(), "new", "the file").ok());
  CHECK(fs::is_symlink(link));
  CHECK(Read(real.string()) == "new");
  fs::remove_all(folder);
}

TEST_CASE("Output paths are checked before long work") {
  CHECK(CheckOutputPath("/no/such/dir/r.pb", "--out").error().message() ==
        "--out = /no/such/dir/r.pb: cannot write in folder /no/such/dir: No such file or "
        "directory");
  const std::string dir = testing::SourcePath("tests/fixtures");
  CHECK(CheckOutputPath(dir, "--timeline").error().message() ==
        "--timeline = " + dir + ": is a directory; valid: a file path");
  CHECK(CheckOutputPath("", "--out").error().message() ==
        "--out = \"\": an empty path; valid: a file path");
  // A file in an existing folder, a device: fine.
  CHECK(CheckOutputPath(testing::TempPath("x.pb"), "--out").ok());
  CHECK(CheckOutputPath("/dev/null", "--out").ok());
}

}  // namespace moesim
