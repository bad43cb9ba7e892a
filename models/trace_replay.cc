#include "models/trace_replay.h"

#include <filesystem>
#include <map>

#include "models/trace.h"

namespace moesim::models {

StatusOr<std::vector<ReplayStep>> LoadTraceRouting(const pb::TraceRouting& spec,
                                                   const RoutingShape& shape,
                                                   const TextFile* file) {
  auto where = [&](const std::string& field) {
    return file ? file->Locate("routing.trace." + field) : Location{};
  };
  if (spec.file().empty()) {
    return InputError(where("file"), "routing.trace.file", "\"\"", "missing",
                      "a trace file (moesim trace gen/import)");
  }
  if (spec.has_max_steps() && spec.max_steps() == 0) {
    return InputError(where("max_steps"), "routing.trace.max_steps", "0", "no step to simulate",
                      ">= 1, or leave it out for every step");
  }
  std::filesystem::path path = spec.file();
  if (path.is_relative() && file != nullptr)
    path = std::filesystem::path(file->path()).parent_path() / path;
  MOESIM_ASSIGN_OR_RETURN(TraceReader reader, TraceReader::Open(path.string()));
  const pb::TraceHeader& header = reader.header();
  if (header.num_experts() != shape.num_experts || header.top_k() != shape.top_k) {
    return InputError(where("file"), "routing.trace.file", "\"" + path.string() + "\"",
                      "the trace has " + std::to_string(header.num_experts()) + " experts, top-" +
                          std::to_string(header.top_k()) + "; the model " +
                          std::to_string(shape.num_experts) + ", top-" +
                          std::to_string(shape.top_k),
                      "a trace of this model's routing");
  }

  // step -> layer -> rank -> expert ids (records of one (step, layer, rank) are concatenated).
  std::map<uint64_t, std::vector<std::vector<std::vector<uint32_t>>>> steps;
  pb::TraceRecord record;
  for (;;) {
    const uint64_t index = reader.records_read();
    MOESIM_ASSIGN_OR_RETURN(bool got, reader.Next(&record));
    if (!got) break;
    const std::string at = path.string() + ": record " + std::to_string(index);
    if (record.rank() >= shape.ranks) {
      return InputError(Location{path.string()}, at + " rank", std::to_string(record.rank()),
                        "the cluster has no such GPU", "0 to " + std::to_string(shape.ranks - 1));
    }
    if (record.layer() >= shape.layers) continue;  // a layer not simulated
    auto it = steps.find(record.step());
    if (it == steps.end()) {
      if (spec.has_max_steps() && steps.size() >= spec.max_steps()) continue;
      it = steps
               .emplace(record.step(),
                        std::vector<std::vector<std::vector<uint32_t>>>(
                            shape.layers, std::vector<std::vector<uint32_t>>(shape.ranks)))
               .first;
    }
    auto& ids = it->second[record.layer()][record.rank()];
    ids.insert(ids.end(), record.experts().begin(), record.experts().end());
  }
  if (steps.empty()) {
    return InputError(where("file"), "routing.trace.file", "\"" + path.string() + "\"",
                      "the trace holds no record of the simulated layers", "a trace with records");
  }

  std::vector<ReplayStep> out;
  for (auto& [step, layers] : steps) {
    ReplayStep replay;
    replay.step = step;
    for (uint32_t l = 0; l < shape.layers; ++l) {
      LayerRouting routing;
      routing.layer = l;
      routing.top_k = shape.top_k;
      routing.note = "replayed from " + path.string() + ", step " + std::to_string(step);
      for (uint32_t r = 0; r < shape.ranks; ++r) {
        std::vector<uint32_t>& ids = layers[l][r];
        if (ids.empty()) {
          return InputError(where("file"), "routing.trace.file", "\"" + path.string() + "\"",
                            "step " + std::to_string(step) + " has no tokens for rank " +
                                std::to_string(r) + " in layer " + std::to_string(l),
                            "records for every rank of the cluster (" +
                                std::to_string(shape.ranks) + ") and every simulated layer (" +
                                std::to_string(shape.layers) + ")");
        }
        if (shape.tokens_per_rank != 0 && ids.size() != shape.tokens_per_rank * shape.top_k) {
          return InputError(
              where("file"), "routing.trace.file", "\"" + path.string() + "\"",
              "step " + std::to_string(step) + " rank " + std::to_string(r) + " layer " +
                  std::to_string(l) + " has " + std::to_string(ids.size() / shape.top_k) +
                  " tokens, workload.tokens_per_gpu says " + std::to_string(shape.tokens_per_rank),
              "leave workload.tokens_per_gpu out: the trace gives the tokens");
        }
        routing.experts.push_back(std::move(ids));
      }
      replay.layers.push_back(std::move(routing));
    }
    out.push_back(std::move(replay));
  }
  return out;
}

}  // namespace moesim::models
