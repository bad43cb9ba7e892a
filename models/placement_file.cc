#include "models/placement_file.h"

#include <charconv>
#include <cmath>
#include <map>
#include <optional>

#include "models/csv.h"
#include "proto/input_file.h"

namespace moesim::models {
namespace {

// The field `index` of `row` as an integer below `limit`; `what` names it in errors.
StatusOr<uint32_t> Index(const CsvRow& row, size_t index, const std::string& name, const char* what,
                         uint32_t limit, const std::string& limit_meaning) {
  const std::string_view text = row.fields[index];
  uint32_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const Location at{name, row.line, row.columns[index]};
  if (ec != std::errc() || end != text.data() + text.size()) {
    return InputError(at, what, std::string(text), "not a non-negative integer",
                      "0 to " + std::to_string(limit - 1));
  }
  if (value >= limit) {
    return InputError(at, what, std::string(text), limit_meaning,
                      "0 to " + std::to_string(limit - 1));
  }
  return value;
}

// The layer field: `*` (nullopt) or an index. Layers >= shape.layers are returned as they are.
StatusOr<std::optional<uint32_t>> Layer(const CsvRow& row, const std::string& name, bool star_ok) {
  if (star_ok && row.fields[0] == "*") return std::optional<uint32_t>{};
  MOESIM_ASSIGN_OR_RETURN(uint32_t layer, Index(row, 0, name, "layer", UINT32_MAX, ""));
  return std::optional<uint32_t>{layer};
}

}  // namespace

StatusOr<std::vector<LayerPlacement>> ParsePlacementCsv(std::string_view text,
                                                        const std::string& name,
                                                        const PlacementShape& shape) {
  MOESIM_ASSIGN_OR_RETURN(std::vector<CsvRow> rows,
                          SplitCsv(text, name, "layer,expert,ep_rank", "not the header"));
  // Key: layer, or shape.layers for `*`. Value: slots per EP rank, and the first row's line.
  std::map<uint32_t, std::vector<std::vector<uint32_t>>> slots;
  std::map<uint32_t, int> first_line;
  for (const CsvRow& row : rows) {
    MOESIM_ASSIGN_OR_RETURN(std::optional<uint32_t> layer, Layer(row, name, true));
    if (layer && *layer >= shape.layers) continue;  // a layer not simulated
    MOESIM_ASSIGN_OR_RETURN(
        uint32_t expert, Index(row, 1, name, "expert", shape.num_experts,
                               "the model has " + std::to_string(shape.num_experts) + " experts"));
    MOESIM_ASSIGN_OR_RETURN(uint32_t ep_rank,
                            Index(row, 2, name, "ep_rank", shape.ep,
                                  "the plan has " + std::to_string(shape.ep) + " EP ranks"));
    const uint32_t key = layer.value_or(shape.layers);
    auto& s = slots.try_emplace(key, shape.ep).first->second;
    s[ep_rank].push_back(expert);
    first_line.emplace(key, row.line);
  }
  std::vector<LayerPlacement> out;
  for (uint32_t l = 0; l < shape.layers; ++l) {
    auto it = slots.find(l);
    if (it == slots.end()) it = slots.find(shape.layers);
    if (it == slots.end()) {
      return InputError(Location{name}, "layer", std::to_string(l), "has no rows",
                        "rows for every simulated layer (0 to " + std::to_string(shape.layers - 1) +
                            "), or rows with layer *");
    }
    std::vector<bool> placed(shape.num_experts, false);
    for (const auto& rank : it->second) {
      for (uint32_t e : rank) placed[e] = true;
    }
    for (uint32_t e = 0; e < shape.num_experts; ++e) {
      if (placed[e]) continue;
      const std::string layer_name = it->first == shape.layers ? "*" : std::to_string(l);
      return InputError(
          Location{name, first_line[it->first], 1}, "layer " + layer_name, "",
          "places no replica of expert " + std::to_string(e),
          "every expert 0 to " + std::to_string(shape.num_experts - 1) + " at least once");
    }
    out.emplace_back(shape.num_experts, it->second);
  }
  return out;
}

StatusOr<LoadMatrix> ParseLoadsCsv(std::string_view text, const std::string& name,
                                   const PlacementShape& shape) {
  MOESIM_ASSIGN_OR_RETURN(std::vector<CsvRow> rows,
                          SplitCsv(text, name, "layer,expert,load", "not the header"));
  LoadMatrix loads(shape.layers, std::vector<float>(shape.num_experts, 0.0f));
  std::vector<std::vector<int>> line_of(shape.layers, std::vector<int>(shape.num_experts, 0));
  for (const CsvRow& row : rows) {
    MOESIM_ASSIGN_OR_RETURN(std::optional<uint32_t> layer, Layer(row, name, false));
    if (*layer >= shape.layers) continue;
    MOESIM_ASSIGN_OR_RETURN(
        uint32_t expert, Index(row, 1, name, "expert", shape.num_experts,
                               "the model has " + std::to_string(shape.num_experts) + " experts"));
    const std::string field(row.fields[2]);
    char* end = nullptr;
    const double load = std::strtod(field.c_str(), &end);
    if (field.empty() || end != field.c_str() + field.size() || !std::isfinite(load) || load < 0) {
      return InputError(Location{name, row.line, row.columns[2]}, "load", field,
                        "not a non-negative number", "a count of tokens, e.g. 1024");
    }
    if (line_of[*layer][expert] != 0) {
      return InputError(Location{name, row.line, row.columns[1]}, "expert", std::to_string(expert),
                        "given twice for layer " + std::to_string(*layer) + " (first on line " +
                            std::to_string(line_of[*layer][expert]) + ")",
                        "each expert once per layer");
    }
    line_of[*layer][expert] = row.line;
    loads[*layer][expert] = static_cast<float>(load);  // float32, as EPLB's weight.float()
  }
  for (uint32_t l = 0; l < shape.layers; ++l) {
    for (uint32_t e = 0; e < shape.num_experts; ++e) {
      if (line_of[l][e] != 0) continue;
      return InputError(Location{name}, "layer " + std::to_string(l), "",
                        "no load for expert " + std::to_string(e),
                        "a row for every expert 0 to " + std::to_string(shape.num_experts - 1) +
                            " of every simulated layer 0 to " + std::to_string(shape.layers - 1));
    }
  }
  return loads;
}

StatusOr<std::string> ReadTextFile(const std::string& path) { return ReadInputFile(path); }

}  // namespace moesim::models
