// What follows from an MoE model's spec: element sizes, and the FLOPs and bytes of the ops of one
// MoE layer (router, one expert's SwiGLU FFN). Catalog lookup: `model: "mixtral-8x7b"` in a
// scenario names models/catalog/mixtral-8x7b.pbtxt.
//
//   OpCost c = ExpertFfnCost(spec, /*tokens=*/1024);
//   c.flops == 6 * 1024 * spec.hidden_size() * spec.expert_ffn_size();
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proto/model.pb.h"
#include "proto/status.h"
#include "proto/text_file.h"
#include "proto/units.h"

namespace moesim::models {

// Bytes of one element of `dtype` (FP32 4, BF16/FP16 2, FP8 1). DTYPE_UNSPECIFIED is rejected by
// ValidateModelSpec, so callers never see it.
uint32_t BytesPerElement(pb::DType dtype);

// Checks that every size is positive and consistent: top_k <= num_experts, dtype given, at least
// one MoE layer (first_k_dense_layers < num_layers, a moe_layer_frequency that hits a layer) and a
// dense_ffn_size when some layer is dense, attention heads that divide (num_kv_heads divides
// num_heads; MLA widths given), published counts >= 0. Errors name the field as `prefix.field` and,
// when `file` is given, its line:column.
Status ValidateModelSpec(const pb::ModelSpec& spec, const TextFile* file, std::string_view prefix);

// The catalog folder: $MOESIM_CATALOG_DIR if set, else catalog/ in moesim's data folder
// (proto/data_dir.h: $MOESIM_DATA_DIR, or ../share/moesim beside the executable); the error says
// where it looked.
StatusOr<std::string> CatalogDir();
// Model names in the catalog (file stems), sorted.
std::vector<std::string> CatalogNames(const std::string& dir);
// Loads and validates models/catalog/NAME.pbtxt. `where` locates the reference in the user's file
// for an unknown-name error, which lists the valid names.
StatusOr<pb::ModelSpec> LoadCatalogModel(const std::string& name, const Location& where,
                                         const std::string& dir);

// What a command line's model argument names: a catalog name, or a ModelSpec file (one with a
// directory part or a .pbtxt extension, fields at top level as in a catalog file), validated.
StatusOr<pb::ModelSpec> LoadModelArgument(const std::string& name_or_file);

// Work of one op: floating-point operations and bytes moved to and from memory.
struct OpCost {
  uint64_t flops = 0;
  Bytes bytes;
};

// One token's activation vector: hidden_size elements.
Bytes TokenBytes(const pb::ModelSpec& spec);

// Router: logits = X[n,h] . Wr[h,E]: 2*n*h*E FLOPs; reads X and Wr, writes the logits.
OpCost RouterCost(const pb::ModelSpec& spec, uint64_t tokens);

// One expert's SwiGLU FFN over `tokens` tokens (h = hidden, f = expert FFN size):
//   gate G = X.Wg [n,h]x[h,f], up U = X.Wu, A = silu(G) * U, down Y = A.Wd [n,f]x[f,h].
//   FLOPs = 3 GEMMs x 2*n*h*f = 6*n*h*f (the elementwise part is negligible and not counted).
//   Bytes = weights 3*h*f (read only when the expert has tokens: grouped GEMM skips empty experts)
//         + gate and up: read X twice (2*n*h), write G and U (2*n*f)
//         + elementwise: read G and U, write A (3*n*f)
//         + down: read A (n*f), write Y (n*h)
//         = 3*h*f + 3*n*h + 6*n*f elements.
// An UNGATED expert (ReLU/GELU MLP: Switch Transformer) has no gate: up U = X.Wu, A = act(U),
// Y = A.Wd: 4*n*h*f FLOPs; 2*h*f + 2*n*h + 4*n*f elements.
OpCost ExpertFfnCost(const pb::ModelSpec& spec, uint64_t tokens);

}  // namespace moesim::models
