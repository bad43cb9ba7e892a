// Protobuf's own log lines (proto/protobuf_log.h): kept by a capture for the reader's error,
// never printed.
#include "proto/protobuf_log.h"

#include <catch2/catch.hpp>
#include <string>

#include "proto/result.pb.h"

namespace moesim {
namespace {

// A Result whose field 1 (scenario) is the 3 bytes 'A' 0xff 'B': not UTF-8, which protobuf
// refuses for a proto3 string and logs about.
const std::string kBadUtf8Result("\x0a\x03\x41\xff\x42", 5);

}  // namespace

TEST_CASE("A protobuf log line is captured for the error, not printed") {
  ProtobufLogCapture capture;
  CHECK(capture.Reason().empty());
  pb::Result result;
  CHECK_FALSE(result.ParseFromString(kBadUtf8Result));
  CHECK(capture.Reason() ==
        ": String field 'moesim.pb.Result.scenario' contains invalid UTF-8 data when parsing a "
        "protocol buffer. Use the 'bytes' type if you intend to send raw bytes.");
}

TEST_CASE("Nested captures: the innermost gets the line, the outer keeps its own") {
  ProtobufLogCapture outer;
  {
    ProtobufLogCapture inner;
    pb::Result result;
    CHECK_FALSE(result.ParseFromString(kBadUtf8Result));
    CHECK_FALSE(inner.Reason().empty());
  }
  CHECK(outer.Reason().empty());
  pb::Result again;
  CHECK_FALSE(again.ParseFromString(kBadUtf8Result));
  CHECK_FALSE(outer.Reason().empty());  // the outer is the active one again
}

}  // namespace moesim
