#include "models/trace_files.h"

#include <glob.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <tuple>

#include "models/trace.h"

namespace moesim::models {
namespace {

constexpr const char* kTraceFields[] = {"step", "layer", "rank"};

std::string PatternError(const std::string& pattern, const std::string& problem) {
  return "--pattern \"" + Printable(pattern) + "\": " + problem +
         "; valid: literal text with {step}, {layer} and {rank}, each at most once, not side by "
         "side (e.g. r{rank}_l{layer}_s{step}.csv)";
}

using CellKey = std::tuple<uint64_t, uint32_t, uint32_t>;  // (step, layer, rank)

std::string CellName(const CellKey& c) {
  return "step " + std::to_string(std::get<0>(c)) + ", layer " + std::to_string(std::get<1>(c)) +
         ", rank " + std::to_string(std::get<2>(c));
}

}  // namespace

StatusOr<TraceNamePattern> TraceNamePattern::Parse(const std::string& pattern) {
  TraceNamePattern p;
  p.text_ = pattern;
  bool after_field = false;  // the last thing read was a placeholder
  for (size_t i = 0; i < pattern.size();) {
    const char c = pattern[i];
    if (c == '{') {
      const size_t close = pattern.find('}', i);
      if (close == std::string::npos) {
        return Error(
            PatternError(pattern, "'{' at column " + std::to_string(i + 1) + " is not closed"));
      }
      const std::string field = pattern.substr(i + 1, close - i - 1);
      if (std::find(std::begin(kTraceFields), std::end(kTraceFields), field) ==
          std::end(kTraceFields)) {
        return Error(PatternError(pattern, "unknown placeholder {" + Printable(field) + "}"));
      }
      if (std::find(p.fields_.begin(), p.fields_.end(), field) != p.fields_.end()) {
        return Error(PatternError(pattern, "{" + field + "} appears twice"));
      }
      if (after_field) {
        return Error(PatternError(pattern, "{" + p.fields_.back() + "}{" + field +
                                               "} side by side: the digits could split anywhere"));
      }
      p.fields_.push_back(field);
      p.regex_ += "([0-9]+)";
      after_field = true;
      i = close + 1;
      continue;
    }
    if (c == '}') {
      return Error(
          PatternError(pattern, "'}' at column " + std::to_string(i + 1) + " closes nothing"));
    }
    if (std::string_view("^$\\.*+?()[]|/").find(c) != std::string_view::npos) p.regex_ += '\\';
    p.regex_ += c;
    after_field = false;
    ++i;
  }
  if (p.fields_.empty()) {
    return Error(PatternError(pattern, "no placeholder: every file would be the same cell"));
  }
  return p;
}

StatusOr<std::optional<TraceNamePattern::Cell>> TraceNamePattern::Match(
    const std::string& base_name) const {
  const std::regex re(regex_);  // built per call: patterns are short, names thousands at most
  std::smatch m;
  if (!std::regex_match(base_name, m, re)) return std::optional<Cell>();
  Cell cell;
  for (size_t i = 0; i < fields_.size(); ++i) {
    const std::string digits = m[static_cast<int>(i + 1)].str();
    const uint64_t limit = fields_[i] == "step" ? std::numeric_limits<uint64_t>::max()
                                                : std::numeric_limits<uint32_t>::max();
    uint64_t value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc() || end != digits.data() + digits.size() || value > limit) {
      return Error(base_name + ": {" + fields_[i] + "} = " + Printable(digits) +
                   " is out of range; valid: 0.." + std::to_string(limit));
    }
    if (fields_[i] == "step") cell.step = value;
    if (fields_[i] == "layer") cell.layer = static_cast<uint32_t>(value);
    if (fields_[i] == "rank") cell.rank = static_cast<uint32_t>(value);
  }
  return std::optional<Cell>(cell);
}

