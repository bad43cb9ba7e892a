#include "models/model_spec.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#ifndef MOESIM_CATALOG_DIR
#error "MOESIM_CATALOG_DIR must be defined by the build"
#endif

namespace moesim::models {

uint32_t BytesPerElement(pb::DType dtype) {
  switch (dtype) {
    case pb::FP32: return 4;
    case pb::BF16:
    case pb::FP16: return 2;
    case pb::FP8: return 1;
    default: return 0;
  }
}

Status ValidateModelSpec(const pb::ModelSpec& spec, const TextFile* file, std::string_view prefix) {
  // Fields are named `prefix.field` in messages and located by the same path; an empty prefix means
  // the spec is the whole file (a catalog file).
  const std::string p = prefix.empty() ? std::string() : std::string(prefix) + ".";
  auto where = [&](std::string_view field) {
    return file ? file->Locate(p + std::string(field)) : Location{};
  };
  struct Positive {
    const char* name;
    uint64_t value;
  };
  for (const Positive& f : {Positive{"hidden_size", spec.hidden_size()},
                            Positive{"expert_ffn_size", spec.expert_ffn_size()},
                            Positive{"num_experts", spec.num_experts()},
                            Positive{"top_k", spec.top_k()},
                            Positive{"num_layers", spec.num_layers()}}) {
    if (f.value == 0) {
      return InputError(where(f.name), p + f.name, "0", "missing or zero", "an integer >= 1");
    }
  }
  if (spec.top_k() > spec.num_experts()) {
    return InputError(where("top_k"), p + "top_k", std::to_string(spec.top_k()),
                      "more experts per token than the model has",
                      "1 to num_experts = " + std::to_string(spec.num_experts()));
  }
  if (BytesPerElement(spec.dtype()) == 0) {
    return InputError(where("dtype"), p + "dtype", pb::DType_Name(spec.dtype()), "missing",
                      "FP32, BF16, FP16, FP8");
  }
  return Status::Ok();
}

std::string CatalogDir() {
  if (const char* env = std::getenv("MOESIM_CATALOG_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return MOESIM_CATALOG_DIR;
}

std::vector<std::string> CatalogNames(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".pbtxt") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

StatusOr<pb::ModelSpec> LoadCatalogModel(const std::string& name, const Location& where,
                                         const std::string& dir) {
  const std::vector<std::string> names = CatalogNames(dir);
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    std::string valid = Join(names);
    if (valid.empty()) valid = "(no .pbtxt files in " + dir + ")";
    return InputError(where, "model", "\"" + name + "\"", "unknown model (not in " + dir + ")",
                      valid);
  }
  pb::ModelSpec spec;
  MOESIM_ASSIGN_OR_RETURN(TextFile file,
                          TextFile::Parse((std::filesystem::path(dir) / (name + ".pbtxt")).string(),
                                          &spec));
  // A catalog file is a ModelSpec at top level, so its fields have no prefix.
  MOESIM_RETURN_IF_ERROR(ValidateModelSpec(spec, &file, ""));
  return spec;
}

Bytes TokenBytes(const pb::ModelSpec& spec) {
  return Bytes{uint64_t{spec.hidden_size()} * BytesPerElement(spec.dtype())};
}

OpCost RouterCost(const pb::ModelSpec& spec, uint64_t tokens) {
  const uint64_t h = spec.hidden_size();
  const uint64_t e = spec.num_experts();
  const uint64_t elements = tokens * h + h * e + tokens * e;
  return OpCost{2 * tokens * h * e, Bytes{elements * BytesPerElement(spec.dtype())}};
}

OpCost ExpertFfnCost(const pb::ModelSpec& spec, uint64_t tokens) {
  if (tokens == 0) return {};
  const uint64_t h = spec.hidden_size();
  const uint64_t f = spec.expert_ffn_size();
  const uint64_t elements = 3 * h * f + 3 * tokens * h + 6 * tokens * f;
  return OpCost{6 * tokens * h * f, Bytes{elements * BytesPerElement(spec.dtype())}};
}

}  // namespace moesim::models
