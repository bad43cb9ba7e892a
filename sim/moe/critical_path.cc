#include "sim/moe/critical_path.h"

#include <fmt/format.h>

#include <array>
#include <numeric>
#include <string>

namespace moesim::sim {
namespace {

constexpr std::array<const char*, 4> kPhases = {"router", "dispatch", "expert", "combine"};
enum PhaseIndex { kRouter = 0, kDispatch = 1, kExpert = 2, kCombine = 3 };

struct Step {
  int64_t start = 0, end = 0;
  uint32_t waited_for = 0;
};

const pb::Phase* FindPhase(const pb::Result& r, const char* name, uint32_t layer) {
  for (const pb::Phase& p : r.phases()) {
    if (p.name() == name && p.layer() == layer) return &p;
  }
  return nullptr;
}

std::string Gpu(uint32_t rank) { return "gpu" + std::to_string(rank); }

// Each rank r of `at` starts when the latest of `ready[q]` over r itself and the peers q with
// tokens between them (q -> r when `into`, else r -> q) has come; returns the steps with times `t`.
std::vector<Step> Waiting(const models::TrafficMatrix& tokens, bool into,
                          const std::vector<int64_t>& ready, const pb::Phase& phase) {
  const uint32_t n = tokens.ranks();
  std::vector<Step> steps(n);
  for (uint32_t r = 0; r < n; ++r) steps[r] = Step{ready[r], 0, r};
  // Row by row over the stored cells (s -> d): dispatch into d waits for s, combine into s for
  // d. Peers are met in ascending order either way, so ties go to the lowest.
  for (uint32_t s = 0; s < n; ++s) {
    for (const models::TrafficMatrix::Cell& c : tokens.row(s)) {
      if (c.dst == s || c.count == 0) continue;
      const uint32_t r = into ? c.dst : s, q = into ? s : c.dst;
      if (ready[q] > steps[r].start) steps[r] = Step{ready[q], 0, q};
    }
  }
  for (uint32_t r = 0; r < n; ++r) steps[r].end = steps[r].start + phase.rank_time_ns(r);
  return steps;
}

std::vector<Step> Own(const std::vector<int64_t>& ready, const pb::Phase& phase) {
  std::vector<Step> steps(ready.size());
  for (uint32_t r = 0; r < ready.size(); ++r)
    steps[r] = Step{ready[r], ready[r] + phase.rank_time_ns(r), r};
  return steps;
}

std::vector<int64_t> Ends(const std::vector<Step>& steps) {
  std::vector<int64_t> ends(steps.size());
  for (size_t r = 0; r < steps.size(); ++r) ends[r] = steps[r].end;
  return ends;
}

// `previous`: the layer before this one, or nullptr for the first.
std::string Note(int phase, const models::LayerWork* previous, uint32_t rank, const Step& s,
                 const models::LayerWork& work) {
  const bool own = s.waited_for == rank;
  switch (phase) {
    case kRouter:
      return previous == nullptr ? "starts the layer"
                                 : "its own combine of layer " + std::to_string(previous->layer);
    case kDispatch:
      return own ? "its own router (its senders were ready before it)"
                 : Gpu(s.waited_for) + "'s router (the last of the GPUs sending it tokens)";
    case kExpert: {
      std::string note = "its own dispatch";
      if (rank < work.expert_tokens.size()) {
        uint64_t total = 0, copies = 0;
        for (const std::vector<uint64_t>& e : work.expert_tokens)
          total = std::accumulate(e.begin(), e.end(), total);
        for (uint64_t c : work.expert_tokens[rank]) copies += c;
        const double mean = static_cast<double>(total) / work.expert_tokens.size();
        note += fmt::format("; {} token copies, {:.2f}x the mean", copies,
                            mean > 0 ? static_cast<double>(copies) / mean : 0.0);
      }
      return note;
    }
    default:
      return own ? "its own experts (the ranks holding its tokens were done before it)"
                 : Gpu(s.waited_for) + "'s experts (the last to return its tokens)";
  }
}

}  // namespace

void AddCriticalPath(const std::vector<models::LayerWork>& layers, pb::Result& result) {
  if (layers.empty()) return;
  const uint32_t n = layers.front().dispatch_tokens.ranks();
  if (n == 0) return;
  std::vector<std::array<const pb::Phase*, 4>> phases(layers.size());
  for (size_t l = 0; l < layers.size(); ++l) {
    if (layers[l].dispatch_tokens.ranks() != n) return;
    for (int p = 0; p < 4; ++p) {
      const pb::Phase* phase = FindPhase(result, kPhases[p], layers[l].layer);
      if (phase == nullptr || static_cast<uint32_t>(phase->rank_time_ns_size()) != n) return;
      phases[l][p] = phase;
    }
  }
  // steps[l][p][r]
  std::vector<std::array<std::vector<Step>, 4>> steps(layers.size());
  std::vector<int64_t> ready(n, 0);
  for (size_t l = 0; l < layers.size(); ++l) {
    const models::TrafficMatrix& tokens = layers[l].dispatch_tokens;
    auto& s = steps[l];
    s[kRouter] = Own(ready, *phases[l][kRouter]);
    s[kDispatch] = Waiting(tokens, /*into=*/true, Ends(s[kRouter]), *phases[l][kDispatch]);
    s[kExpert] = Own(Ends(s[kDispatch]), *phases[l][kExpert]);
    // Combine brings r's tokens back from the ranks r sent them to.
    s[kCombine] = Waiting(tokens, /*into=*/false, Ends(s[kExpert]), *phases[l][kCombine]);
    ready = Ends(s[kCombine]);
  }
  uint32_t last = 0;
  for (uint32_t r = 1; r < n; ++r) {
    if (ready[r] > ready[last]) last = r;
  }
  result.set_dataflow_total_ns(ready[last]);
  // Back from the last rank's last combine to the first layer's router.
  std::vector<pb::CriticalStep> path;
  uint32_t rank = last;
  for (size_t l = layers.size(); l-- > 0;) {
    for (int p = kCombine; p >= kRouter; --p) {
      const Step& s = steps[l][p][rank];
      pb::CriticalStep c;
      c.set_phase(kPhases[p]);
      c.set_layer(layers[l].layer);
      c.set_rank(rank);
      c.set_start_ns(s.start);
      c.set_end_ns(s.end);
      c.set_waited_for(s.waited_for);
      c.set_note(Note(p, l == 0 ? nullptr : &layers[l - 1], rank, s, layers[l]));
      path.push_back(c);
      rank = s.waited_for;
    }
  }
  for (auto it = path.rbegin(); it != path.rend(); ++it) *result.add_critical_path() = *it;
}

}  // namespace moesim::sim
