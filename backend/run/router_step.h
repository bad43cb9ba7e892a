// The router's part of a moebench layer: logits from the router matrix, and the combine weights of
// the experts the scenario chose. The experts come from the scenario's routing (as the simulator
// uses them), not from the logits' top-k, so both executors route identically; the logits give
// the weights, as Mixtral's router does: softmax over the chosen experts' logits.
//
//   RouterLogits(x, tokens, hidden, wr, experts, logits);             // [tokens x experts]
//   ChosenExpertWeights(logits, tokens, experts, chosen, top_k, w);   // [tokens x top_k]
#pragma once

#include <cstdint>
#include <span>

namespace moesim::backend {

// logits[tokens x experts] = x[tokens x hidden] . wr[hidden x experts] (Eigen, row-major).
void RouterLogits(const float* x, uint64_t tokens, uint32_t hidden, const float* wr,
                  uint32_t experts, float* logits);

// weights[t*k + j] = exp(l[t, e_j] - m) / sum_i exp(l[t, e_i] - m), e = chosen[t*k ..], m the
// largest of them: softmax over the k chosen logits (sums to 1 per token).
void ChosenExpertWeights(const float* logits, uint64_t tokens, uint32_t experts,
                         std::span<const uint32_t> chosen, uint32_t top_k, float* weights);

}  // namespace moesim::backend
