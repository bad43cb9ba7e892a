// Where the data moesim ships lives: the model catalog (catalog/) and the scenarios (scenarios/,
// with clusters/, calibration/ and traces/), laid out as `cmake --install build --prefix PREFIX`
// writes them under PREFIX/share/moesim. The build tree mirrors that layout: build/share/moesim
// holds links to the source tree's models/catalog and scenarios (scripts/install.cmake), so one
// rule serves both and no binary holds a path into the source tree.
//
//   MOESIM_ASSIGN_OR_RETURN(std::string data, DataDir());
//   const std::string catalog = data + "/catalog";
//
// The rule, first match wins; a variable that is set but wrong is an error, never skipped:
//   1. $MOESIM_DATA_DIR (set and not empty), which must hold catalog/;
//   2. <folder of the running executable>/../share/moesim when it holds catalog/:
//      PREFIX/bin/moesim finds PREFIX/share/moesim, build/sim/moesim finds build/share/moesim.
// Finer overrides stay with their users: $MOESIM_CATALOG_DIR (models::CatalogDir) and
// $MOESIM_DEFAULT_SCENARIO (moesim with no scenario).
// Thread-safe; reads the environment and the file system on every call (nothing cached).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "proto/status.h"

namespace moesim {

// The data folder of the running program, by the rule above (the executable from /proc/self/exe).
// The error names MOESIM_DATA_DIR and every folder it looked in.
StatusOr<std::string> DataDir();

// DataDir's rule with its inputs given, for tests: `env` is MOESIM_DATA_DIR's value ("" when
// unset), `executable` the running program's absolute path.
StatusOr<std::string> FindDataDir(std::string_view env, const std::filesystem::path& executable);

}  // namespace moesim
