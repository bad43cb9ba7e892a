#include "models/model_spec.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <sstream>
#include <utility>

#include "models/params.h"
#include "proto/data_dir.h"
#include "proto/did_you_mean.h"

namespace moesim::models {

uint32_t BytesPerElement(pb::DType dtype) {
  switch (dtype) {
    case pb::FP32:
      return 4;
    case pb::BF16:
    case pb::FP16:
      return 2;
    case pb::FP8:
      return 1;
    default:
      return 0;
  }
}

namespace {

std::string Str(uint64_t v) { return std::to_string(v); }

// A double as an ostream prints it: "2e+09", "46.7".
std::string Number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

// Checks of the attention block; `p` is the field prefix ("model_spec." or "").
Status ValidateAttention(const pb::ModelSpec& spec, const std::string& p,
                         const std::function<Location(std::string_view)>& where) {
  using Attention = pb::AttentionSpec;
  const Attention& a = spec.attention();
  const std::string q = p + "attention.";
  auto error = [&](std::string_view field, const std::string& value, std::string_view problem,
                   std::string_view valid) {
    return Status(InputError(where("attention." + std::string(field)), q + std::string(field),
                             value, problem, valid));
  };
  const bool mla_fields = a.q_lora_rank() != 0 || a.kv_lora_rank() != 0 ||
                          a.qk_nope_head_dim() != 0 || a.qk_rope_head_dim() != 0 ||
                          a.v_head_dim() != 0;
  if (a.kind() == Attention::KIND_UNSPECIFIED) {
    if (a.num_heads() != 0 || a.num_kv_heads() != 0 || a.head_dim() != 0 || mla_fields) {
      return error("kind", "KIND_UNSPECIFIED", "missing: heads are given but not the kind",
                   "MHA, GQA, MLA");
    }
  } else if (a.num_heads() == 0) {
    return error("num_heads", "0", "missing or zero", "an integer >= 1");
  }
  const uint64_t heads = a.num_heads();
  if (a.kind() == Attention::MHA || a.kind() == Attention::GQA) {
    if (mla_fields) {
      for (const auto& [name, value] :
           {std::pair<const char*, uint32_t>{"q_lora_rank", a.q_lora_rank()},
            {"kv_lora_rank", a.kv_lora_rank()},
            {"qk_nope_head_dim", a.qk_nope_head_dim()},
            {"qk_rope_head_dim", a.qk_rope_head_dim()},
            {"v_head_dim", a.v_head_dim()}}) {
        if (value != 0) {
          return error(name, Str(value), "only for kind MLA", "leave it out, or set kind: MLA");
        }
      }
    }
    const uint64_t kv = a.num_kv_heads();
    if (a.kind() == Attention::MHA && kv != 0 && kv != heads) {
      return error("num_kv_heads", Str(kv),
                   "MHA has as many key/value heads as query heads (use kind: GQA to share them)",
                   "num_heads = " + Str(heads));
    }
    if (kv != 0 && heads % kv != 0) {
      std::vector<std::string> divisors;
      for (uint64_t d = 1; d <= heads; ++d) {
        if (heads % d == 0) divisors.push_back(Str(d));
      }
      return error("num_kv_heads", Str(kv), "does not divide num_heads = " + Str(heads),
                   Join(divisors));
    }
    if (a.head_dim() == 0 && spec.hidden_size() % heads != 0) {
      return error("head_dim", "0",
                   "missing: hidden_size = " + Str(spec.hidden_size()) +
                       " is not a multiple of num_heads = " + Str(heads),
                   "an integer >= 1");
    }
  }
  if (a.kind() == Attention::MLA) {
    if (a.num_kv_heads() != 0) {
      return error("num_kv_heads", Str(a.num_kv_heads()), "only for kinds MHA and GQA",
                   "leave it out (MLA keys and values come from kv_lora_rank)");
    }
    if (a.head_dim() != 0) {
      return error("head_dim", Str(a.head_dim()), "only for kinds MHA and GQA",
                   "leave it out (MLA uses qk_nope_head_dim, qk_rope_head_dim, v_head_dim)");
    }
    for (const auto& [name, value] :
         {std::pair<const char*, uint32_t>{"kv_lora_rank", a.kv_lora_rank()},
          {"qk_nope_head_dim", a.qk_nope_head_dim()},
          {"qk_rope_head_dim", a.qk_rope_head_dim()},
          {"v_head_dim", a.v_head_dim()}}) {
      if (value == 0) {
        return error(name, "0", "missing or zero (required for MLA)", "an integer >= 1");
      }
    }
  }
  if (a.full_attention_every_n_layers() != 0 && a.sliding_window() == 0) {
    return error("full_attention_every_n_layers", Str(a.full_attention_every_n_layers()),
                 "set without a sliding window", "leave it out, or set sliding_window");
  }
  if (a.cross_attention_layers() > spec.num_layers()) {
    return error("cross_attention_layers", Str(a.cross_attention_layers()),
                 "more decoder layers than the model has",
                 "0 to num_layers = " + Str(spec.num_layers()));
  }
  return Status::Ok();
}

}  // namespace

Status ValidateModelSpec(const pb::ModelSpec& spec, const TextFile* file, std::string_view prefix) {
  // Fields are named `prefix.field` in messages and located by the same path; an empty prefix means
  // the spec is the whole file (a catalog file).
  const std::string p = prefix.empty() ? std::string() : std::string(prefix) + ".";
  const std::function<Location(std::string_view)> where = [&](std::string_view field) {
    return file ? file->Locate(p + std::string(field)) : Location{};
  };
  struct Positive {
    const char* name;
    uint64_t value;
  };
  for (const Positive& f :
       {Positive{"hidden_size", spec.hidden_size()},
        Positive{"expert_ffn_size", spec.expert_ffn_size()},
        Positive{"num_experts", spec.num_experts()}, Positive{"top_k", spec.top_k()},
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

  // Layer layout: at least one MoE layer, and a dense FFN size for the dense ones.
  const uint32_t layers = spec.num_layers();
  if (spec.first_k_dense_layers() >= layers) {
    return InputError(where("first_k_dense_layers"), p + "first_k_dense_layers",
                      Str(spec.first_k_dense_layers()), "leaves no MoE layer",
                      "0 to num_layers - 1 = " + Str(layers - 1));
  }
  const uint32_t moe_layers = MoeLayerCount(spec);
  if (moe_layers == 0) {
    return InputError(where("moe_layer_frequency"), p + "moe_layer_frequency",
                      Str(spec.moe_layer_frequency()), "no layer would be an MoE layer",
                      "a frequency with a multiple between first_k_dense_layers + 1 = " +
                          Str(spec.first_k_dense_layers() + 1) +
                          " and num_layers = " + Str(layers));
  }
  if (moe_layers < layers && spec.dense_ffn_size() == 0) {
    return InputError(
        where("dense_ffn_size"), p + "dense_ffn_size", "0",
        "missing: " + Str(layers - moe_layers) + " of the " + Str(layers) + " layers are dense",
        "an integer >= 1");
  }
  if (spec.shared_expert_ffn_size() != 0 && spec.num_shared_experts() == 0) {
    return InputError(where("shared_expert_ffn_size"), p + "shared_expert_ffn_size",
                      Str(spec.shared_expert_ffn_size()), "set but num_shared_experts is 0",
                      "leave it out, or set num_shared_experts");
  }

  MOESIM_RETURN_IF_ERROR(ValidateAttention(spec, p, where));

  if (spec.tie_word_embeddings() && spec.vocab_size() == 0) {
    return InputError(where("tie_word_embeddings"), p + "tie_word_embeddings", "true",
                      "needs the embedding table's size", "set vocab_size");
  }
  for (const auto& [name, value] :
       {std::pair<const char*, double>{"published_total_params", spec.published_total_params()},
        {"published_active_params", spec.published_active_params()}}) {
    if (!(value >= 0)) {  // also rejects NaN
      return InputError(where(name), p + name, Number(value), "negative",
                        "a count >= 0, e.g. 46.7e9");
    }
  }
  if (spec.published_total_params() > 0 &&
      spec.published_active_params() > spec.published_total_params()) {
    return InputError(where("published_active_params"), p + "published_active_params",
                      Number(spec.published_active_params()), "more than the published total",
                      "0 to published_total_params = " + Number(spec.published_total_params()));
  }
  return Status::Ok();
}

StatusOr<std::string> CatalogDir() {
  if (const char* env = std::getenv("MOESIM_CATALOG_DIR"); env != nullptr && *env != '\0') {
    return std::string(env);
  }
  MOESIM_ASSIGN_OR_RETURN(const std::string data, DataDir());
  return (std::filesystem::path(data) / "catalog").string();
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
    return InputError(where, "model", "\"" + name + "\"",
                      "unknown model (not in " + dir + ")" + DidYouMean(name, names), valid);
  }
  pb::ModelSpec spec;
  MOESIM_ASSIGN_OR_RETURN(
      TextFile file,
      TextFile::Parse((std::filesystem::path(dir) / (name + ".pbtxt")).string(), &spec));
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
  const uint64_t n = tokens;
  if (spec.ffn_kind() == pb::ModelSpec::UNGATED) {
    const uint64_t elements = 2 * h * f + 2 * n * h + 4 * n * f;
    return OpCost{4 * n * h * f, Bytes{elements * BytesPerElement(spec.dtype())}};
  }
  const uint64_t elements = 3 * h * f + 3 * n * h + 6 * n * f;
  return OpCost{6 * n * h * f, Bytes{elements * BytesPerElement(spec.dtype())}};
}

StatusOr<pb::ModelSpec> LoadModelArgument(const std::string& name_or_file) {
  const std::filesystem::path path(name_or_file);
  if (path.has_parent_path() || path.extension() == ".pbtxt") {
    pb::ModelSpec spec;
    MOESIM_ASSIGN_OR_RETURN(TextFile file, TextFile::Parse(name_or_file, &spec));
    MOESIM_RETURN_IF_ERROR(ValidateModelSpec(spec, &file, ""));
    return spec;
  }
  MOESIM_ASSIGN_OR_RETURN(const std::string dir, CatalogDir());
  return LoadCatalogModel(name_or_file, Location{}, dir);
}

}  // namespace moesim::models
