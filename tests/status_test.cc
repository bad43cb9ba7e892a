// Error messages (proto/status.h): what a value echoed in an error looks like, whatever it holds.
#include "proto/status.h"

#include <catch2/catch.hpp>
#include <string>

namespace moesim {

TEST_CASE("Printable escapes newlines, control bytes and bytes outside UTF-8") {
  // 'a', newline -> \n, 'b', 0xff (never valid in UTF-8) -> \xff.
  CHECK(Printable("a\nb\xff") == "a\\nb\\xff");
  CHECK(Printable("tab\there\r") == "tab\\there\\r");
  // Other control bytes and DEL as two lowercase hex digits.
  CHECK(Printable(std::string("\x01\x1f\x7f", 3)) == "\\x01\\x1f\\x7f");
  CHECK(Printable(std::string("a\0b", 3)) == "a\\x00b");
  // Valid UTF-8 is kept: e-acute (C3 A9), the euro sign (E2 82 AC), a 4-byte emoji (F0 9F 98 80).
  CHECK(Printable("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") ==
        "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  // Not UTF-8, byte by byte: an overlong '/' (C0 AF), a surrogate (ED A0 80), a cut euro (E2 82),
  // a code point above U+10FFFF (F4 90 80 80), a lone continuation byte (80).
  CHECK(Printable("\xC0\xAF") == "\\xc0\\xaf");
  CHECK(Printable("\xED\xA0\x80") == "\\xed\\xa0\\x80");
  CHECK(Printable("\xE2\x82") == "\\xe2\\x82");
  CHECK(Printable("\xF4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");
  CHECK(Printable("\x80") == "\\x80");
  CHECK(IsValidUtf8("caf\xC3\xA9"));
  CHECK_FALSE(IsValidUtf8("caf\xC3"));
  CHECK_FALSE(IsValidUtf8("\xED\xA0\x80"));
}

TEST_CASE("Printable cuts at 80 characters and never splits a character or an escape") {
  // 100 characters: the first 80 and "...".
  CHECK(Printable(std::string(100, 'x')) == std::string(80, 'x') + "...");
  // Exactly 80: nothing cut.
  CHECK(Printable(std::string(80, 'x')) == std::string(80, 'x'));
  // 78 + "\n" (2 characters escaped) = 80: fits. 79 + 2 = 81: the escape does not fit, and is not
  // cut in half.
  CHECK(Printable(std::string(78, 'x') + "\n") == std::string(78, 'x') + "\\n");
  CHECK(Printable(std::string(79, 'x') + "\n") == std::string(79, 'x') + "...");
  // A UTF-8 character counts one: 79 x's + e-acute = 80 characters (81 bytes) fit; 'y' does not.
  CHECK(Printable(std::string(79, 'x') + "\xC3\xA9y") == std::string(79, 'x') + "\xC3\xA9...");
  // A 50 MB line becomes 83 bytes.
  CHECK(Printable(std::string(50'000'000, 'z')).size() == 83);
}

TEST_CASE("InputError echoes the value escaped and cut, and the file name escaped") {
  // The value: 100 a's and a newline; shown: 80 a's and "...".
  CHECK(InputError(Location{"s.pbtxt", 3, 7}, "name", std::string(100, 'a') + "\n", "too long",
                   "at most 64 characters")
            .message() == "s.pbtxt:3:7: name = " + std::string(80, 'a') +
                              "...: too long; valid: at most 64 characters");
  CHECK(InputError(Location{"s.pbtxt", 2, 11}, "cluster.node_preset", "\"dgx\nh100\"",
                   "unknown node preset")
            .message() ==
        "s.pbtxt:2:11: cluster.node_preset = \"dgx\\nh100\": unknown node preset");
  // A file name is escaped but never cut; a line without a column is "file:line".
  const std::string long_name = std::string(90, 'd') + "/x\n.csv";
  CHECK(Location{long_name}.ToString() == std::string(90, 'd') + "/x\\n.csv");
  CHECK(Location{"f.jsonl", 3, 0}.ToString() == "f.jsonl:3");
  CHECK(Location{"f.jsonl", 3, 4}.ToString() == "f.jsonl:3:4");
}

}  // namespace moesim