StatusOr<std::vector<std::string>> ExpandTraceGlobs(const std::vector<std::string>& args) {
  std::vector<std::string> files;
  for (const std::string& arg : args) {
    if (arg.find_first_of("*?[") == std::string::npos) {
      files.push_back(arg);
      continue;
    }
    glob_t found{};
    const int rc = ::glob(arg.c_str(), 0, nullptr, &found);
    if (rc == GLOB_NOMATCH) {
      globfree(&found);
      return Error("\"" + Printable(arg) + "\": no file matches this pattern");
    }
    if (rc != 0) {
      globfree(&found);
      return Error("\"" + Printable(arg) + "\": cannot expand the pattern (glob(3) error " +
                   std::to_string(rc) + ")");
    }
    for (size_t i = 0; i < found.gl_pathc; ++i) files.emplace_back(found.gl_pathv[i]);
    globfree(&found);
  }
  return files;
}

StatusOr<TraceFileGrid> PlaceTraceFiles(const std::vector<std::string>& files,
                                        const TraceNamePattern& pattern,
                                        const TraceImportInput& defaults) {
  std::map<CellKey, std::string> cells;
  std::set<uint64_t> steps;
  std::set<uint32_t> layers;
  uint32_t max_rank = 0;
  for (const std::string& file : files) {
    const std::string base = std::filesystem::path(file).filename().string();
    MOESIM_ASSIGN_OR_RETURN(const std::optional<TraceNamePattern::Cell> cell, pattern.Match(base));
    if (!cell) {
      return Error(file + ": the base name \"" + Printable(base) +
                   "\" does not match --pattern \"" + Printable(pattern.text()) + "\"");
    }
    const CellKey key{cell->step.value_or(defaults.step), cell->layer.value_or(defaults.layer),
                      cell->rank.value_or(defaults.rank)};
    if (std::get<1>(key) >= kMaxTraceLayers || std::get<2>(key) >= kMaxTraceRanks) {
      return Error(file + ": " + CellName(key) + " is beyond the trace format's limits; valid: " +
                   "layers 0.." + std::to_string(kMaxTraceLayers - 1) + ", ranks 0.." +
                   std::to_string(kMaxTraceRanks - 1) + " (models/trace.h)");
    }
    const auto [it, fresh] = cells.emplace(key, file);
    if (!fresh) {
      return Error(CellName(key) + " is in two files: " + it->second + " and " + file +
                   "; each (step, layer, rank) must be one file");
    }
    steps.insert(std::get<0>(key));
    layers.insert(std::get<1>(key));
    max_rank = std::max(max_rank, std::get<2>(key));
  }
  if (cells.empty()) return Error("trace import: no input file");
  // Every cell of the grid, in (step, layer, rank) order: the first one missing is named.
  TraceFileGrid grid;
  for (uint64_t step : steps) {
    for (uint32_t layer : layers) {
      for (uint64_t rank = 0; rank <= max_rank; ++rank) {
        const CellKey key{step, layer, static_cast<uint32_t>(rank)};
        const auto it = cells.find(key);
        if (it == cells.end()) {
          return Error("no file for " + CellName(key) + " (--pattern \"" +
                       Printable(pattern.text()) + "\"): the files name steps " +
                       std::to_string(*steps.begin()) + ".." + std::to_string(*steps.rbegin()) +
                       " (" + std::to_string(steps.size()) + " distinct), layers " +
                       std::to_string(*layers.begin()) + ".." + std::to_string(*layers.rbegin()) +
                       " (" + std::to_string(layers.size()) + " distinct) and ranks 0.." +
                       std::to_string(max_rank) +
                       ", and every (step, layer, rank) of them needs one file");
        }
        grid.inputs.push_back({it->second, step, layer, static_cast<uint32_t>(rank)});
      }
    }
  }
  grid.ranks = max_rank + 1;
  grid.layers = *layers.rbegin() + 1;
  grid.distinct_layers = static_cast<uint32_t>(layers.size());
  grid.steps = steps.size();
  grid.source = std::to_string(files.size()) + " files matching \"" + Printable(pattern.text()) +
                "\", " + Printable(grid.inputs.front().path) + " .. " +
                Printable(grid.inputs.back().path);
  return grid;
}

}  // namespace moesim::models
