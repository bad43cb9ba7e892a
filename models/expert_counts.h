// Measured expert loads: how many router selections each expert received, per (model, domain,
// layer), from a CSV with the header `model,domain,layer,expert,count` (the format of
// ../shared/data/routing/expert_counts_topk.csv, made by allenai/OLMoE's run_routing_analysis.py).
// Counts, not traces: CountsRouting (models/synthetic.h) turns them into per-token routing.
//
//   MOESIM_ASSIGN_OR_RETURN(ExpertCounts table, ExpertCounts::ReadCsv(path));
//   const std::vector<uint64_t>* c = table.Find("olmoe", "arxiv", 0);  // 64 counts, index = expert
//   table.Models();                   // {"mistral", "olmoe", "olmoe-dpo", "olmoe-sft"}
//
// Every (model, domain, layer) must list experts 0..n-1, each once (an expert never selected has
// count 0). Errors name the file, line and column. Immutable after reading; safe to share.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "proto/status.h"

namespace moesim::models {

class ExpertCounts {
 public:
  static StatusOr<ExpertCounts> ReadCsv(const std::string& path);
  // The same from text in memory, named `name` in errors (tests).
  static StatusOr<ExpertCounts> ParseCsv(std::string_view text, const std::string& name);

  // The counts of (model, domain, layer), index = expert; nullptr when the file has none.
  const std::vector<uint64_t>* Find(std::string_view model, std::string_view domain,
                                    uint32_t layer) const;
  // What the file holds, sorted: for listing the valid choices in an error.
  std::vector<std::string> Models() const;
  std::vector<std::string> Domains(std::string_view model) const;
  std::vector<uint32_t> Layers(std::string_view model, std::string_view domain) const;

 private:
  using Key = std::tuple<std::string, std::string, uint32_t>;
  std::map<Key, std::vector<uint64_t>> table_;
};

}  // namespace moesim::models
