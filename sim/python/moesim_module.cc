// moesim._moesim: the compiled half of `import moesim` (sim/python/moesim/__init__.py is the
// other). It runs what the command line runs, in the Python process, and hands back text or
// arrays; the Python half turns them into dicts and DataFrames.
//
//   status, out, err = _moesim.run(["simulate", "seed.pbtxt", "--json"])   # as `moesim ...`
//   status, out, err = _moesim.simulate_text(text, "<string>", "analytical")
//   json_text = _moesim.read_result("seed.json")        # ValueError: moesim report's message
//   trace = _moesim.read_trace("t.moetrace")            # dict of numpy arrays
//
// Nothing here re-implements a command: run() is RunMoesim (sim/cli/cli.h), so output and error
// messages are the command's, byte for byte. The GIL is released while moesim works (plan search
// runs on every core). Errors from read_result and read_trace raise ValueError with the message
// the command line prints after "moesim: error: ".
#include <google/protobuf/descriptor.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "models/trace.h"
#include "proto/plan.pb.h"
#include "proto/result.pb.h"
#include "proto/serialize.h"
#include "proto/trace.pb.h"
#include "sim/cli/cli.h"
#include "sim/report/result_file.h"

namespace py = pybind11;

namespace moesim::sim {
namespace {

// (exit status, stdout, stderr) as bytes: the Python half decodes them.
py::tuple Outcome(int status, const std::ostringstream& out, const std::ostringstream& err) {
  return py::make_tuple(status, py::bytes(out.str()), py::bytes(err.str()));
}

py::tuple Run(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  int status = 0;
  {
    py::gil_scoped_release unlocked;
    status = RunMoesim(args, out, err);
  }
  return Outcome(status, out, err);
}

py::tuple SimulateText(const std::string& text, const std::string& name,
                       const std::string& fidelity) {
  std::ostringstream out, err;
  int status = 0;
  {
    py::gil_scoped_release unlocked;
    status = SimulateScenarioText(text, name, fidelity, out, err);
  }
  return Outcome(status, out, err);
}

template <typename T>
T ValueOrRaise(StatusOr<T> v) {
  if (!v.ok()) throw py::value_error(v.error().message());
  return std::move(*v);
}

// The Result in `path` as --json prints it (a plan table in a .json file is refused by name).
std::string ReadResult(const std::string& path) {
  ResultFile file;
  {
    py::gil_scoped_release unlocked;
    file = ValueOrRaise(ReadResultFile(path));
  }
  if (const pb::StepResult* step = std::get_if<pb::StepResult>(&file)) {
    return ValueOrRaise(DeterministicJson(*step));
  }
  if (std::holds_alternative<pb::PlanTable>(file)) {
    throw py::value_error(path +
                          ": a plan table (`moesim plan --json`), not a Result; valid: what "
                          "`moesim simulate --json` prints, or a binary Result");
  }
  return ValueOrRaise(DeterministicJson(std::get<pb::Result>(file)));
}

template <typename T>
py::array_t<T> Array(const std::vector<T>& values, std::vector<py::ssize_t> shape) {
  py::array_t<T> a(shape);
  if (!values.empty()) std::memcpy(a.mutable_data(), values.data(), values.size() * sizeof(T));
  return a;
}

// Every token of the trace in file order: its step, layer, rank and top-k expert ids (and router
// weights when every record has them), and the per-layer expert counts `moesim trace stats` prints
// (models::CountTrace).
py::dict ReadTrace(const std::string& path) {
  std::vector<uint64_t> steps;
  std::vector<uint32_t> layers, ranks, experts;
  std::vector<float> weights;
  bool weighted = true;
  models::TraceCounts counted;
  pb::TraceHeader header;
  {
    py::gil_scoped_release unlocked;
    models::TraceReader reader = ValueOrRaise(models::TraceReader::Open(path));
    header = reader.header();
    pb::TraceRecord record;
    while (ValueOrRaise(reader.Next(&record))) {
      steps.insert(steps.end(), record.tokens(), record.step());
      layers.insert(layers.end(), record.tokens(), record.layer());
      ranks.insert(ranks.end(), record.tokens(), record.rank());
      experts.insert(experts.end(), record.experts().begin(), record.experts().end());
      weighted = weighted && record.weights_size() == record.experts_size();
      if (weighted) weights.insert(weights.end(), record.weights().begin(), record.weights().end());
    }
    counted = ValueOrRaise(models::CountTrace(path));
  }
  const auto tokens = static_cast<py::ssize_t>(steps.size());
  const auto top_k = static_cast<py::ssize_t>(header.top_k());
  // counts[layer][expert]; a layer no record names is a row of zeros.
  const size_t num_experts = header.num_experts();
  std::vector<uint64_t> counts(counted.counts.size() * num_experts, 0);
  for (size_t layer = 0; layer < counted.counts.size(); ++layer) {
    std::copy(counted.counts[layer].begin(), counted.counts[layer].end(),
              counts.begin() + static_cast<std::ptrdiff_t>(layer * num_experts));
  }
  py::dict d;
  d["header"] = py::bytes(ValueOrRaise(DeterministicJson(header)));
  d["step"] = Array(steps, {tokens});
  d["layer"] = Array(layers, {tokens});
  d["rank"] = Array(ranks, {tokens});
  d["experts"] = Array(experts, {tokens, top_k});
  if (weighted && tokens > 0) {
    d["weights"] = Array(weights, {tokens, top_k});
  } else {
    d["weights"] = py::none();
  }
  d["counts"] = Array(counts, {static_cast<py::ssize_t>(counted.counts.size()),
                               static_cast<py::ssize_t>(num_experts)});
  return d;
}

// The JSON names of every 64-bit integer field of moesim's schema (every message of the files that
// define what --json prints, and of the files they import): protobuf's JSON writes those as strings
// ("totalNs": "212940"), which the Python half turns back into ints.
void Add64BitFields(const google::protobuf::Descriptor* d, std::set<std::string>& names) {
  for (int i = 0; i < d->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = d->field(i);
    if (f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_INT64 ||
        f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_UINT64) {
      names.insert(f->json_name());
    }
  }
  for (int i = 0; i < d->nested_type_count(); ++i) Add64BitFields(d->nested_type(i), names);
}

void Add64BitFields(const google::protobuf::FileDescriptor* file,
                    std::set<const google::protobuf::FileDescriptor*>& seen,
                    std::set<std::string>& names) {
  if (!seen.insert(file).second) return;
  for (int i = 0; i < file->message_type_count(); ++i) Add64BitFields(file->message_type(i), names);
  for (int i = 0; i < file->dependency_count(); ++i)
    Add64BitFields(file->dependency(i), seen, names);
}

std::set<std::string> JsonInt64Fields() {
  std::set<const google::protobuf::FileDescriptor*> seen;
  std::set<std::string> names;
  for (const google::protobuf::Descriptor* root :
       {pb::Result::descriptor(), pb::PlanTable::descriptor(), pb::StepResult::descriptor(),
        pb::TraceStats::descriptor()}) {
    Add64BitFields(root->file(), seen, names);
  }
  return names;
}

}  // namespace
}  // namespace moesim::sim

PYBIND11_MODULE(_moesim, m) {
  m.doc() = "moesim's compiled half; use the moesim package (sim/python/moesim/__init__.py)";
  m.def("run", &moesim::sim::Run, "(status, stdout, stderr) of `moesim ARGS...` run in-process");
  m.def("simulate_text", &moesim::sim::SimulateText,
        "(status, stdout, stderr) of `moesim simulate --json` on scenario text");
  m.def("read_result", &moesim::sim::ReadResult, "a Result file as --json prints it");
  m.def("read_trace", &moesim::sim::ReadTrace, "a routing trace as numpy arrays");
  m.def("json_int64_fields", &moesim::sim::JsonInt64Fields,
        "JSON names of the 64-bit integer fields (written as strings)");
}
