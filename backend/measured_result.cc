#include "backend/measured_result.h"

#include <google/protobuf/struct.pb.h>

#include "backend/time_stats.h"

namespace moesim::backend {

int64_t AddMeasuredPhase(pb::Result& result, const PhaseSamples& s) {
  pb::Phase* phase = result.add_phases();
  phase->set_name(s.name);
  phase->set_layer(s.layer);
  const TimeStats stats = Summarize(s.slowest_ns);
  phase->set_time_ns(stats.median);
  phase->set_time_p10_ns(stats.p10);
  phase->set_time_p90_ns(stats.p90);
  phase->set_time_min_ns(stats.min);
  phase->set_time_max_ns(stats.max);
  uint32_t critical = 0;
  for (uint32_t r = 0; r < s.rank_median_ns.size(); ++r) {
    phase->add_rank_time_ns(s.rank_median_ns[r]);
    if (s.rank_median_ns[r] > s.rank_median_ns[critical]) critical = r;
  }
  phase->set_critical_rank(critical);
  if (s.link_bytes) {
    phase->set_bytes(*s.link_bytes);
  } else if (critical < s.rank_bytes.size()) {
    phase->set_bytes(s.rank_bytes[critical]);
  }
  if (critical < s.rank_flops.size()) phase->set_flops(s.rank_flops[critical]);
  return stats.median;
}

namespace {

void AddMatrix(pb::Result& result, const char* name, uint32_t layer,
               const models::TrafficMatrix& tokens, uint64_t row_bytes) {
  pb::SendMatrix* m = result.add_send_matrices();
  m->set_phase(name);
  m->set_layer(layer);
  for (uint32_t i = 0; i < tokens.ranks(); ++i) {
    google::protobuf::ListValue* token_row = m->add_tokens();
    google::protobuf::ListValue* byte_row = m->add_bytes();
    for (uint32_t j = 0; j < tokens.ranks(); ++j) {
      token_row->add_values()->set_number_value(static_cast<double>(tokens.at(i, j)));
      byte_row->add_values()->set_number_value(static_cast<double>(tokens.at(i, j) * row_bytes));
    }
  }
}

}  // namespace

void AddSendMatrices(pb::Result& result, uint32_t layer, const models::TrafficMatrix& dispatch,
                     uint64_t row_bytes) {
  AddMatrix(result, "dispatch", layer, dispatch, row_bytes);
  AddMatrix(result, "combine", layer, dispatch.Transposed(), row_bytes);
}

uint64_t OffDiagonalBytes(const models::TrafficMatrix& tokens, uint64_t row_bytes) {
  uint64_t rows = 0;
  for (uint32_t r = 0; r < tokens.ranks(); ++r) rows += tokens.SentOffRank(r);
  return rows * row_bytes;
}

}  // namespace moesim::backend
