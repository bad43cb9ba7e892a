// Routing trace files: which experts each token was sent to, step by step and layer by layer, from
// a real run (imported) or a generator (`moesim trace gen`). Format (proto/trace.proto): a stream
// of varint-length-delimited protobuf messages, one TraceHeader and then TraceRecords, each record
// one (step, layer, rank) slice of tokens x top_k expert ids. A (step, layer, rank) may span
// several records (an importer cuts a long input into chunks); readers add them up.
//
//   pb::TraceHeader header;  header.set_num_experts(64);  header.set_top_k(8);
//   MOESIM_ASSIGN_OR_RETURN(TraceWriter w, TraceWriter::Create("t.moetrace", header));
//   MOESIM_RETURN_IF_ERROR(w.Write(record));   // checked against the header first
//   MOESIM_RETURN_IF_ERROR(w.Close());
//
//   MOESIM_ASSIGN_OR_RETURN(TraceReader r, TraceReader::Open("t.moetrace"));
//   pb::TraceRecord rec;
//   for (;;) {
//     MOESIM_ASSIGN_OR_RETURN(bool got, r.Next(&rec));   // one record in memory at a time
//     if (!got) break;                                    // clean end of file
//   }
//
// Every error names the file, the record (index from 0, counting records after the header) and its
// byte offset: a truncated or corrupted record, an expert id >= num_experts (with its position), a
// record whose ids are not tokens x top_k. Writers and readers are move-only and not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "proto/status.h"
#include "proto/trace.pb.h"

namespace google::protobuf::io {
class FileInputStream;
class FileOutputStream;
}  // namespace google::protobuf::io

namespace moesim::models {

inline constexpr uint32_t kTraceFormatVersion = 1;

// The header is usable: format_version 1 (0 is taken as 1 when writing), num_experts >= 1,
// 1 <= top_k <= num_experts. `file` names the file in errors.
Status CheckTraceHeader(const pb::TraceHeader& header, const std::string& file);

// The record fits the header: experts.size() == tokens x top_k, each id < num_experts, weights
// empty or one per id. `where` is the start of the message ("t.moetrace: record 3 (byte 1042)").
Status CheckTraceRecord(const pb::TraceHeader& header, const pb::TraceRecord& record,
                        const std::string& where);

// The trace can stand for a model with `num_experts` experts and top-`top_k` routing (`model`
// names it in the error): both must equal the header's.
Status CheckTraceMatchesModel(const pb::TraceHeader& header, const std::string& file,
                              const std::string& model, uint32_t num_experts, uint32_t top_k);

class TraceWriter {
 public:
  // Creates (truncates) `path` and writes the header, after CheckTraceHeader.
  static StatusOr<TraceWriter> Create(const std::string& path, pb::TraceHeader header);
  TraceWriter(TraceWriter&&) noexcept;
  TraceWriter& operator=(TraceWriter&&) noexcept;
  ~TraceWriter();  // closes the file if Close was not called (errors then go unreported)

  // Appends one record after CheckTraceRecord.
  Status Write(const pb::TraceRecord& record);
  // Flushes and closes; reports a failed write (disk full) here if not before.
  Status Close();

  const pb::TraceHeader& header() const { return header_; }
  uint64_t records_written() const { return records_; }

 private:
  TraceWriter() = default;
  std::string path_;
  pb::TraceHeader header_;
  int fd_ = -1;
  std::unique_ptr<google::protobuf::io::FileOutputStream> out_;
  uint64_t records_ = 0;
};

class TraceReader {
 public:
  // Opens `path` and reads and checks the header.
  static StatusOr<TraceReader> Open(const std::string& path);
  TraceReader(TraceReader&&) noexcept;
  TraceReader& operator=(TraceReader&&) noexcept;
  ~TraceReader();

  const pb::TraceHeader& header() const { return header_; }

  // Reads the next record into `record` and checks it (CheckTraceRecord). true: a record was read;
  // false: the file ended cleanly after the previous record.
  StatusOr<bool> Next(pb::TraceRecord* record);

  // Records read so far (= index of the next one) and the byte offset where the next one starts.
  uint64_t records_read() const { return records_; }
  uint64_t offset() const { return offset_; }
  uint64_t file_bytes() const { return file_bytes_; }

 private:
  TraceReader() = default;
  // Reads one length-delimited message at offset_ into `message`; `what` names it in errors.
  // false: the file ended exactly at offset_.
  StatusOr<bool> ReadMessage(google::protobuf::Message* message, const std::string& what);

  std::string path_;
  pb::TraceHeader header_;
  int fd_ = -1;
  std::unique_ptr<google::protobuf::io::FileInputStream> in_;
  uint64_t file_bytes_ = 0;
  uint64_t offset_ = 0;
  uint64_t records_ = 0;
};

// Load statistics of one layer, from per-expert selection counts c_e (e = 0..E-1) summed over
// every token of the layer. With mean m = sum(c) / E:
//   max_over_mean = max(c) / m                     (1 = perfectly balanced)
//   cv            = sqrt(sum((c_e - m)^2) / E) / m (population standard deviation over mean)
//   entropy_bits  = -sum p_e log2 p_e, p_e = c_e / sum(c)  (log2 E = perfectly balanced)
//   idle_experts  = #{e : c_e = 0}
// ep_loads[r]: with ep > 0 and E divisible by ep, the selections of EP rank r under contiguous
// placement (experts r*E/ep .. (r+1)*E/ep - 1), i.e. the token copies that rank computes.
struct LoadStats {
  uint64_t tokens = 0;
  uint64_t selections = 0;
  double max_over_mean = 0;
  double cv = 0;
  double entropy_bits = 0;
  uint32_t idle_experts = 0;
  std::vector<uint64_t> ep_loads;
};
LoadStats ComputeLoadStats(std::span<const uint64_t> counts, uint64_t tokens, uint32_t ep);

// Per-layer expert counts of a whole trace, streamed record by record: counts[layer][expert].
struct TraceCounts {
  pb::TraceHeader header;
  uint64_t records = 0;
  std::vector<std::vector<uint64_t>> counts;  // index = layer; layers never seen stay empty
  std::vector<uint64_t> tokens;               // index = layer
};
StatusOr<TraceCounts> CountTrace(const std::string& path);

}  // namespace moesim::models
