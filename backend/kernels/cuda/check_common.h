// Shared pieces of gpu_kernel_check: its options, a minimal JSON builder for the report, routing
// logits for the benchmarks, and the Mixtral layer mode (check_mixtral.cc).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace moesim::backend::gpu {

struct CheckOptions {
  std::string mode = "check";  // check, mixtral or all
  std::string json_path;       // empty: no file
  bool quick = false;          // small sizes (ctest on a GPU machine)
};

// Builds one JSON object or array; keys and strings are escaped, non-finite numbers become null.
class Json {
 public:
  static Json Object() { return Json('{', '}'); }
  static Json Array() { return Json('[', ']'); }

  Json& Add(std::string_view key, const Json& value) { return Raw(key, value.str()); }
  Json& Add(std::string_view key, std::string_view value) { return Raw(key, Quote(value)); }
  Json& Add(std::string_view key, const char* value) { return Raw(key, Quote(value)); }
  Json& Add(std::string_view key, bool value) { return Raw(key, value ? "true" : "false"); }
  Json& Add(std::string_view key, double value) { return Raw(key, Number(value)); }
  Json& Add(std::string_view key, uint64_t value) { return Raw(key, std::to_string(value)); }
  Json& Add(std::string_view key, int value) { return Raw(key, std::to_string(value)); }
  Json& Add(std::string_view key, uint32_t value) { return Raw(key, std::to_string(value)); }
  Json& Push(const Json& value) { return Raw({}, value.str()); }
  Json& Push(uint64_t value) { return Raw({}, std::to_string(value)); }

  std::string str() const { return body_ + close_; }

 private:
  Json(char open, char close) : body_(1, open), close_(1, close) {}
  Json& Raw(std::string_view key, const std::string& value) {
    if (body_.size() > 1) body_ += ", ";
    if (!key.empty()) body_ += Quote(key) + ": ";
    body_ += value;
    return *this;
  }
  static std::string Quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char escaped[8];
        std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
        out += escaped;
      } else {
        out += c;
      }
    }
    return out + "\"";
  }
  static std::string Number(double v) {
    if (!std::isfinite(v)) return "null";
    char text[32];
    std::snprintf(text, sizeof text, "%.6g", v);
    return text;
  }

  std::string body_, close_;
};

// Router logits [tokens x experts] that make a top-2 router pick experts with the given skew:
// zipf_s == 0 gives i.i.d. uniform logits (every expert equally likely); zipf_s > 0 draws each
// token's two experts from P(expert e) ~ 1 / (e + 1)^zipf_s without replacement and gives them
// the two largest logits.
inline std::vector<float> RoutingLogits(uint32_t tokens, uint32_t experts, double zipf_s,
                                        uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> noise(-1.0f, 1.0f);
  std::vector<float> logits(uint64_t{tokens} * experts);
  for (float& l : logits) l = noise(rng);
  if (zipf_s <= 0) return logits;
  std::vector<double> p(experts);
  for (uint32_t e = 0; e < experts; ++e) p[e] = 1.0 / std::pow(e + 1.0, zipf_s);
  for (uint32_t t = 0; t < tokens; ++t) {
    std::discrete_distribution<uint32_t> first(p.begin(), p.end());
    const uint32_t a = first(rng);
    std::vector<double> rest = p;
    rest[a] = 0;
    std::discrete_distribution<uint32_t> second(rest.begin(), rest.end());
    const uint32_t b = experts > 1 ? second(rng) : a;
    logits[uint64_t{t} * experts + a] = 8.0f + 0.1f * noise(rng);
    if (b != a) logits[uint64_t{t} * experts + b] = 6.0f + 0.1f * noise(rng);
  }
  return logits;
}

// Logits that give every expert exactly 2 * tokens / experts rows under top-2 (tokens a multiple
// of experts): token t picks experts t % experts and (t + 1) % experts.
inline std::vector<float> BalancedLogits(uint32_t tokens, uint32_t experts, uint64_t seed) {
  std::vector<float> logits = RoutingLogits(tokens, experts, 0.0, seed);
  for (uint32_t t = 0; t < tokens; ++t) {
    logits[uint64_t{t} * experts + t % experts] = 8.0f;
    logits[uint64_t{t} * experts + (t + 1) % experts] = 6.0f;
  }
  return logits;
}

// The Mixtral-8x7B layer timings; adds "mixtral" to `report`; false if a call failed.
bool RunMixtral(const CheckOptions& options, Json& report);

}  // namespace moesim::backend::gpu
