#include "models/expert_counts.h"

#include <charconv>
#include <set>

#include "models/csv.h"
#include "proto/input_file.h"

namespace moesim::models {
namespace {

constexpr std::string_view kHeader = "model,domain,layer,expert,count";

template <typename T>
bool ParseUint(std::string_view text, T* out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

StatusOr<ExpertCounts> ExpertCounts::ReadCsv(const std::string& path) {
  MOESIM_ASSIGN_OR_RETURN(const std::string text, ReadInputFile(path));
  return ParseCsv(text, path);
}

StatusOr<ExpertCounts> ExpertCounts::ParseCsv(std::string_view text, const std::string& name) {
  // Per key, expert -> (count, line where given), to find duplicates and gaps.
  std::map<Key, std::map<uint32_t, uint64_t>> rows;
  std::map<Key, int> first_line;
  MOESIM_ASSIGN_OR_RETURN(std::vector<CsvRow> csv,
                          SplitCsv(text, name, kHeader, "not an expert-counts CSV"));
  for (const CsvRow& row : csv) {
    const int line_number = row.line;
    const std::vector<std::string_view>& fields = row.fields;
    const std::vector<int>& columns = row.columns;
    uint32_t layer = 0, expert = 0;
    uint64_t count = 0;
    const struct {
      int index;
      const char* what;
      bool ok;
    } numbers[] = {{2, "layer", ParseUint(fields[2], &layer)},
                   {3, "expert", ParseUint(fields[3], &expert)},
                   {4, "count", ParseUint(fields[4], &count)}};
    for (const auto& n : numbers) {
      if (!n.ok) {
        return InputError(Location{name, line_number, columns[n.index]}, n.what,
                          std::string(fields[n.index]), "not a non-negative integer");
      }
    }
    Key key{std::string(fields[0]), std::string(fields[1]), layer};
    first_line.emplace(key, line_number);
    auto [it, inserted] = rows[key].emplace(expert, count);
    if (!inserted) {
      return InputError(Location{name, line_number, columns[3]}, "expert", std::to_string(expert),
                        "given twice for " + std::get<0>(key) + "/" + std::get<1>(key) + "/" +
                            std::to_string(layer),
                        "each expert once per model, domain and layer");
    }
  }

  ExpertCounts out;
  for (auto& [key, by_expert] : rows) {
    // std::map is sorted: experts 0..n-1 means the last one is n - 1.
    const uint32_t n = static_cast<uint32_t>(by_expert.size());
    if (by_expert.rbegin()->first != n - 1) {
      uint32_t missing = 0;
      while (by_expert.count(missing)) ++missing;
      return InputError(
          Location{name, first_line[key], 1},
          std::get<0>(key) + "/" + std::get<1>(key) + "/" + std::to_string(std::get<2>(key)), "",
          "no row for expert " + std::to_string(missing),
          "experts 0 to " + std::to_string(by_expert.rbegin()->first) + ", each once");
    }
    std::vector<uint64_t>& counts = out.table_[key];
    for (const auto& [expert, count] : by_expert) counts.push_back(count);
  }
  return out;
}

const std::vector<uint64_t>* ExpertCounts::Find(std::string_view model, std::string_view domain,
                                                uint32_t layer) const {
  const auto it = table_.find(Key{std::string(model), std::string(domain), layer});
  return it == table_.end() ? nullptr : &it->second;
}

std::vector<std::string> ExpertCounts::Models() const {
  std::set<std::string> names;
  for (const auto& [key, counts] : table_) names.insert(std::get<0>(key));
  return {names.begin(), names.end()};
}

std::vector<std::string> ExpertCounts::Domains(std::string_view model) const {
  std::set<std::string> names;
  for (const auto& [key, counts] : table_) {
    if (std::get<0>(key) == model) names.insert(std::get<1>(key));
  }
  return {names.begin(), names.end()};
}

std::vector<uint32_t> ExpertCounts::Layers(std::string_view model, std::string_view domain) const {
  std::vector<uint32_t> layers;  // table_ is sorted by (model, domain, layer)
  for (const auto& [key, counts] : table_) {
    if (std::get<0>(key) == model && std::get<1>(key) == domain) layers.push_back(std::get<2>(key));
  }
  return layers;
}

}  // namespace moesim::models
