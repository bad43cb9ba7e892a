// Paths of the repository's files, from CMake (tests never depend on the working directory).
#pragma once

#include <string>

namespace moesim::testing {

inline std::string SourcePath(const std::string& relative) {
  return std::string(MOESIM_SOURCE_DIR) + "/" + relative;
}

// A file of ../shared/data (real inputs nobody here wrote), e.g. SharedData("nccl_topology/x.xml").
inline std::string SharedData(const std::string& relative) {
  return std::string(MOESIM_SHARED_DATA_DIR) + "/" + relative;
}

inline std::string BadFixture(const std::string& name) {
  return SourcePath("tests/fixtures/bad/" + name);
}

}  // namespace moesim::testing
