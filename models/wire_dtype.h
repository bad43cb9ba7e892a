// What one token weighs on the wire in a MoE layer's dispatch or combine all-to-all: the
// scenario's workload.dispatch_dtype / combine_dtype (or the step block's), which may differ from
// the model's dtype. DeepSeek-V3 dispatches in FP8 and combines in BF16 (arXiv:2412.19437 §3.3.2,
// DeepEP's `dispatch(x=(fp8, scales))` and BF16 `combine`); absent, a token travels in the model's
// dtype, as moesim always priced it.
//
//   MOESIM_ASSIGN_OR_RETURN(std::optional<WireDtype> d,
//                           ParseWireDtype(load.dispatch_dtype(), where,
//                           "workload.dispatch_dtype"));
//   WireTokenBytes(deepseek_v3, d).value;   // fp8: 7168 + 56 x 4 = 7,392 B (bf16: 14,336 B)
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "proto/model.pb.h"
#include "proto/status.h"
#include "proto/units.h"

namespace moesim::models {

enum class WireDtype {
  kBf16,  // 2 bytes per element
  // 1 byte per element (e4m3) plus one fp32 scale per 128 channels, as DeepSeek-V3's fine-grained
  // quantization and DeepEP's FP8 dispatch send them (`x_scales` of hidden / 128 floats per token).
  kFp8,
};

// Channels that share one FP8 scale (DeepSeek-V3's 1 x 128 activation tiles).
inline constexpr uint64_t kFp8ScaleChannels = 128;
// Bytes of one scale: fp32.
inline constexpr uint64_t kFp8ScaleBytes = 4;

// DeepEP's low-latency dispatch sends each (token, expert) as one message of the token plus a
// 16-byte header, an int4 of source information (csrc/kernels/legacy/internode_ll.cu:
// num_bytes_per_msg = sizeof(int4) + hidden bytes + scales); its combine messages are the token
// alone (num_send_bytes = hidden x 2 for BF16).
inline constexpr uint64_t kLowLatencyHeaderBytes = 16;

std::string_view ToString(WireDtype dtype);  // "bf16", "fp8"

// "bf16" or "fp8"; "" (the field absent) is nullopt, the model's dtype. Anything else is an error
// at `where` naming `field`, the value and the valid names.
StatusOr<std::optional<WireDtype>> ParseWireDtype(std::string_view name, const Location& where,
                                                  std::string_view field);

// Bytes of one token of `model` (h = hidden_size channels) as dispatch or combine sends it:
//   bf16:     2 h
//   fp8:      h + ceil(h / 128) x 4          (a last partial group of channels has its own scale)
//   nullopt:  TokenBytes(model) = h x BytesPerElement(model's dtype), no scales
Bytes WireTokenBytes(const pb::ModelSpec& model, std::optional<WireDtype> dtype);

}  // namespace moesim::models
