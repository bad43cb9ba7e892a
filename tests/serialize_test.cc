// Deterministic protobuf output (proto/serialize.h): map entries sorted by key, whatever order they
// were inserted in and whatever order protobuf's hash map keeps them in this process.
#include "proto/serialize.h"

#include <catch2/catch.hpp>
#include <string>

#include "proto/result.pb.h"

namespace moesim {
namespace {

// A phase whose link_class_bytes holds "class00" .. "class19", inserted upwards or downwards.
pb::Phase Phase(bool upwards) {
  pb::Phase phase;
  phase.set_name("dispatch");
  for (int i = 0; i < 20; ++i) {
    const int k = upwards ? i : 19 - i;
    const std::string key = std::string("class") + (k < 10 ? "0" : "") + std::to_string(k);
    (*phase.mutable_link_class_bytes())[key] = 1000.0 * k;
  }
  return phase;
}

}  // namespace

TEST_CASE("Protobuf output lists map entries sorted by key, the same bytes every time") {
  const pb::Phase up = Phase(true), down = Phase(false);
  // Bytes: equal whatever the insertion order, and they parse back to the same message.
  CHECK(DeterministicBytes(up) == DeterministicBytes(down));
  pb::Phase parsed;
  REQUIRE(parsed.ParseFromString(DeterministicBytes(up)));
  CHECK(parsed.link_class_bytes().size() == 20);
  CHECK(parsed.link_class_bytes().at("class07") == 7000.0);

  // JSON: equal too, with the keys in order ("class00" first, "class19" last). Protobuf's own
  // printer follows its hash map: 20 keys in sorted order by chance would be 1 in 20!.
  auto json = DeterministicJson(down);
  REQUIRE(json.ok());
  CHECK(*json == *DeterministicJson(up));
  size_t at = 0;
  for (int k = 0; k < 20; ++k) {
    const std::string key = std::string("\"class") + (k < 10 ? "0" : "") + std::to_string(k) + "\"";
    const size_t found = json->find(key);
    REQUIRE(found != std::string::npos);
    CHECK(found > at);
    at = found;
  }
  // Zeros are printed: a count of 0 is data.
  CHECK(json->find("\"criticalRank\": 0") != std::string::npos);
}

}  // namespace moesim
