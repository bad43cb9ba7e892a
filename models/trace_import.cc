#include "models/trace_import.h"

#include <google/protobuf/util/json_util.h>

#include <charconv>
#include <climits>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <string_view>

#include "models/npy.h"
#include "models/trace.h"
#include "proto/input_file.h"
#include "proto/trace.pb.h"

namespace moesim::models {
namespace {

std::string At(const std::string& file, uint64_t line) {
  return Location{file}.ToString() + ":" + std::to_string(line);
}

// Creates the output once top_k is known, then writes records.
class Sink {
 public:
  // `source` names the input(s) in the header and in errors.
  Sink(const std::string& format, const std::string& source, const std::string& output,
       const TraceImportOptions& options)
      : format_(format), input_(source), output_(output), options_(options) {}

  // Settles top_k from the input (`where` names the place that gave it).
  Status SetTopK(uint32_t k, const std::string& where) {
    if (options_.top_k.has_value() && *options_.top_k != k) {
      return Error(where + ": top_k = " + std::to_string(k) + " in the input but --top-k " +
                   std::to_string(*options_.top_k) + " was given");
    }
    if (writer_.has_value()) {
      if (writer_->header().top_k() == k) return Status::Ok();
      return Error(where + ": top_k = " + std::to_string(k) + " differs from " +
                   std::to_string(writer_->header().top_k()) + " earlier in the input");
    }
    pb::TraceHeader header;
    header.set_num_experts(options_.num_experts);
    header.set_top_k(k);
    header.set_model(options_.model);
    header.set_num_layers(options_.num_layers);
    header.set_num_ranks(options_.num_ranks);
    // Escaped: a proto3 string must be UTF-8, and a file name need not be.
    header.set_source(format_ + ": " + Printable(input_, std::string::npos));
    header.set_token_order(format_ == "megatron-jsonl" ? "as listed in each line's top_indices"
                                                       : "as the rows of the input");
    MOESIM_ASSIGN_OR_RETURN(TraceWriter w, TraceWriter::Create(output_, std::move(header)));
    writer_.emplace(std::move(w));
    return Status::Ok();
  }
  uint32_t top_k() const { return writer_.has_value() ? writer_->header().top_k() : 0; }
  uint64_t tokens() const { return tokens_; }

  // Checks `record` against the header (CheckTraceRecord), so that an error names the input's
  // line (`where`) rather than the output's record.
  Status Check(const pb::TraceRecord& record, const std::string& where) const {
    return CheckTraceRecord(writer_->header(), record, where);
  }

  Status Write(const pb::TraceRecord& record) {
    tokens_ += record.tokens();
    return writer_->Write(record);
  }

  StatusOr<TraceImportSummary> Finish(const std::string& empty_problem) {
    if (!writer_.has_value()) return Error(input_ + ": " + empty_problem);
    const uint64_t records = writer_->records_written();
    MOESIM_RETURN_IF_ERROR(writer_->Close());
    return TraceImportSummary{top_k(), tokens_, records};
  }

