// Paths of the repository's files, from CMake (tests never depend on the working directory).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace moesim::testing {

inline std::string SourcePath(const std::string& relative) {
  return std::string(MOESIM_SOURCE_DIR) + "/" + relative;
}

// A file of ../shared/data (real inputs nobody here wrote), e.g. SharedData("nccl_topology/x.xml").
inline std::string SharedData(const std::string& relative) {
  return std::string(MOESIM_SHARED_DATA_DIR) + "/" + relative;
}

// A scratch file in the system's temp folder, named after this process so that test processes
// running side by side do not share it. The test removes it when it is done.
inline std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("moesim_test_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

inline std::string BadFixture(const std::string& name) {
  return SourcePath("tests/fixtures/bad/" + name);
}

}  // namespace moesim::testing
