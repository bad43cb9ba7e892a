#include "models/trace_merge.h"

#include <algorithm>
#include <limits>
#include <map>
#include <tuple>

#include "models/trace.h"

namespace moesim::models {
namespace {

const char* AxisName(TraceAxis axis) {
  return axis == TraceAxis::kStep ? "step" : axis == TraceAxis::kLayer ? "layer" : "rank";
}

using MergeCell = std::tuple<uint64_t, uint32_t, uint32_t>;  // (step, layer, rank)

// Steps shifted along `--along step` stay below this, so that no sum of steps and extents wraps.
constexpr uint64_t kMergeStepLimit = std::numeric_limits<uint64_t>::max() / 2;

// The headers must describe the same routing problem: `first` is the first input's.
Status CheckSameShape(const pb::TraceHeader& first, const std::string& first_file,
                      const pb::TraceHeader& other, const std::string& other_file) {
  auto differ = [&](const char* field, const std::string& a, const std::string& b) {
    return Error(other_file + ": header." + field + " = " + b + " but " + first_file + " has " + a +
                 "; traces merge only when they agree on num_experts, top_k and the model");
  };
  if (first.num_experts() != other.num_experts()) {
    return differ("num_experts", std::to_string(first.num_experts()),
                  std::to_string(other.num_experts()));
  }
  if (first.top_k() != other.top_k()) {
    return differ("top_k", std::to_string(first.top_k()), std::to_string(other.top_k()));
  }
  if (!first.model().empty() && !other.model().empty() && first.model() != other.model()) {
    return differ("model", "\"" + Printable(first.model()) + "\"",
                  "\"" + Printable(other.model()) + "\"");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<TraceAxis> ParseTraceAxis(const std::string& text) {
  for (TraceAxis axis : {TraceAxis::kStep, TraceAxis::kLayer, TraceAxis::kRank}) {
    if (text == AxisName(axis)) return axis;
  }
  return InputError(Location{}, "--along", text, "unknown axis", "step, layer, rank");
}

StatusOr<TraceMergeSummary> MergeTraces(const std::vector<std::string>& inputs,
                                        const std::string& output,
                                        const TraceMergeOptions& options) {
  if (inputs.size() < 2) {
    return Error("trace merge: " + std::to_string(inputs.size()) +
                 " input(s); merging needs at least two traces");
  }
  MOESIM_RETURN_IF_ERROR(CheckOutputPath(output, "--output"));
  // Headers first, one file open at a time: a mismatch is found before anything is written.
  pb::TraceHeader header;
  for (const std::string& input : inputs) {
    MOESIM_ASSIGN_OR_RETURN(const TraceReader reader, TraceReader::Open(input));
    if (&input == &inputs.front()) {
      header = reader.header();
      continue;
    }
    MOESIM_RETURN_IF_ERROR(CheckSameShape(header, inputs.front(), reader.header(), input));
    if (header.model().empty()) header.set_model(reader.header().model());
  }
  std::string source = "moesim trace merge";
  if (options.along) source += std::string(" --along ") + AxisName(*options.along);
  source += " of " + std::to_string(inputs.size()) + " traces: " + Printable(inputs.front()) +
            " (" + Printable(header.source(), std::string::npos) + ") .. " +
            Printable(inputs.back());
  header.set_source(source);
  header.set_num_layers(0);  // the merged extents are known only at the end: not stated
  header.set_num_ranks(0);
  MOESIM_ASSIGN_OR_RETURN(TraceWriter writer, TraceWriter::Create(output, header));

  TraceMergeSummary summary;
  std::map<MergeCell, size_t> owner;  // which input a cell came from
  uint64_t offset = 0;                // along `options.along`: the extents of the inputs before
  pb::TraceRecord record;
  for (size_t i = 0; i < inputs.size(); ++i) {
    MOESIM_ASSIGN_OR_RETURN(TraceReader reader, TraceReader::Open(inputs[i]));
    const pb::TraceHeader& h = reader.header();
    uint64_t extent = 0;  // 1 + the largest index along the axis (at least the header's count)
    if (options.along == TraceAxis::kLayer) extent = h.num_layers();
    if (options.along == TraceAxis::kRank) extent = h.num_ranks();
    for (;;) {
      const uint64_t index = reader.records_read();
      MOESIM_ASSIGN_OR_RETURN(const bool got, reader.Next(&record));
      if (!got) break;
      const std::string at = inputs[i] + ": record " + std::to_string(index);
      if (options.along) {
        const uint64_t own = *options.along == TraceAxis::kStep    ? record.step()
                             : *options.along == TraceAxis::kLayer ? record.layer()
                                                                   : record.rank();
        const uint64_t limit = *options.along == TraceAxis::kStep    ? kMergeStepLimit
                               : *options.along == TraceAxis::kLayer ? kMaxTraceLayers
                                                                     : kMaxTraceRanks;
        // own < limit (the reader's checks; steps below), so neither sum can wrap.
        if (own >= limit || offset + own >= limit) {
          return Error(at + ": " + AxisName(*options.along) + " " + std::to_string(own) +
                       " shifted by " + std::to_string(offset) +
                       " (the inputs before it) passes the trace format's limit of " +
                       std::to_string(limit));
        }
        extent = std::max(extent, own + 1);
        if (*options.along == TraceAxis::kStep) record.set_step(offset + own);
        if (*options.along == TraceAxis::kLayer)
          record.set_layer(static_cast<uint32_t>(offset + own));
        if (*options.along == TraceAxis::kRank)
          record.set_rank(static_cast<uint32_t>(offset + own));
      }
      const MergeCell cell{record.step(), record.layer(), record.rank()};
      const auto [it, fresh] = owner.emplace(cell, i);
      if (!fresh && it->second != i) {
        return Error(at + ": step " + std::to_string(record.step()) + ", layer " +
                     std::to_string(record.layer()) + ", rank " + std::to_string(record.rank()) +
                     " is also in " + inputs[it->second] +
                     "; merged traces may not overlap (--along step, layer or rank shifts each "
                     "input past the ones before it)");
      }
      MOESIM_RETURN_IF_ERROR(writer.Write(record));
      ++summary.records;
      summary.tokens += record.tokens();
      summary.layers = std::max(summary.layers, record.layer() + 1);
      summary.ranks = std::max(summary.ranks, record.rank() + 1);
      summary.max_step = std::max(summary.max_step, record.step());
    }
    offset += extent;
  }
  MOESIM_RETURN_IF_ERROR(writer.Close());
  return summary;
}

}  // namespace moesim::models
