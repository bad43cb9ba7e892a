// Reading user input (proto/input_file.h): special files refused by kind, sizes, lines and JSON
// nesting held to their limits, each with its message.
#include "proto/input_file.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "test_paths.h"

namespace moesim {
namespace {

using testing::TempPath;

std::string WriteText(const std::string& name, const std::string& text) {
  const std::string path = TempPath(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

}  // namespace

TEST_CASE("Input files: a directory, a device, a FIFO or a missing file, each said by kind") {
  const std::string dir = testing::SourcePath("tests/fixtures/bad");
  CHECK(CheckRegularFile(dir).error().message() == dir + ": is a directory; valid: a regular file");
  CHECK(ReadInputFile("/dev/zero").error().message() ==
        "/dev/zero: is a character device; valid: a regular file");
  const std::string fifo = TempPath("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // Refused by its kind, before any open that would wait for a writer.
  CHECK(ReadInputFile(fifo).error().message() ==
        fifo + ": is a FIFO (named pipe); valid: a regular file");
  std::filesystem::remove(fifo);
  CHECK(ReadInputFile("/no/such/file.csv").error().message() ==
        "/no/such/file.csv: cannot open file: No such file or directory");
  const std::string ok = WriteText("ok.txt", "abc");
  CHECK(*ReadInputFile(ok) == "abc");
  std::filesystem::remove(ok);
}

TEST_CASE("Input files: a file over the size limit is refused before it is read") {
  const std::string small = WriteText("eleven.txt", "0123456789\n");  // 11 bytes
  CHECK(ReadInputFile(small, 11).ok());
  CHECK(ReadInputFile(small, 10).error().message() ==
        small + ": is 11 bytes; valid: at most 10 bytes, the limit on a file read whole");
  std::filesystem::remove(small);
  // 1 GiB + 1 byte, sparse (no disk used): over the default limit, refused without reading it.
  const std::string big = TempPath("big.pbtxt");
  std::ofstream(big).close();
  std::filesystem::resize_file(big, kMaxInputFileBytes + 1);
  CHECK(ReadInputFile(big).error().message() ==
        big +
            ": is 1073741825 bytes; valid: at most 1073741824 bytes (1 GiB), the limit on a file "
            "read whole");
  std::filesystem::remove(big);
}

TEST_CASE("Input lines: a line over the limit is an error at its line, never read whole") {
  std::istringstream in("abcd\nabcde\nlast");
  std::string line;
  CHECK(*ReadLine(in, &line, Location{"f.csv", 1}, 4));
  CHECK(line == "abcd");  // 4 bytes: at the limit, allowed
  const StatusOr<bool> second = ReadLine(in, &line, Location{"f.csv", 2}, 4);
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().message() ==
        "f.csv:2: line longer than the limit; valid: lines of at most 4 bytes");
  std::istringstream tail("x\nlast");
  CHECK(*ReadLine(tail, &line, Location{"f.csv", 1}, 4));
  CHECK(*ReadLine(tail, &line, Location{"f.csv", 2}, 4));
  CHECK(line == "last");  // a last line without '\n' counts
  CHECK_FALSE(*ReadLine(tail, &line, Location{"f.csv", 3}, 4));
  // The default: 64 MiB; a 64 MiB + 1 line of zeros is refused at byte 67,108,865.
  std::istringstream zeros(std::string((64 << 20) + 1, '\0'));
  CHECK(ReadLine(zeros, &line, Location{"z.jsonl", 1}).error().message() ==
        "z.jsonl:1: line longer than the limit; valid: lines of at most 67108864 bytes (64 MiB)");
}

TEST_CASE("JSON nesting: deeper than the limit is refused at the bracket that goes too deep") {
  // [[[1]]] nests 3 deep: allowed at 3; at 2 the third '[' (column 3) is one too deep.
  CHECK(CheckJsonDepth("[[[1]]]", Location{"f.jsonl", 5, 1}, 3).ok());
  CHECK(CheckJsonDepth("[[[1]]]", Location{"f.jsonl", 5, 1}, 2).error().message() ==
        "f.jsonl:5:3: JSON nested deeper than 2 levels; valid: at most 2 levels of [ and {");
  // Brackets in strings are not nesting, an escaped quote does not end a string.
  CHECK(CheckJsonDepth("[\"[[[[\", \"\\\"[[\"]", Location{"f.jsonl", 1, 1}, 1).ok());
  // Over lines: the error's line and column count from `where` (here line 1, column 1): the third
  // bracket is line 3, column 3.
  CHECK(CheckJsonDepth("{\n [\n  [1]]}", Location{"r.json", 1, 1}, 2).error().message() ==
        "r.json:3:3: JSON nested deeper than 2 levels; valid: at most 2 levels of [ and {");
  // The default limit, 64: 64 levels pass, 65 do not (the 65th '[' is column 65).
  CHECK(CheckJsonDepth(std::string(64, '[') + std::string(64, ']'), Location{"d", 1, 1}).ok());
  CHECK(CheckJsonDepth(std::string(20000, '['), Location{"d", 1, 1}).error().message() ==
        "d:1:65: JSON nested deeper than 64 levels; valid: at most 64 levels of [ and {");
}

}  // namespace moesim
