#include "models/send_matrices.h"

#include <google/protobuf/struct.pb.h>

namespace moesim::models {
namespace {

void AddMatrix(pb::Result& result, const char* phase, uint32_t layer, const TrafficMatrix& tokens,
               uint64_t token_bytes) {
  pb::SendMatrix* m = result.add_send_matrices();
  m->set_phase(phase);
  m->set_layer(layer);
  for (uint32_t i = 0; i < tokens.ranks(); ++i) {
    google::protobuf::ListValue* token_row = m->add_tokens();
    google::protobuf::ListValue* byte_row = m->add_bytes();
    for (uint32_t j = 0; j < tokens.ranks(); ++j) {
      token_row->add_values()->set_number_value(static_cast<double>(tokens.at(i, j)));
      byte_row->add_values()->set_number_value(static_cast<double>(tokens.at(i, j) * token_bytes));
    }
  }
}

}  // namespace

void AddSendMatrices(pb::Result& result, uint32_t layer, const TrafficMatrix& dispatch,
                     uint64_t token_bytes) {
  AddMatrix(result, "dispatch", layer, dispatch, token_bytes);
  AddMatrix(result, "combine", layer, dispatch.Transposed(), token_bytes);
}

}  // namespace moesim::models
