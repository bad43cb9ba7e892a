#include "models/send_matrices.h"

#include <google/protobuf/struct.pb.h>

#include <algorithm>
#include <vector>

namespace moesim::models {
namespace {

void AddMatrix(pb::Result& result, const char* phase, uint32_t layer, const TrafficMatrix& tokens,
               uint64_t token_bytes) {
  pb::SendMatrix* m = result.add_send_matrices();
  m->set_phase(phase);
  m->set_layer(layer);
  const uint32_t n = tokens.ranks();
  std::vector<uint64_t> dense(n);
  for (uint32_t i = 0; i < n; ++i) {
    std::fill(dense.begin(), dense.end(), 0);
    for (const TrafficMatrix::Cell& c : tokens.row(i)) dense[c.dst] = c.count;
    google::protobuf::ListValue* token_row = m->add_tokens();
    google::protobuf::ListValue* byte_row = m->add_bytes();
    token_row->mutable_values()->Reserve(static_cast<int>(n));
    byte_row->mutable_values()->Reserve(static_cast<int>(n));
    for (uint32_t j = 0; j < n; ++j) {
      token_row->add_values()->set_number_value(static_cast<double>(dense[j]));
      byte_row->add_values()->set_number_value(static_cast<double>(dense[j] * token_bytes));
    }
  }
}

}  // namespace

void AddSendMatrices(pb::Result& result, uint32_t layer, const TrafficMatrix& dispatch,
                     uint64_t token_bytes) {
  AddSendMatrices(result, layer, dispatch, token_bytes, token_bytes);
}

void AddSendMatrices(pb::Result& result, uint32_t layer, const TrafficMatrix& dispatch,
                     uint64_t dispatch_token_bytes, uint64_t combine_token_bytes) {
  if (dispatch.ranks() > kMaxSendMatrixRanks) return;
  AddMatrix(result, "dispatch", layer, dispatch, dispatch_token_bytes);
  AddMatrix(result, "combine", layer, dispatch.Transposed(), combine_token_bytes);
}

}  // namespace moesim::models
