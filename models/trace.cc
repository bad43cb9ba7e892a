#include "models/trace.h"

#include <fcntl.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/util/delimited_message_util.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "models/routing.h"
#include "proto/input_file.h"
#include "proto/protobuf_log.h"

namespace moesim::models {
namespace {

Error TraceError(const std::string& where, const std::string& problem) {
  return Error(where + ": " + problem);
}

std::string RecordWhere(const std::string& file, uint64_t index, uint64_t offset) {
  return file + ": record " + std::to_string(index) + " (byte " + std::to_string(offset) + ")";
}

// "layer = 7: beyond the header's num_layers = 4; valid: 0..3" when `index` >= the header's
// `stated` count, or the format's `limit` when none is stated; empty when the index fits.
std::string IndexProblem(const char* field, uint32_t index, uint32_t stated, uint32_t limit,
                         const char* limit_name) {
  const uint32_t count = stated != 0 ? stated : limit;
  if (index < count) return {};
  return std::string(field) + " = " + std::to_string(index) + ": beyond " +
         (stated != 0 ? "the header's num_" + std::string(field) + "s = " + std::to_string(stated)
                      : "the trace format's limit of " + std::to_string(limit) + " " + field +
                            "s (" + limit_name + ")") +
         "; valid: 0.." + std::to_string(count - 1);
}

}  // namespace

Status CheckTraceHeader(const pb::TraceHeader& header, const std::string& file) {
  const Location where{file};
  if (header.format_version() != kTraceFormatVersion) {
    return InputError(where, "header.format_version", std::to_string(header.format_version()),
                      "unknown trace format (not a moesim trace, or a newer one)", "1");
  }
  if (header.num_experts() == 0) {
    return InputError(where, "header.num_experts", "0", "a trace needs experts", ">= 1");
  }
  if (header.num_experts() > kMaxTraceExperts) {
    return InputError(where, "header.num_experts", std::to_string(header.num_experts()),
                      "more experts than a trace may hold",
                      "1.." + std::to_string(kMaxTraceExperts) + " (kMaxTraceExperts)");
  }
  if (header.top_k() == 0 || header.top_k() > header.num_experts()) {
    return InputError(where, "header.top_k", std::to_string(header.top_k()),
                      "each token picks top_k distinct experts",
                      "1.." + std::to_string(header.num_experts()) + " (num_experts)");
  }
  if (header.num_layers() > kMaxTraceLayers) {
    return InputError(
        where, "header.num_layers", std::to_string(header.num_layers()),
        "more layers than a trace may hold",
        "0 (not stated) to " + std::to_string(kMaxTraceLayers) + " (kMaxTraceLayers)");
  }
  if (header.num_ranks() > kMaxTraceRanks) {
    return InputError(where, "header.num_ranks", std::to_string(header.num_ranks()),
                      "more ranks than a trace may hold",
                      "0 (not stated) to " + std::to_string(kMaxTraceRanks) + " (kMaxTraceRanks)");
  }
  return Status::Ok();
}

Status CheckTraceRecord(const pb::TraceHeader& header, const pb::TraceRecord& record,
                        const std::string& where) {
  for (const std::string& problem : {IndexProblem("layer", record.layer(), header.num_layers(),
                                                  kMaxTraceLayers, "kMaxTraceLayers"),
                                     IndexProblem("rank", record.rank(), header.num_ranks(),
                                                  kMaxTraceRanks, "kMaxTraceRanks")}) {
    if (!problem.empty()) return TraceError(where, problem);
  }
  const uint64_t k = header.top_k();
  const uint64_t ids = static_cast<uint64_t>(record.experts_size());
  if (record.tokens() > ids / k || ids != record.tokens() * k) {
    return TraceError(
        where,
        "holds " + std::to_string(ids) +
            " expert ids for tokens = " + std::to_string(record.tokens()) +
            " and top_k = " + std::to_string(k) + "; expected tokens x top_k = " +
            (record.tokens() > ids ? std::string("more") : std::to_string(record.tokens() * k)));
  }
  const uint32_t experts = header.num_experts();
  const uint32_t* id = record.experts().data();
  // The common case in one branch-free pass; positions only when something is wrong.
  uint32_t max_id = 0;
  for (uint64_t i = 0; i < ids; ++i) max_id = std::max(max_id, id[i]);
  if (ids > 0 && max_id >= experts) {
    const uint64_t i = static_cast<uint64_t>(
        std::find_if(id, id + ids, [&](uint32_t e) { return e >= experts; }) - id);
    return TraceError(
        where, "experts[" + std::to_string(i) + "] (token " + std::to_string(i / k) + ", choice " +
                   std::to_string(i % k) + ") = " + std::to_string(id[i]) +
                   ": expert id out of range; valid: 0.." + std::to_string(experts - 1) +
                   " (num_experts " + std::to_string(experts) + ")");
  }
  if (record.weights_size() != 0 && static_cast<uint64_t>(record.weights_size()) != ids) {
    return TraceError(where, "holds " + std::to_string(record.weights_size()) + " weights for " +
                                 std::to_string(ids) + " expert ids; expected none or one per id");
  }
  return Status::Ok();
}

Status CheckTraceMatchesModel(const pb::TraceHeader& header, const std::string& file,
                              const std::string& model, uint32_t num_experts, uint32_t top_k) {
  if (header.top_k() != top_k) {
    return InputError(Location{file}, "header.top_k", std::to_string(header.top_k()),
                      "the trace routes each token to " + std::to_string(header.top_k()) +
                          " experts but model " + model + " uses top-" + std::to_string(top_k),
                      std::to_string(top_k));
  }
  if (header.num_experts() != num_experts) {
    return InputError(Location{file}, "header.num_experts", std::to_string(header.num_experts()),
                      "model " + model + " has " + std::to_string(num_experts) + " experts",
                      std::to_string(num_experts));
  }
  return Status::Ok();
}

// ---- TraceWriter ----

StatusOr<TraceWriter> TraceWriter::Create(const std::string& path, pb::TraceHeader header) {
  if (header.format_version() == 0) header.set_format_version(kTraceFormatVersion);
  MOESIM_RETURN_IF_ERROR(CheckTraceHeader(header, path));
  TraceWriter w;
  w.path_ = path;
  w.header_ = std::move(header);
  MOESIM_ASSIGN_OR_RETURN(AtomicFile file, AtomicFile::Create(path, "the trace file"));
  w.file_ = std::make_unique<AtomicFile>(std::move(file));
  w.out_ = std::make_unique<google::protobuf::io::FileOutputStream>(w.file_->fd());
  if (!google::protobuf::util::SerializeDelimitedToZeroCopyStream(w.header_, w.out_.get())) {
    return w.file_->WriteError(w.out_->GetErrno());
  }
  return w;
}

TraceWriter::TraceWriter(TraceWriter&& other) noexcept { *this = std::move(other); }

TraceWriter& TraceWriter::operator=(TraceWriter&& other) noexcept {
  if (this != &other) {
    out_.reset();  // an unclosed trace being replaced is abandoned, as the destructor does
    file_.reset();
    path_ = std::move(other.path_);
    header_ = std::move(other.header_);
    file_ = std::move(other.file_);
    out_ = std::move(other.out_);
    records_ = other.records_;
  }
  return *this;
}

TraceWriter::~TraceWriter() = default;  // out_ before file_, which removes the temporary file

Status TraceWriter::Write(const pb::TraceRecord& record) {
  if (out_ == nullptr) return Error(path_ + ": trace already closed");
  MOESIM_RETURN_IF_ERROR(
      CheckTraceRecord(header_, record, path_ + ": record " + std::to_string(records_)));
  if (!google::protobuf::util::SerializeDelimitedToZeroCopyStream(record, out_.get())) {
    return Error(file_->WriteError(out_->GetErrno()).message() + " (record " +
                 std::to_string(records_) + ")");
  }
  ++records_;
  return Status::Ok();
}

Status TraceWriter::Close() {
  if (out_ == nullptr) return Status::Ok();
  const bool flushed = out_->Flush();
  const int error = out_->GetErrno();
  out_.reset();
  if (!flushed) {
    const Error failed = file_->WriteError(error);
    file_.reset();
    return failed;
  }
  const Status committed = file_->Commit();
  file_.reset();
  return committed;
}

// ---- TraceReader ----

StatusOr<TraceReader> TraceReader::Open(const std::string& path) {
  MOESIM_RETURN_IF_ERROR(CheckRegularFile(path));
  TraceReader r;
  r.path_ = path;
  r.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (r.fd_ < 0) return Error(path + ": cannot open the trace file: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(r.fd_, &st) != 0) return Error(path + ": cannot stat: " + std::strerror(errno));
  r.file_bytes_ = static_cast<uint64_t>(st.st_size);
  r.in_ = std::make_unique<google::protobuf::io::FileInputStream>(r.fd_);
  r.in_->SetCloseOnDelete(true);
  MOESIM_ASSIGN_OR_RETURN(const bool got, r.ReadMessage(&r.header_, path + ": header"));
  if (!got) return Error(path + ": empty file; a trace starts with a TraceHeader");
  MOESIM_RETURN_IF_ERROR(CheckTraceHeader(r.header_, path));
  return r;
}

TraceReader::TraceReader(TraceReader&& other) noexcept { *this = std::move(other); }

TraceReader& TraceReader::operator=(TraceReader&& other) noexcept {
  if (this != &other) {
    in_ = std::move(other.in_);  // closes our own file, if any
    path_ = std::move(other.path_);
    header_ = std::move(other.header_);
    fd_ = std::exchange(other.fd_, -1);
    file_bytes_ = other.file_bytes_;
    offset_ = other.offset_;
    records_ = other.records_;
  }
  return *this;
}

TraceReader::~TraceReader() = default;  // in_ closes the file

StatusOr<bool> TraceReader::ReadMessage(google::protobuf::Message* message,
                                        const std::string& what) {
  if (offset_ == file_bytes_) return false;
  const std::string where = what + " (byte " + std::to_string(offset_) + ")";
  google::protobuf::io::CodedInputStream coded(in_.get());
  uint32_t size = 0;
  if (!coded.ReadVarint32(&size)) {
    return TraceError(where,
                      "truncated or corrupted: the length prefix is cut off or invalid (file "
                      "is " +
                          std::to_string(file_bytes_) + " bytes)");
  }
  const uint64_t prefix = static_cast<uint64_t>(coded.CurrentPosition());
  const uint64_t remaining = file_bytes_ - offset_ - prefix;
  if (size > remaining) {
    return TraceError(where, "truncated: the record is " + std::to_string(size) +
                                 " bytes long but the file has only " + std::to_string(remaining) +
                                 " left");
  }
  if (size > static_cast<uint32_t>(std::numeric_limits<int>::max())) {
    return TraceError(where, "corrupted: record length " + std::to_string(size) +
                                 " bytes exceeds the 2 GiB protobuf limit");
  }
  const auto limit = coded.PushLimit(static_cast<int>(size));
  ProtobufLogCapture protobuf_says;
  if (!message->ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage()) {
    return TraceError(where, "corrupted: not a valid " + message->GetDescriptor()->name() + " (" +
                                 std::to_string(size) + " bytes)" + protobuf_says.Reason());
  }
  coded.PopLimit(limit);
  offset_ += prefix + size;
  return true;
}

StatusOr<bool> TraceReader::Next(pb::TraceRecord* record) {
  const std::string where = RecordWhere(path_, records_, offset_);
  MOESIM_ASSIGN_OR_RETURN(const bool got,
                          ReadMessage(record, path_ + ": record " + std::to_string(records_)));
  if (!got) return false;
  MOESIM_RETURN_IF_ERROR(CheckTraceRecord(header_, *record, where));
  ++records_;
  return true;
}

// ---- statistics ----

LoadStats ComputeLoadStats(std::span<const uint64_t> counts, uint64_t tokens, uint32_t ep) {
  LoadStats s;
  s.tokens = tokens;
  if (counts.empty()) return s;
  uint64_t max_count = 0;
  uint64_t min_count = counts.front();
  for (uint64_t c : counts) {
    s.selections += c;
    max_count = std::max(max_count, c);
    min_count = std::min(min_count, c);
    if (c == 0) ++s.idle_experts;
  }
  s.min_load = min_count;
  s.max_load = max_count;
  const double e = static_cast<double>(counts.size());
  const double total = static_cast<double>(s.selections);
  if (s.selections > 0) {
    const double mean = total / e;
    double squares = 0;
    for (uint64_t c : counts) {
      const double d = static_cast<double>(c) - mean;
      squares += d * d;
      if (c > 0) {
        const double p = static_cast<double>(c) / total;
        s.entropy_bits -= p * std::log2(p);
      }
    }
    s.mean_load = mean;
    s.min_over_mean = static_cast<double>(min_count) / mean;
    s.max_over_mean = static_cast<double>(max_count) / mean;
    s.cv = std::sqrt(squares / e) / mean;
  }
  if (ep > 0 && counts.size() % ep == 0) {
    const size_t per_rank = counts.size() / ep;
    s.ep_loads.assign(ep, 0);
    for (size_t i = 0; i < counts.size(); ++i) s.ep_loads[i / per_rank] += counts[i];
  }
  return s;
}

StatusOr<TraceCounts> CountTrace(const std::string& path, double capacity_factor) {
  MOESIM_ASSIGN_OR_RETURN(TraceReader reader, TraceReader::Open(path));
  TraceCounts result;
  result.header = reader.header();
  const uint32_t experts = reader.header().num_experts();
  const bool capped = capacity_factor > 0;
  std::vector<uint64_t> mine(capped ? experts : 0);  // one record's copies per expert
  pb::TraceRecord record;
  for (;;) {
    MOESIM_ASSIGN_OR_RETURN(const bool got, reader.Next(&record));
    if (!got) break;
    const uint32_t layer = record.layer();                     // < kMaxTraceLayers: checked by Next
    result.ranks = std::max(result.ranks, record.rank() + 1);  // rank < kMaxTraceRanks, no wrap
    if (layer >= result.counts.size()) {
      result.counts.resize(layer + 1);
      result.tokens.resize(layer + 1, 0);
      if (capped) result.dropped.resize(layer + 1);
    }
    std::vector<uint64_t>& c = result.counts[layer];
    if (c.empty()) c.assign(experts, 0);
    for (uint32_t id : record.experts()) ++c[id];  // ids checked < experts by Next
    result.tokens[layer] += record.tokens();
    if (!capped) continue;
    std::fill(mine.begin(), mine.end(), 0);
    for (uint32_t id : record.experts()) ++mine[id];
    const uint64_t capacity =
        ExpertCapacity(record.tokens(), reader.header().top_k(), experts, capacity_factor);
    std::vector<uint64_t>& d = result.dropped[layer];
    if (d.empty()) d.assign(experts, 0);
    for (uint32_t e = 0; e < experts; ++e) d[e] += mine[e] > capacity ? mine[e] - capacity : 0;
  }
  result.records = reader.records_read();
  return result;
}

}  // namespace moesim::models
