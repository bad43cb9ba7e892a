// Where moesim finds its data (proto/data_dir.h): $MOESIM_DATA_DIR, else ../share/moesim beside
// the executable; and the two finer overrides built on it (models::CatalogDir,
// DefaultScenarioPath).
#include "proto/data_dir.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>

#include "models/model_spec.h"
#include "sim/cli/cli.h"
#include "test_paths.h"

namespace moesim {
namespace {

namespace fs = std::filesystem;

const std::string kValid =
    "valid: a folder holding catalog/ and scenarios/, as PREFIX/share/moesim after `cmake "
    "--install build --prefix PREFIX`";

// Sets (or, with nullopt, unsets) one environment variable for a scope, then puts it back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// A scratch tree: T/data/catalog (a data folder), T/empty (a folder without catalog/),
// T/prefix/{bin,share/moesim/catalog} (an installed prefix), T/lonely/bin (a binary without data).
struct Tree {
  fs::path root = testing::TempPath("data_dir");
  Tree() {
    fs::remove_all(root);
    for (const char* dir : {"data/catalog", "empty", "prefix/bin", "prefix/share/moesim/catalog",
                            "build/sim", "build/share/moesim/catalog", "lonely/bin"}) {
      fs::create_directories(root / dir);
    }
  }
  ~Tree() { fs::remove_all(root); }
  std::string operator/(const char* relative) const { return (root / relative).string(); }
};

}  // namespace

TEST_CASE("Data dir: MOESIM_DATA_DIR wins over the folder beside the executable") {
  const Tree t;
  // The prefix beside the executable holds data too; the variable still decides.
  auto dir = FindDataDir(t / "data", t / "prefix/bin/moesim");
  REQUIRE(dir.ok());
  CHECK(*dir == t / "data");
}

TEST_CASE("Data dir: a MOESIM_DATA_DIR that is wrong is an error, never skipped") {
  const Tree t;
  // Even with a usable T/prefix/share/moesim beside the executable.
  auto missing = FindDataDir(t / "missing", t / "prefix/bin/moesim");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message() ==
        "MOESIM_DATA_DIR = " + t / "missing" + ": no such folder; " + kValid);
  auto empty = FindDataDir(t / "empty", t / "prefix/bin/moesim");
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error().message() ==
        "MOESIM_DATA_DIR = " + t / "empty" + ": has no catalog/ folder; " + kValid);
}

TEST_CASE("Data dir: unset, ../share/moesim beside the executable") {
  const Tree t;
  // Installed: T/prefix/bin/moesim -> folder T/prefix/bin -> its parent T/prefix -> share/moesim.
  auto installed = FindDataDir("", t / "prefix/bin/moesim");
  REQUIRE(installed.ok());
  CHECK(*installed == t / "prefix/share/moesim");
  // The build tree: T/build/sim/moesim -> T/build -> T/build/share/moesim.
  auto built = FindDataDir("", t / "build/sim/moesim");
  REQUIRE(built.ok());
  CHECK(*built == t / "build/share/moesim");
}

TEST_CASE("Data dir: nothing found, the error names the variable and where it looked") {
  const Tree t;
  // T/lonely/bin/moesim -> T/lonely/share/moesim, which does not exist.
  auto dir = FindDataDir("", t / "lonely/bin/moesim");
  REQUIRE_FALSE(dir.ok());
  CHECK(dir.error().message() == "moesim's data not found: MOESIM_DATA_DIR is unset and " +
                                     t / "lonely/share/moesim" + " (beside the executable " +
                                     t / "lonely/bin/moesim" +
                                     ") has no catalog/ folder; valid: MOESIM_DATA_DIR set to " +
                                     kValid.substr(std::string("valid: ").size()));
}

TEST_CASE("Data dir: this test binary finds build/share/moesim, links into the source tree") {
  const ScopedEnv data("MOESIM_DATA_DIR", std::nullopt);
  const ScopedEnv catalog("MOESIM_CATALOG_DIR", std::nullopt);
  const ScopedEnv scenario("MOESIM_DEFAULT_SCENARIO", std::nullopt);
  // build/tests/moesim_tests -> build/share/moesim (scripts/install.cmake writes it).
  auto dir = DataDir();
  REQUIRE(dir.ok());
  CHECK(fs::path(*dir).filename() == "moesim");
  CHECK(fs::equivalent(*dir + "/catalog", testing::SourcePath("models/catalog")));
  auto catalog_dir = models::CatalogDir();
  REQUIRE(catalog_dir.ok());
  CHECK(*catalog_dir == *dir + "/catalog");
  CHECK(models::CatalogNames(*catalog_dir).size() == 19);  // models/catalog/*.pbtxt
  auto default_scenario = sim::DefaultScenarioPath();
  REQUIRE(default_scenario.ok());
  CHECK(*default_scenario == *dir + "/scenarios/default.pbtxt");
  CHECK(fs::equivalent(*default_scenario, testing::SourcePath("scenarios/default.pbtxt")));
}

TEST_CASE("Data dir: MOESIM_CATALOG_DIR and MOESIM_DEFAULT_SCENARIO still override") {
  const Tree t;
  const ScopedEnv data("MOESIM_DATA_DIR", t / "data");
  const ScopedEnv catalog("MOESIM_CATALOG_DIR", testing::SourcePath("tests/fixtures/models"));
  const ScopedEnv scenario("MOESIM_DEFAULT_SCENARIO", t / "s.pbtxt");
  CHECK(*models::CatalogDir() == testing::SourcePath("tests/fixtures/models"));
  CHECK(*sim::DefaultScenarioPath() == t / "s.pbtxt");
  // Without them, the data folder's: T/data/catalog, T/data/scenarios/default.pbtxt.
  const ScopedEnv no_catalog("MOESIM_CATALOG_DIR", std::nullopt);
  const ScopedEnv no_scenario("MOESIM_DEFAULT_SCENARIO", std::nullopt);
  CHECK(*models::CatalogDir() == t / "data/catalog");
  CHECK(*sim::DefaultScenarioPath() == t / "data/scenarios/default.pbtxt");
}

TEST_CASE("Data dir: a wrong MOESIM_DATA_DIR reaches the user through moesim") {
  const Tree t;
  const ScopedEnv data("MOESIM_DATA_DIR", t / "missing");
  const ScopedEnv catalog("MOESIM_CATALOG_DIR", std::nullopt);
  const ScopedEnv scenario("MOESIM_DEFAULT_SCENARIO", std::nullopt);
  std::ostringstream out, err;
  CHECK(sim::RunMoesim({}, out, err) == 1);
  CHECK(err.str() ==
        "moesim: error: MOESIM_DATA_DIR = " + t / "missing" + ": no such folder; " + kValid + "\n");
  auto model = models::LoadModelArgument("mixtral-8x7b");
  REQUIRE_FALSE(model.ok());
  CHECK(model.error().message() ==
        "MOESIM_DATA_DIR = " + t / "missing" + ": no such folder; " + kValid);
}

}  // namespace moesim