 private:
  std::string format_, input_, output_;
  TraceImportOptions options_;
  std::optional<TraceWriter> writer_;
  uint64_t tokens_ = 0;
};

Status CheckId(uint64_t id, uint32_t experts, const std::string& where) {
  if (id >= experts) {
    return Error(where + ": expert id " + std::to_string(id) + " out of range; valid: 0.." +
                 std::to_string(experts - 1) + " (num_experts " + std::to_string(experts) + ")");
  }
  return Status::Ok();
}

// A JSON number that must be an expert id: integral, >= 0.
StatusOr<uint64_t> JsonId(const google::protobuf::Value& v, const std::string& where) {
  if (v.kind_case() != google::protobuf::Value::kNumberValue || v.number_value() < 0 ||
      v.number_value() != std::floor(v.number_value()) || v.number_value() > 4294967295.0) {
    return Error(where +
                 ": top_indices holds a value that is not an expert id (a non-negative "
                 "integer)");
  }
  return static_cast<uint64_t>(v.number_value());
}

// protobuf's JSON parser's complaint, on one line: its first line (the rest repeats the input),
// escaped and cut.
std::string JsonComplaint(std::string_view message) {
  return Printable(message.substr(0, message.find('\n')), 200);
}

Status ImportJsonl(const std::string& input, Sink& sink, const TraceImportOptions& options) {
  MOESIM_RETURN_IF_ERROR(CheckRegularFile(input));
  std::ifstream in(input, std::ios::binary);
  if (!in) return Error(input + ": cannot open: " + std::strerror(errno));
  google::protobuf::util::JsonParseOptions json;
  json.ignore_unknown_fields = true;  // Megatron versions add fields; we need only these
  pb::MegatronRouterLine line;
  pb::TraceRecord record;
  std::string text;
  for (uint64_t number = 1;; ++number) {
    const Location here{input, static_cast<int>(std::min<uint64_t>(number, INT_MAX)), 0};
    MOESIM_ASSIGN_OR_RETURN(const bool got, ReadLine(in, &text, here));
    if (!got) break;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = At(input, number);
    // Depth first: protobuf's parser takes time that grows much faster than the nesting.
    MOESIM_RETURN_IF_ERROR(CheckJsonDepth(text, Location{input, here.line, 1}));
    line.Clear();
    const auto status = google::protobuf::util::JsonStringToMessage(text, &line, json);
    if (!status.ok()) {
      return Error(where +
                   ": not a router trace line: " + JsonComplaint(std::string(status.message())));
    }
    const char* missing = !line.has_step()          ? "step"
                          : !line.has_layer()       ? "layer"
                          : !line.has_rank()        ? "rank"
                          : !line.has_num_tokens()  ? "num_tokens"
                          : !line.has_topk()        ? "topk"
                          : !line.has_top_indices() ? "top_indices"
                                                    : nullptr;
    if (missing != nullptr) {
      return Error(where + ": missing field " + missing +
                   "; a line needs step, layer, rank, num_tokens, topk, top_indices");
    }
    if (line.topk() == 0) return Error(where + ": topk = 0; valid: >= 1");
    MOESIM_RETURN_IF_ERROR(sink.SetTopK(line.topk(), where));
    const uint64_t k = line.topk();
    record.Clear();
    record.set_step(line.step());
    record.set_layer(line.layer());
    record.set_rank(line.rank());
    record.set_tokens(line.num_tokens());
    for (const google::protobuf::Value& v : line.top_indices().values()) {
      if (v.kind_case() == google::protobuf::Value::kListValue) {
        if (static_cast<uint64_t>(v.list_value().values_size()) != k) {
          return Error(where + ": token " + std::to_string(record.experts_size() / k) + " has " +
                       std::to_string(v.list_value().values_size()) +
                       " expert ids; topk = " + std::to_string(k));
        }
        for (const google::protobuf::Value& id : v.list_value().values()) {
          MOESIM_ASSIGN_OR_RETURN(const uint64_t e, JsonId(id, where));
          MOESIM_RETURN_IF_ERROR(CheckId(e, options.num_experts, where));
          record.add_experts(static_cast<uint32_t>(e));
        }
      } else {
        MOESIM_ASSIGN_OR_RETURN(const uint64_t e, JsonId(v, where));
        MOESIM_RETURN_IF_ERROR(CheckId(e, options.num_experts, where));
        record.add_experts(static_cast<uint32_t>(e));
      }
    }
    if (static_cast<uint64_t>(record.experts_size()) != line.num_tokens() * k) {
      return Error(where + ": top_indices holds " + std::to_string(record.experts_size()) +
                   " expert ids; num_tokens x topk = " + std::to_string(line.num_tokens()) + " x " +
                   std::to_string(k) + " = " + std::to_string(line.num_tokens() * k));
    }
    MOESIM_RETURN_IF_ERROR(sink.Check(record, where));
    if (line.has_top_scores()) {
      for (const google::protobuf::Value& v : line.top_scores().values()) {
        if (v.kind_case() == google::protobuf::Value::kListValue) {
          for (const google::protobuf::Value& w : v.list_value().values()) {
            record.add_weights(static_cast<float>(w.number_value()));
          }
        } else {
          record.add_weights(static_cast<float>(v.number_value()));
        }
      }
      if (record.weights_size() != record.experts_size()) {
        return Error(where + ": top_scores holds " + std::to_string(record.weights_size()) +
                     " values for " + std::to_string(record.experts_size()) + " expert ids");
      }
    }
    MOESIM_RETURN_IF_ERROR(sink.Write(record));
  }
  return Status::Ok();
}

// Appends the tokens of `ids` (whole tokens) to `record`, flushing full records.
class Chunker {
 public:
  Chunker(Sink& sink, const TraceImportOptions& options) : sink_(sink), options_(options) {}
  Status Add(uint32_t id) {
    record_.add_experts(id);
    if (static_cast<uint64_t>(record_.experts_size()) ==
        options_.tokens_per_record * sink_.top_k()) {
      return Flush();
    }
    return Status::Ok();
  }
  Status Flush() {
    if (record_.experts_size() == 0) return Status::Ok();
    record_.set_step(options_.step);
    record_.set_layer(options_.layer);
    record_.set_rank(options_.rank);
    record_.set_tokens(record_.experts_size() / sink_.top_k());
    MOESIM_RETURN_IF_ERROR(sink_.Write(record_));
    record_.Clear();
    return Status::Ok();
  }

