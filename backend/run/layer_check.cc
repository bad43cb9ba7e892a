#include "backend/run/layer_check.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "backend/run/layer_inputs.h"

namespace moesim::backend {
namespace {

std::string Where(uint32_t rank, uint32_t layer) {
  return "rank " + std::to_string(rank) + ", layer " + std::to_string(layer);
}

std::string Token(Stamp s) {
  return "(rank " + std::to_string(s.rank) + ", token " + std::to_string(s.token) + ")";
}

}  // namespace

StatusOr<uint64_t> CheckDispatched(const MoeLayerRank& r, const models::Workload& w, uint32_t layer,
                                   uint64_t seed) {
  const uint32_t me = r.rank(), hidden = r.hidden();
  const uint32_t per_rank = w.placement.experts_per_rank();
  const uint32_t first = w.plan.EpRank(me) * per_rank;
  const models::LayerRouting& routing = w.routing.at(layer);
  const std::vector<float>& rows = r.expert_input();
  std::vector<float> expected_row(hidden);
  uint64_t row = 0;
  for (uint32_t local = 0; local < per_rank; ++local) {
    const uint32_t expert = first + local;
    // Expected: every token of every rank whose EP group sends `expert` here, in rank order.
    std::vector<Stamp> expected;
    for (uint32_t src = 0; src < w.plan.world(); ++src) {
      if (w.plan.EpGroup(src)[w.placement.EpRankOf(expert)] != me) continue;
      const std::vector<uint32_t>& chosen = routing.experts[src];
      for (uint64_t s = 0; s < chosen.size(); ++s) {
        if (chosen[s] == expert) expected.push_back(Stamp{src, s / routing.top_k});
      }
    }
    if (expected.size() != r.expert_rows()[local]) {
      return Error(Where(me, layer) + ": expert " + std::to_string(expert) + " received " +
                   std::to_string(r.expert_rows()[local]) + " rows; the routing sends it " +
                   std::to_string(expected.size()));
    }
    for (const Stamp& want : expected) {
      const float* got = rows.data() + row * hidden;
      if (ReadStamp(got) != want) {
        return Error(Where(me, layer) + ": expert " + std::to_string(expert) + " row " +
                     std::to_string(row) + " holds token " + Token(ReadStamp(got)) + ", expected " +
                     Token(want));
      }
      FillTokenRow(seed, layer, want.rank, want.token, expected_row);
      if (std::memcmp(got, expected_row.data(), hidden * sizeof(float)) != 0) {
        return Error(Where(me, layer) + ": expert " + std::to_string(expert) + " row " +
                     std::to_string(row) + ", token " + Token(want) +
                     ": payload differs from the token's row");
      }
      ++row;
    }
  }
  return row;
}

std::vector<float> ReferenceOutput(const models::Workload& w, uint32_t layer, uint32_t rank,
                                   uint64_t seed, const std::vector<float>& router) {
  const uint32_t h = w.model.hidden_size(), f = w.model.expert_ffn_size();
  const uint32_t top_k = w.model.top_k(), experts = w.model.num_experts();
  constexpr uint32_t r = kWeightRank;
  std::vector<ExpertFactors> factors;
  for (uint32_t e = 0; e < experts; ++e) factors.push_back(MakeExpertFactors(seed, e, h, f));
  const models::LayerRouting& routing = w.routing.at(layer);
  const std::vector<uint32_t>& chosen = routing.experts.at(rank);
  const uint64_t tokens = routing.tokens(rank);
  std::vector<float> x(h), y(tokens * h);
  std::vector<double> logits(experts), out(h);
  for (uint64_t t = 0; t < tokens; ++t) {
    FillTokenRow(seed, layer, rank, t, x);
    // Router: logits of the chosen experts, softmax over them.
    const uint32_t* e = chosen.data() + t * top_k;
    double largest = -1e300, sum = 0;
    for (uint32_t j = 0; j < top_k; ++j) {
      double l = 0;
      for (uint32_t i = 0; i < h; ++i) l += double{x[i]} * router[uint64_t{i} * experts + e[j]];
      logits[j] = l;
      largest = std::max(largest, l);
    }
    for (uint32_t j = 0; j < top_k; ++j) sum += logits[j] = std::exp(logits[j] - largest);
    std::fill(out.begin(), out.end(), 0.0);
    for (uint32_t j = 0; j < top_k; ++j) {
      // The expert's SwiGLU through its factors (backend/run/layer_inputs.h).
      const ExpertFactors& ef = factors[e[j]];
      double xg[r] = {}, xu[r] = {}, a[r] = {};
      for (uint32_t i = 0; i < h; ++i) {
        xg[i % r] += double{x[i]} * ef.gate_u[i];
        xu[i % r] += double{x[i]} * ef.up_u[i];
      }
      for (uint32_t c = 0; c < f; ++c) {
        double g = 0, u = 0;
        for (uint32_t k = 0; k < r; ++k) {
          g += xg[k] * ef.gate_v[uint64_t{k} * f + c];
          u += xu[k] * ef.up_v[uint64_t{k} * f + c];
        }
        a[c % r] += g / (1 + std::exp(-g)) * u * ef.down_p[c];
      }
      const double weight = logits[j] / sum;
      for (uint32_t i = 0; i < h; ++i) {
        double v = 0;
        for (uint32_t k = 0; k < r; ++k) v += a[k] * ef.down_q[uint64_t{k} * h + i];
        out[i] += weight * v;
      }
    }
    for (uint32_t i = 0; i < h; ++i) y[t * h + i] = static_cast<float>(out[i]);
  }
  return y;
}

StatusOr<double> CheckCombined(std::span<const float> output, std::span<const float> reference,
                               uint32_t hidden, uint32_t rank, uint32_t layer, double bound,
                               ErrorScale per) {
  if (output.size() != reference.size()) {
    return Error(Where(rank, layer) + ": combine returned " +
                 std::to_string(output.size() / hidden) + " tokens, expected " +
                 std::to_string(reference.size() / hidden));
  }
  double layer_scale = 0;
  for (float v : reference) layer_scale = std::max(layer_scale, std::abs(static_cast<double>(v)));
  double worst = 0;
  for (uint64_t t = 0; t * hidden < output.size(); ++t) {
    double diff = 0, scale = 0;
    for (uint32_t i = 0; i < hidden; ++i) {
      const double ref = reference[t * hidden + i];
      diff = std::max(diff, std::abs(static_cast<double>(output[t * hidden + i]) - ref));
      scale = std::max(scale, std::abs(ref));
    }
    if (per == ErrorScale::kLayer) scale = layer_scale;
    // A token whose reference is all zeros (no experts) must come back all zeros; NaN (a row no
    // kernel wrote) fails the comparison.
    const double relative = scale > 0 ? diff / scale : diff;
    if (!(relative <= bound)) {
      std::ostringstream msg;
      msg << Where(rank, layer) << ": token " << t << " after combine differs from the "
          << "single-process reference by " << relative
          << (per == ErrorScale::kLayer ? " of the layer's largest value" : " of its largest value")
          << " (bound " << bound << ")";
      return Error(msg.str());
    }
    worst = std::max(worst, relative);
  }
  return worst;
}

}  // namespace moesim::backend
