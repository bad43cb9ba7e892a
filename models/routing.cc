#include "models/routing.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "models/score_routing.h"
#include "models/synthetic_spec.h"

namespace moesim::models {

namespace {

Location Where(const TextFile* file, const std::string& field) {
  return file ? file->Locate(field) : Location{};
}

StatusOr<std::vector<LayerRouting>> ResolveExplicit(const pb::ExplicitRouting& spec,
                                                    const RoutingShape& shape,
                                                    const TextFile* file) {
  std::vector<LayerRouting> layers(shape.layers);
  std::vector<std::vector<bool>> seen(shape.layers, std::vector<bool>(shape.ranks, false));
  for (uint32_t l = 0; l < shape.layers; ++l) {
    layers[l].layer = l;
    layers[l].top_k = shape.top_k;
    layers[l].experts.resize(shape.ranks);
  }
  const uint64_t want = shape.tokens_per_rank * shape.top_k;
  for (int i = 0; i < spec.rank_size(); ++i) {
    const pb::RankRouting& entry = spec.rank(i);
    const std::string field = "routing.explicit.rank[" + std::to_string(i) + "]";
    if (entry.rank() >= shape.ranks) {
      return InputError(Where(file, field + ".rank"), field + ".rank", std::to_string(entry.rank()),
                        "no such rank", "0 to " + std::to_string(shape.ranks - 1));
    }
    const uint32_t layer = entry.has_layer() ? entry.layer() : 0;
    if (layer >= shape.layers) {
      return InputError(
          Where(file, field + ".layer"), field + ".layer", std::to_string(layer),
          "no such layer (workload.moe_layers = " + std::to_string(shape.layers) + ")",
          "0 to " + std::to_string(shape.layers - 1));
    }
    if (seen[layer][entry.rank()]) {
      return InputError(Where(file, field + ".rank"), field + ".rank", std::to_string(entry.rank()),
                        "rank " + std::to_string(entry.rank()) + " of layer " +
                            std::to_string(layer) + " is given twice",
                        "one entry per rank and layer");
    }
    seen[layer][entry.rank()] = true;
    if (static_cast<uint64_t>(entry.experts_size()) != want) {
      return InputError(
          Where(file, field + ".experts"), field + ".experts",
          std::to_string(entry.experts_size()) + " expert ids",
          "does not match workload.tokens_per_gpu = " + std::to_string(shape.tokens_per_rank) +
              " tokens x top_k = " + std::to_string(shape.top_k),
          std::to_string(want) + " expert ids");
    }
    std::vector<uint32_t> ids(entry.experts().begin(), entry.experts().end());
    for (size_t j = 0; j < ids.size(); ++j) {
      const std::string item = field + ".experts[" + std::to_string(j) + "]";
      if (ids[j] >= shape.num_experts) {
        return InputError(Where(file, item), item, std::to_string(ids[j]), "expert id out of range",
                          "0 to " + std::to_string(shape.num_experts - 1) + " (the model has " +
                              std::to_string(shape.num_experts) + " experts)");
      }
      const size_t token_start = j - j % shape.top_k;
      if (std::find(ids.begin() + token_start, ids.begin() + j, ids[j]) != ids.begin() + j) {
        return InputError(Where(file, item), item, std::to_string(ids[j]),
                          "token " + std::to_string(j / shape.top_k) + " names this expert twice",
                          "top_k distinct experts per token");
      }
    }
    layers[layer].experts[entry.rank()] = std::move(ids);
  }
  for (uint32_t l = 0; l < shape.layers; ++l) {
    for (uint32_t r = 0; r < shape.ranks; ++r) {
      if (!seen[l][r]) {
        return InputError(
            Where(file, "routing.explicit"), "routing.explicit", "",
            "rank " + std::to_string(r) + " of layer " + std::to_string(l) + " has no routing",
            "one `rank { rank: R layer: L experts: [...] }` for each of the " +
                std::to_string(shape.ranks) + " ranks and " + std::to_string(shape.layers) +
                " layers");
      }
    }
  }
  return layers;
}

}  // namespace

StatusOr<std::vector<LayerRouting>> ResolveRouting(const pb::Routing& spec,
                                                   const RoutingShape& shape, const TextFile* file,
                                                   std::vector<pb::RouterFigures>* router_figures) {
  switch (spec.source_case()) {
    case pb::Routing::kExplicit:
      return ResolveExplicit(spec.explicit_(), shape, file);
    case pb::Routing::kSynthetic:
      return ResolveSynthetic(spec.synthetic(), shape, file);
    case pb::Routing::kScores: {
      MOESIM_ASSIGN_OR_RETURN(ScoreRouting routed, ResolveScoreRouting(spec.scores(), shape, file));
      if (router_figures != nullptr) *router_figures = std::move(routed.figures);
      return std::move(routed.layers);
    }
    case pb::Routing::kTrace:
      // Several steps: ResolveWorkload reads traces with LoadTraceRouting (models/trace_replay.h).
      return InputError(Where(file, "routing.trace"), "routing.trace", "",
                        "a trace holds steps, not one routing", "ResolveWorkload for traces");
    case pb::Routing::SOURCE_NOT_SET:
      break;
  }
  return InputError(Where(file, "routing"), "routing", "", "missing",
                    "routing { synthetic { distribution: UNIFORM seed: N } }, "
                    "routing { explicit { rank { rank: R experts: [...] } ... } }, "
                    "routing { trace { file: \"FILE\" } } or routing { scores { router: R } }");
}

uint64_t ExpertCapacity(uint64_t tokens, uint32_t top_k, uint32_t experts, double factor) {
  if (!(factor > 0) || experts == 0) return 0;
  const double per_expert = static_cast<double>(tokens * top_k) / static_cast<double>(experts);
  return static_cast<uint64_t>(std::ceil(per_expert * factor));
}

}  // namespace moesim::models