 private:
  Sink& sink_;
  const TraceImportOptions& options_;
  pb::TraceRecord record_;
};

Status ImportCsv(const std::string& input, Sink& sink, const TraceImportOptions& options) {
  MOESIM_RETURN_IF_ERROR(CheckRegularFile(input));
  std::ifstream in(input, std::ios::binary);
  if (!in) return Error(input + ": cannot open: " + std::strerror(errno));
  Chunker chunker(sink, options);
  std::string text;
  std::vector<uint32_t> ids;
  bool first = true;
  for (uint64_t number = 1;; ++number) {
    const Location here{input, static_cast<int>(std::min<uint64_t>(number, INT_MAX)), 0};
    MOESIM_ASSIGN_OR_RETURN(const bool got, ReadLine(in, &text, here));
    if (!got) break;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = At(input, number);
    ids.clear();
    size_t pos = 0;
    bool header = false;
    for (int column = 1;; ++column) {
      const size_t comma = std::min(text.find(',', pos), text.size());
      std::string_view cell(text.data() + pos, comma - pos);
      while (!cell.empty() && (cell.front() == ' ' || cell.front() == '\t')) cell.remove_prefix(1);
      while (!cell.empty() && (cell.back() == ' ' || cell.back() == '\t')) cell.remove_suffix(1);
      uint64_t value = 0;
      const auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
      if (ec != std::errc() || end != cell.data() + cell.size() || cell.empty()) {
        if (first) {
          header = true;  // a header line such as "e0,e1,..."
          break;
        }
        return Error(where + ":" + std::to_string(pos + 1) + ": column " + std::to_string(column) +
                     " = \"" + Printable(cell) + "\" is not an expert id (a non-negative integer)");
      }
      MOESIM_RETURN_IF_ERROR(
          CheckId(value, options.num_experts, where + ":" + std::to_string(pos + 1)));
      ids.push_back(static_cast<uint32_t>(value));
      if (comma == text.size()) break;
      pos = comma + 1;
    }
    first = false;
    if (header) continue;
    MOESIM_RETURN_IF_ERROR(sink.SetTopK(static_cast<uint32_t>(ids.size()), where));
    if (ids.size() != sink.top_k()) {
      return Error(where + ": " + std::to_string(ids.size()) + " expert ids; every line needs " +
                   std::to_string(sink.top_k()) + " (top_k)");
    }
    for (uint32_t id : ids) MOESIM_RETURN_IF_ERROR(chunker.Add(id));
  }
  if (sink.top_k() > 0) MOESIM_RETURN_IF_ERROR(chunker.Flush());
  return Status::Ok();
}

// ---- .npy (models/npy.h) ----

Status ImportNpy(const std::string& input, Sink& sink, const TraceImportOptions& options) {
  MOESIM_ASSIGN_OR_RETURN(NpyFile f, OpenNpy(input, /*allow_float=*/false));
  const NpyHeader& h = f.header;
  const uint64_t count = f.count;
  std::ifstream& in = f.in;
  if (h.columns > options.num_experts) {
    return Error(input + ": .npy shape[1] = " + std::to_string(h.columns) +
                 " (top_k) exceeds the " + std::to_string(options.num_experts) +
                 " experts; expected shape [tokens, top_k]");
  }
  MOESIM_RETURN_IF_ERROR(sink.SetTopK(static_cast<uint32_t>(h.columns), input + ": shape[1]"));
  Chunker chunker(sink, options);
  std::vector<unsigned char> buffer;
  const uint64_t per_read = 1 << 16;  // values per read
  for (uint64_t done = 0; done < count;) {
    const uint64_t n = std::min(per_read, count - done);
    buffer.resize(n * h.itemsize);
    if (!in.read(reinterpret_cast<char*>(buffer.data()),
                 static_cast<std::streamsize>(buffer.size()))) {
      return Error(input + ": cannot read the .npy data at value " + std::to_string(done));
    }
    for (uint64_t i = 0; i < n; ++i) {
      const unsigned char* p = buffer.data() + i * h.itemsize;
      uint64_t raw = 0;
      for (size_t b = 0; b < h.itemsize; ++b) raw |= static_cast<uint64_t>(p[b]) << (8 * b);
      const bool negative = h.kind == 'i' && (p[h.itemsize - 1] & 0x80) != 0;
      const uint64_t index = done + i;
      if (negative || raw >= options.num_experts) {
        const std::string where = input + ": element [" + std::to_string(index / h.columns) + ", " +
                                  std::to_string(index % h.columns) + "]";
        if (negative) return Error(where + " is negative; expert ids are >= 0");
        MOESIM_RETURN_IF_ERROR(CheckId(raw, options.num_experts, where));
      }
      MOESIM_RETURN_IF_ERROR(chunker.Add(static_cast<uint32_t>(raw)));
    }
    done += n;
  }
  return chunker.Flush();
}

// What an input without tokens lacks, by format (Sink::Finish's message).
const char* NothingRead(const std::string& format) {
  return format == "megatron-jsonl" ? "no router trace lines"
         : format == "csv"          ? "no tokens (no line of expert ids)"
                                    : "no tokens";
}

// The checks every import makes before it reads anything.
Status CheckImport(const std::string& format, const std::string& output,
                   const TraceImportOptions& options) {
  if (options.num_experts == 0) {
    return Error("trace import: the number of experts is needed (--experts E or --model NAME)");
  }
  if (options.tokens_per_record == 0) return Error("trace import: tokens_per_record must be >= 1");
  if (format != "megatron-jsonl" && format != "csv" && format != "npy") {
    return InputError(Location{}, "format", format, "unknown trace format",
                      Join(TraceImportFormats()));
  }
  return CheckOutputPath(output, "--output");
}

// CSV and .npy: every record at the input's layer and rank, which must fit the format.
Status CheckCell(const TraceImportInput& input, const std::string& where) {
  pb::TraceRecord cell;
  cell.set_layer(input.layer);
  cell.set_rank(input.rank);
  pb::TraceHeader header;
  header.set_num_experts(1);
  header.set_top_k(1);
  return CheckTraceRecord(header, cell, where);
}

Status ImportOne(const std::string& format, const std::string& input, Sink& sink,
                 const TraceImportOptions& options) {
  return format == "megatron-jsonl" ? ImportJsonl(input, sink, options)
         : format == "csv"          ? ImportCsv(input, sink, options)
                                    : ImportNpy(input, sink, options);
}

}  // namespace

std::vector<std::string> TraceImportFormats() { return {"megatron-jsonl", "csv", "npy"}; }

StatusOr<TraceImportSummary> ImportTrace(const std::string& format, const std::string& input,
                                         const std::string& output,
                                         const TraceImportOptions& options) {
  MOESIM_RETURN_IF_ERROR(CheckImport(format, output, options));
  if (format != "megatron-jsonl") {
    MOESIM_RETURN_IF_ERROR(CheckCell({input, options.step, options.layer, options.rank},
                                     "trace import: --layer/--rank"));
  }
  // A failed import leaves no trace behind: the writer's temporary file is removed with the Sink.
  Sink sink(format, input, output, options);
  MOESIM_RETURN_IF_ERROR(ImportOne(format, input, sink, options));
  return sink.Finish(NothingRead(format));
}

StatusOr<TraceImportSummary> ImportTraceFiles(const std::string& format,
                                              const std::vector<TraceImportInput>& inputs,
                                              const std::string& source, const std::string& output,
                                              const TraceImportOptions& options) {
  MOESIM_RETURN_IF_ERROR(CheckImport(format, output, options));
  if (inputs.empty()) return Error("trace import: no input file");
  Sink sink(format, source, output, options);
  for (const TraceImportInput& input : inputs) {
    TraceImportOptions cell = options;
    cell.step = input.step;
    cell.layer = input.layer;
    cell.rank = input.rank;
    if (format != "megatron-jsonl") MOESIM_RETURN_IF_ERROR(CheckCell(input, input.path));
    const uint64_t before = sink.tokens();
    MOESIM_RETURN_IF_ERROR(ImportOne(format, input.path, sink, cell));
    if (sink.tokens() == before) return Error(input.path + ": " + NothingRead(format));
  }
  return sink.Finish(NothingRead(format));
}

}  // namespace moesim::models
