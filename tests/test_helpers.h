// Small helpers many test files share: protobuf text parsed in place, a cluster built from its
// spec or text (a failure fails the test with the builder's message), and occurrences of a
// substring.
#pragma once

#include <google/protobuf/text_format.h>

#include <catch2/catch.hpp>
#include <cstddef>
#include <string>
#include <utility>

#include "proto/cluster.pb.h"
#include "topology/cluster.h"

namespace moesim::testing {

template <typename Message>
Message Parse(const std::string& text) {
  Message m;
  REQUIRE(google::protobuf::TextFormat::ParseFromString(text, &m));
  return m;
}

inline topology::Cluster ClusterFromSpec(const pb::Cluster& spec) {
  auto c = topology::BuildCluster(spec);
  if (!c.ok()) FAIL(c.error().message());
  return std::move(c).value();
}

// A cluster written in text format (proto/cluster.proto).
inline topology::Cluster ClusterFromText(const std::string& text) {
  return ClusterFromSpec(Parse<pb::Cluster>(text));
}

// How many times `what` occurs in `text` (overlapping occurrences count).
inline size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace moesim::testing
