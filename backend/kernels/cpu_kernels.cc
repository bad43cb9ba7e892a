#include "backend/kernels/cpu_kernels.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>

#include "backend/kernels/bf16.h"

namespace moesim::backend {
namespace {

// A NaN logit ranks below every number, so the order below is a strict weak order on any input.
float RankKey(float v) { return std::isnan(v) ? -std::numeric_limits<float>::infinity() : v; }

// True when (value a, id ia) ranks before (value b, id ib): larger value first, then lower id.
bool RanksBefore(float a, uint32_t ia, float b, uint32_t ib) {
  const float ka = RankKey(a), kb = RankKey(b);
  return ka > kb || (ka == kb && ia < ib);
}

// Scores of one token's experts: softmax over all of them, or an independent sigmoid each.
void Scores(const float* logits, uint32_t experts, ScoreFunction score, float* out) {
  if (score == ScoreFunction::kSigmoid) {
    for (uint32_t e = 0; e < experts; ++e) out[e] = 1.0f / (1.0f + std::exp(-logits[e]));
    return;
  }
  float max_logit = -std::numeric_limits<float>::infinity();
  for (uint32_t e = 0; e < experts; ++e) max_logit = std::max(max_logit, logits[e]);
  float sum = 0.0f;  // summed in expert order, as the CUDA kernel does
  for (uint32_t e = 0; e < experts; ++e) {
    out[e] = std::exp(logits[e] - max_logit);
    sum += out[e];
  }
  for (uint32_t e = 0; e < experts; ++e) out[e] /= sum;
}

// Marks the experts of the config.topk_groups best groups eligible (all of them when groups == 1).
void EligibleExperts(const float* logits, const float* scores, const RouterConfig& config,
                     std::vector<char>& eligible) {
  const uint32_t groups = config.groups, per_group = config.num_experts / groups;
  if (groups <= 1) {
    std::fill(eligible.begin(), eligible.end(), 1);
    return;
  }
  std::vector<float> group_score(groups);
  for (uint32_t g = 0; g < groups; ++g) {
    const uint32_t first = g * per_group;
    uint32_t best = first, second = first;  // second == best means "none yet"
    for (uint32_t e = first + 1; e < first + per_group; ++e) {
      if (RanksBefore(logits[e], e, logits[best], best)) {
        second = best;
        best = e;
      } else if (second == best || RanksBefore(logits[e], e, logits[second], second)) {
        second = e;
      }
    }
    group_score[g] = scores[best] + (second != best ? scores[second] : 0.0f);
  }
  std::vector<uint32_t> order(groups);
  std::iota(order.begin(), order.end(), 0u);
  std::partial_sort(
      order.begin(), order.begin() + config.topk_groups, order.end(),
      [&](uint32_t a, uint32_t b) { return RanksBefore(group_score[a], a, group_score[b], b); });
  std::fill(eligible.begin(), eligible.end(), 0);
  for (uint32_t i = 0; i < config.topk_groups; ++i) {
    std::fill_n(eligible.begin() + order[i] * per_group, per_group, 1);
  }
}

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMajor>;
using Map = Eigen::Map<RowMajor>;

}  // namespace

Status CheckRouterConfig(const RouterConfig& c) {
  auto fail = [&](const std::string& what) {
    return Error("router config: " + what + " (num_experts " + std::to_string(c.num_experts) +
                 ", top_k " + std::to_string(c.top_k) + ", groups " + std::to_string(c.groups) +
                 ", topk_groups " + std::to_string(c.topk_groups) + ")");
  };
  if (c.num_experts == 0) return fail("num_experts must be > 0");
  if (c.top_k == 0 || c.top_k > c.num_experts) return fail("top_k must be in [1, num_experts]");
  if (c.groups == 0 || c.groups > 64 || c.num_experts % c.groups != 0) {
    return fail("groups must divide num_experts and be in [1, 64]");
  }
  if (c.topk_groups == 0 || c.topk_groups > c.groups) {
    return fail("topk_groups must be in [1, groups]");
  }
  if (c.top_k > c.topk_groups * (c.num_experts / c.groups)) {
    return fail("top_k must be <= topk_groups * num_experts / groups");
  }
  return Status::Ok();
}

RouterOutput RouterTopK(std::span<const float> logits, uint32_t tokens,
                        const RouterConfig& config) {
  RouterOutput out;
  const uint64_t experts = config.num_experts;
  if (!CheckRouterConfig(config).ok() || logits.size() < tokens * experts) return out;
  const uint32_t k = config.top_k;
  out.experts.resize(uint64_t{tokens} * k);
  out.weights.resize(uint64_t{tokens} * k);
  std::vector<float> scores(experts);
  std::vector<char> eligible(experts);
  std::vector<uint32_t> candidates;
  candidates.reserve(experts);
  for (uint32_t t = 0; t < tokens; ++t) {
    const float* row = logits.data() + t * experts;
    Scores(row, config.num_experts, config.score, scores.data());
    EligibleExperts(row, scores.data(), config, eligible);
    candidates.clear();
    for (uint32_t e = 0; e < experts; ++e) {
      if (eligible[e]) candidates.push_back(e);
    }
    std::partial_sort(candidates.begin(), candidates.begin() + k, candidates.end(),
                      [&](uint32_t a, uint32_t b) { return RanksBefore(row[a], a, row[b], b); });
    float sum = 0.0f;
    for (uint32_t j = 0; j < k; ++j) sum += scores[candidates[j]];
    for (uint32_t j = 0; j < k; ++j) {
      const uint32_t e = candidates[j];
      out.experts[uint64_t{t} * k + j] = static_cast<int32_t>(e);
      // sum == 0 only when every chosen sigmoid underflowed; keep the raw zeros then.
      out.weights[uint64_t{t} * k + j] =
          config.normalize && sum > 0.0f ? scores[e] / sum : scores[e];
    }
  }
  return out;
}

Permutation BuildPermutation(std::span<const int32_t> bucket_of_slot, uint32_t buckets) {
  Permutation p;
  for (int32_t b : bucket_of_slot) {
    if (b < 0 || static_cast<uint32_t>(b) >= buckets) return p;
  }
  const uint64_t slots = bucket_of_slot.size();
  p.bucket_counts.assign(buckets, 0);
  for (int32_t b : bucket_of_slot) ++p.bucket_counts[b];
  p.bucket_offsets.assign(uint64_t{buckets} + 1, 0);
  std::partial_sum(p.bucket_counts.begin(), p.bucket_counts.end(), p.bucket_offsets.begin() + 1);
  // Counting sort: walking slots in order keeps each bucket's slots in slot order (stable).
  std::vector<uint64_t> next(p.bucket_offsets.begin(), p.bucket_offsets.end() - 1);
  p.row_of_slot.resize(slots);
  p.slot_of_row.resize(slots);
  for (uint64_t s = 0; s < slots; ++s) {
    const uint64_t row = next[bucket_of_slot[s]]++;
    p.row_of_slot[s] = static_cast<uint32_t>(row);
    p.slot_of_row[row] = static_cast<uint32_t>(s);
  }
  return p;
}

void Permute(const float* x, uint32_t hidden, const Permutation& p, uint32_t top_k, float* out) {
  if (top_k == 0) return;
  for (uint64_t row = 0; row < p.slot_of_row.size(); ++row) {
    const uint64_t token = p.slot_of_row[row] / top_k;
    std::memcpy(out + row * hidden, x + token * hidden, sizeof(float) * hidden);
  }
}

void GroupedSwiGlu(const float* x, std::span<const uint64_t> counts, const ExpertWeights& w,
                   float* y) {
  const Eigen::Index hidden = w.hidden, ffn = w.ffn;
  const uint64_t matrix = uint64_t{w.hidden} * w.ffn;
  // Rows go through in blocks so the [rows x ffn] intermediates stay small at Mixtral sizes
  // (1,024 rows x 14,336 floats would be 59 MB each).
  constexpr uint64_t kBlockRows = 256;
  RowMajor gate, up;
  uint64_t offset = 0;
  for (uint64_t e = 0; e < counts.size() && e < w.experts; ++e) {
    ConstMap g(w.gate.data() + e * matrix, hidden, ffn);
    ConstMap u(w.up.data() + e * matrix, hidden, ffn);
    ConstMap d(w.down.data() + e * matrix, ffn, hidden);
    for (uint64_t done = 0; done < counts[e]; done += kBlockRows) {
      const Eigen::Index rows = static_cast<Eigen::Index>(std::min(kBlockRows, counts[e] - done));
      const uint64_t first = offset + done;
      ConstMap xe(x + first * hidden, rows, hidden);
      gate.noalias() = xe * g;
      up.noalias() = xe * u;
      // silu(v) * up, in place in `gate`.
      gate = gate.unaryExpr([](float v) { return v / (1.0f + std::exp(-v)); }).cwiseProduct(up);
      Map(y + first * hidden, rows, hidden).noalias() = gate * d;
    }
    offset += counts[e];
  }
}

void UnpermuteCombine(const float* expert_out, uint32_t hidden, const Permutation& p,
                      std::span<const float> weights, uint32_t top_k, float* y) {
  if (top_k == 0) return;
  const uint64_t tokens = std::min(weights.size(), p.row_of_slot.size()) / top_k;
  for (uint64_t t = 0; t < tokens; ++t) {
    float* yt = y + t * hidden;
    std::fill_n(yt, hidden, 0.0f);
    for (uint32_t k = 0; k < top_k; ++k) {  // fixed k order: deterministic sums
      const uint64_t slot = t * top_k + k;
      const float wk = weights[slot];
      const float* src = expert_out + uint64_t{p.row_of_slot[slot]} * hidden;
      for (uint32_t h = 0; h < hidden; ++h) yt[h] += wk * src[h];
    }
  }
}

DeviceLayoutWeights ToDeviceLayout(const ExpertWeights& w) {
  const uint64_t hid = w.hidden, ffn = w.ffn, matrix = hid * ffn;
  DeviceLayoutWeights out;
  out.w1.resize(w.experts * 2 * matrix);
  out.w2.resize(w.experts * matrix);
  for (uint64_t e = 0; e < w.experts; ++e) {
    const uint64_t base = e * matrix;
    for (uint64_t i = 0; i < hid; ++i) {
      for (uint64_t j = 0; j < ffn; ++j) {
        out.w1[2 * base + j * hid + i] = FloatToBf16(w.gate[base + i * ffn + j]);
        out.w1[2 * base + (ffn + j) * hid + i] = FloatToBf16(w.up[base + i * ffn + j]);
        out.w2[base + i * ffn + j] = FloatToBf16(w.down[base + j * hid + i]);
      }
    }
  }
  return out;
}

}  // namespace moesim::backend
