#include "sim/calibration/calibration_data.h"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include <cmath>

#include "models/model_spec.h"
#include "proto/input_file.h"
#include "proto/protobuf_log.h"
#include "sim/compute/profile_model.h"

namespace moesim::sim {
namespace {

// Parses the JSON `text` of `path` into `message` after the depth check. false: not JSON of that
// message, with protobuf's complaint (its first line, escaped) as ": ..." in `why`.
StatusOr<bool> ParseJsonFile(const std::string& path, const std::string& text,
                             google::protobuf::Message* message, std::string* why) {
  MOESIM_RETURN_IF_ERROR(CheckJsonDepth(text, Location{path, 1, 1}));
  const auto status = google::protobuf::util::JsonStringToMessage(text, message);
  if (status.ok()) return true;
  const std::string said(status.message());
  *why = ": " + Printable(std::string_view(said).substr(0, said.find('\n')), 200);
  return false;
}

std::string PhaseName(const pb::Result& r, int i) {
  return "phases[" + std::to_string(i) + "] (" + r.phases(i).name() + ", layer " +
         std::to_string(r.phases(i).layer()) + ")";
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The largest whole number a send matrix cell may hold: 2^53, below which every integer is a
// double exactly (IEEE 754 binary64's 53-bit significand), so a cell converts to uint64_t exactly.
constexpr double kMaxCount = 9007199254740992.0;

// Every cell of `rows` (send_matrices[index].`what`) a whole number 0..2^53: a JSON number that a
// file could make negative, fractional, NaN or 1e300 was converted to uint64_t unchecked
// (undefined behaviour; found by fuzzing, tests/fuzz/result_fuzz.cc).
Status CheckCounts(const std::string& path, const pb::Result& r, int index, const char* what,
                   const google::protobuf::RepeatedPtrField<google::protobuf::ListValue>& rows) {
  const pb::SendMatrix& m = r.send_matrices(index);
  for (int i = 0; i < rows.size(); ++i) {
    for (int j = 0; j < rows[i].values_size(); ++j) {
      const google::protobuf::Value& v = rows[i].values(j);
      const double x = v.number_value();
      if (v.kind_case() == google::protobuf::Value::kNumberValue && x >= 0 && x <= kMaxCount &&
          x == std::floor(x)) {
        continue;
      }
      std::string value;
      if (v.kind_case() == google::protobuf::Value::kNumberValue) {
        value = fmt::format("{}", x);
      } else if (!google::protobuf::util::MessageToJsonString(v, &value).ok()) {
        value = "not a number";
      }
      return InputError(Location{path},
                        fmt::format("send_matrices[{}] ({}, layer {}).{}[{}][{}]", index,
                                    m.phase(), m.layer(), what, i, j),
                        value, "not a count", "a whole number from 0 to 9007199254740992 (2^53)");
    }
  }
  return Status::Ok();
}

// Tokens of send matrix `m` as a TrafficMatrix; false when it is not square over `ranks`.
bool MatrixOf(const pb::SendMatrix& m, uint32_t ranks, models::TrafficMatrix* out) {
  if (static_cast<uint32_t>(m.tokens_size()) != ranks) return false;
  *out = models::TrafficMatrix(ranks);
  for (uint32_t i = 0; i < ranks; ++i) {
    if (static_cast<uint32_t>(m.tokens(i).values_size()) != ranks) return false;
    for (uint32_t j = 0; j < ranks; ++j)
      out->at(i, j) = static_cast<uint64_t>(m.tokens(i).values(j).number_value());
  }
  return true;
}

}  // namespace

StatusOr<MeasuredFile> ReadMeasured(const std::string& path) {
  MeasuredFile m{path, {}};
  MOESIM_ASSIGN_OR_RETURN(const std::string bytes, ReadInputFile(path));
  bool parsed = false;
  std::string why;  // what protobuf said, when it said something
  if (EndsWith(path, ".json")) {
    MOESIM_ASSIGN_OR_RETURN(parsed, ParseJsonFile(path, bytes, &m.result, &why));
  } else {
    ProtobufLogCapture protobuf_says;
    parsed = m.result.ParseFromString(bytes);
    why = protobuf_says.Reason();
  }
  if (!parsed) {
    return InputError(Location{path}, "", "", "not a Result (proto/result.proto)" + why,
                      "what `moebench run --out` or `moebench gemm --out` writes (binary), or its "
                      "--json in a file ending .json");
  }
  const pb::Result& r = m.result;
  if (r.executor() != "measured") {
    return InputError(Location{path}, "executor", r.executor(), "a prediction, not a measurement",
                      "\"measured\" (moebench)");
  }
  if (r.phases_size() == 0)
    return InputError(Location{path}, "phases", "none", "nothing was measured", ">= 1 phase");
  for (int i = 0; i < r.phases_size(); ++i) {
    const pb::Phase& p = r.phases(i);
    if (p.time_ns() <= 0) {
      return InputError(Location{path}, PhaseName(r, i) + ".time_ns", std::to_string(p.time_ns()),
                        "a measured time must be", "> 0");
    }
    // moebench writes one time per rank (backend/run/measured_result.cc); a Result of another
    // shape would be read past its ranks.
    if (p.rank_time_ns_size() != 0 && static_cast<uint32_t>(p.rank_time_ns_size()) != r.gpus()) {
      return InputError(Location{path}, PhaseName(r, i) + ".rank_time_ns",
                        std::to_string(p.rank_time_ns_size()) + " values",
                        "one per rank, and the Result has gpus = " + std::to_string(r.gpus()),
                        std::to_string(r.gpus()) + " values, or none");
    }
    if (r.gpus() > 0 && p.critical_rank() >= r.gpus()) {
      return InputError(
          Location{path}, PhaseName(r, i) + ".critical_rank", std::to_string(p.critical_rank()),
          "no such rank",
          "0.." + std::to_string(r.gpus() - 1) + " (gpus = " + std::to_string(r.gpus()) + ")");
    }
    for (int k = 0; k < p.rank_time_ns_size(); ++k) {
      if (p.rank_time_ns(k) <= 0) {
        return InputError(Location{path},
                          PhaseName(r, i) + ".rank_time_ns[" + std::to_string(k) + "]",
                          std::to_string(p.rank_time_ns(k)), "a measured time must be", "> 0");
      }
    }
  }
  for (int i = 0; i < r.send_matrices_size(); ++i) {
    MOESIM_RETURN_IF_ERROR(CheckCounts(path, r, i, "tokens", r.send_matrices(i).tokens()));
    MOESIM_RETURN_IF_ERROR(CheckCounts(path, r, i, "bytes", r.send_matrices(i).bytes()));
  }
  return m;
}

bool IsA2aSweepFile(const std::string& path) {
  if (!EndsWith(path, ".json")) return false;
  const StatusOr<std::string> text = ReadInputFile(path);  // errors: ReadMeasured says them
  if (!text.ok()) return false;
  pb::CollectiveSweep sweep;
  std::string why;
  const StatusOr<bool> parsed = ParseJsonFile(path, *text, &sweep, &why);
  return parsed.ok() && *parsed && sweep.rows_size() > 0;
}

StatusOr<std::vector<Observation>> A2aSweepObservations(const std::string& path,
                                                        const std::string& link_class) {
  pb::CollectiveSweep sweep;
  const std::string_view valid = "what `moebench a2a --json` prints, in a file ending .json";
  if (!EndsWith(path, ".json")) {
    return InputError(Location{path}, "", "", "not a CollectiveSweep", valid);
  }
  MOESIM_ASSIGN_OR_RETURN(const std::string text, ReadInputFile(path));
  std::string why;
  MOESIM_ASSIGN_OR_RETURN(const bool parsed, ParseJsonFile(path, text, &sweep, &why));
  if (!parsed) return InputError(Location{path}, "", "", "not a CollectiveSweep" + why, valid);
  if (sweep.fidelity() != "measured") {
    return InputError(Location{path}, "fidelity", "\"" + sweep.fidelity() + "\"",
                      "a prediction (moesim collective), not a measurement",
                      "\"measured\" (moebench a2a)");
  }
  if (sweep.op() != "alltoall") {
    return InputError(Location{path}, "op", "\"" + sweep.op() + "\"",
                      "only the equal all-to-all's sizes say what each rank moved",
                      "\"alltoall\" (moebench a2a without --matrix)");
  }
  if (sweep.gpus() < 2) {
    return InputError(Location{path}, "gpus", std::to_string(sweep.gpus()),
                      "an all-to-all needs another rank", ">= 2");
  }
  if (sweep.rows_size() == 0) return InputError(Location{path}, "rows", "none", "nothing measured");
  std::vector<Observation> out;
  const double n = sweep.gpus();
  for (int i = 0; i < sweep.rows_size(); ++i) {
    const pb::CollectiveRow& row = sweep.rows(i);
    const std::string where =
        path + ": rows[" + std::to_string(i) + "] (" + std::to_string(row.size_bytes()) + " B)";
    if (!(row.time_us() > 0)) {
      return InputError(Location{path}, "rows[" + std::to_string(i) + "].time_us",
                        std::to_string(row.time_us()), "a measured time must be", "> 0");
    }
    const double s = static_cast<double>(row.size_bytes());
    const double off = s * (n - 1) / n;
    out.push_back({Observation::Kind::kAllToAll, off, off, 2 * s, link_class, "alltoall",
                   row.time_us() * 1e3, where});
  }
  return out;
}

bool IsGemmSweep(const pb::Result& result) {
  for (const pb::Phase& p : result.phases()) {
    if (p.name() != "gemm") return false;
  }
  return true;
}

Status CheckSameScenario(const MeasuredFile& measured, const LoadedScenario& scenario) {
  const pb::Result& r = measured.result;
  const models::Workload& w = scenario.workload;
  const std::string both =
      " (measured " + measured.path + ", scenario " + scenario.file.path() + ")";
  if (r.scenario() != w.name) {
    return InputError(Location{measured.path}, "scenario", "\"" + r.scenario() + "\"",
                      "the measurement is of another scenario" + both,
                      "\"" + w.name + "\", the scenario's name");
  }
  if (r.gpus() != w.plan.world()) {
    return InputError(Location{measured.path}, "gpus", std::to_string(r.gpus()),
                      "the scenario runs on another GPU count" + both,
                      std::to_string(w.plan.world()));
  }
  for (const models::LayerWork& layer : w.layers) {
    const pb::SendMatrix* found = nullptr;
    for (const pb::SendMatrix& m : r.send_matrices()) {
      if (m.phase() == "dispatch" && m.layer() == layer.layer) found = &m;
    }
    models::TrafficMatrix tokens;
    if (found == nullptr || !MatrixOf(*found, w.plan.world(), &tokens) ||
        tokens != layer.dispatch_tokens) {
      return InputError(Location{measured.path},
                        "send_matrices (dispatch, layer " + std::to_string(layer.layer) + ")",
                        found == nullptr ? "absent" : "other tokens",
                        "the measured routing is not the scenario's" + both,
                        "the scenario's send matrix (same routing, seed and tokens)");
    }
  }
  return Status::Ok();
}

StatusOr<std::vector<Observation>> ObservationsOf(const MeasuredFile& measured,
                                                  const LoadedScenario* scenario) {
  const pb::Result& r = measured.result;
  std::vector<Observation> out;
  if (IsGemmSweep(r)) {
    for (int i = 0; i < r.phases_size(); ++i) {
      const ExpertWork work = ExpertWorkOf(r.phases(i).gemm_shape());
      out.push_back({Observation::Kind::kExpert, work.flops, work.active, 0, "", "",
                     static_cast<double>(r.phases(i).time_ns()),
                     measured.path + ": " + PhaseName(r, i)});
    }
    return out;
  }
  if (scenario == nullptr) {
    return InputError(Location{measured.path}, "scenario", "\"" + r.scenario() + "\"",
                      "a scenario run needs its scenario file to be fitted",
                      "pass it with --scenario FILE");
  }
  const models::Workload& w = scenario->workload;
  const pb::ModelSpec model = ModelAsMeasured(w.model, r);
  const uint64_t token_bytes = models::TokenBytes(model).value;
  for (int i = 0; i < r.phases_size(); ++i) {
    const pb::Phase& p = r.phases(i);
    const models::LayerWork* layer = nullptr;
    for (const models::LayerWork& l : w.layers) {
      if (l.layer == p.layer()) layer = &l;
    }
    if (layer == nullptr) {
      return InputError(Location{measured.path}, PhaseName(r, i) + ".layer",
                        std::to_string(p.layer()), "the scenario has no such layer");
    }
    const std::string where = measured.path + ": " + PhaseName(r, i);
    if (p.name() == "dispatch" || p.name() == "combine") {
      const models::TrafficMatrix tokens =
          p.name() == "dispatch" ? layer->dispatch_tokens : layer->dispatch_tokens.Transposed();
      auto link_class = AllToAllLinkClass(scenario->cluster, tokens);
      if (!link_class.ok()) return Error(where + ": " + link_class.error().message());
      // Each rank's own time with its own work; a Result without per-rank times gives its
      // slowest rank's.
      auto add = [&](uint32_t rank, double t, const std::string& source) {
        const AllToAllWork work = AllToAllWorkOf(tokens, token_bytes, rank);
        if (work.local == 0) return;  // a rank with no rows to move: not in the model
        out.push_back({Observation::Kind::kAllToAll, work.sent_off, work.received_off, work.local,
                       *link_class, p.name(), t, source});
      };
      if (p.rank_time_ns_size() == 0) {
        if (p.critical_rank() >= tokens.ranks()) {
          return InputError(Location{measured.path}, PhaseName(r, i) + ".critical_rank",
                            std::to_string(p.critical_rank()), "no such rank",
                            "< " + std::to_string(tokens.ranks()));
        }
        add(p.critical_rank(), static_cast<double>(p.time_ns()), where);
      }
      for (int rank = 0; rank < p.rank_time_ns_size(); ++rank) {
        if (static_cast<uint32_t>(rank) >= tokens.ranks()) {
          return InputError(Location{measured.path}, PhaseName(r, i) + ".rank_time_ns",
                            std::to_string(p.rank_time_ns_size()) + " ranks",
                            "more ranks than the scenario", std::to_string(tokens.ranks()));
        }
        add(rank, static_cast<double>(p.rank_time_ns(rank)),
            where + ", rank " + std::to_string(rank));
      }
      continue;
    }
    const bool router = p.name() == "router";
    if (!router && p.name() != "expert") continue;  // a phase this model does not cover
    if (static_cast<size_t>(p.rank_time_ns_size()) > layer->tokens_in.size() ||
        static_cast<size_t>(p.rank_time_ns_size()) > layer->expert_tokens.size()) {
      return InputError(Location{measured.path}, PhaseName(r, i) + ".rank_time_ns",
                        std::to_string(p.rank_time_ns_size()) + " values",
                        "more ranks than the scenario", std::to_string(layer->tokens_in.size()));
    }
    for (int rank = 0; rank < p.rank_time_ns_size(); ++rank) {
      const std::string source = where + ", rank " + std::to_string(rank);
      const double t = static_cast<double>(p.rank_time_ns(rank));
      if (router) {
        const double bytes =
            static_cast<double>(models::RouterCost(model, layer->tokens_in[rank]).bytes.value);
        out.push_back({Observation::Kind::kRouter, bytes, 0, 0, "", "", t, source});
      } else {
        const ExpertWork work = ExpertWorkOf(model, layer->expert_tokens[rank]);
        out.push_back({Observation::Kind::kExpert, work.flops, work.active, 0, "", "", t, source});
      }
    }
  }
  return out;
}

}  // namespace moesim::sim
