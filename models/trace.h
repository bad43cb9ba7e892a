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
// layer or rank beyond the header's num_layers / num_ranks (or the format's limits below), a
// record whose ids are not tokens x top_k. Every index a reader uses is checked before it is used,
// so no file, however made, can make a reader index out of range or allocate without bound.
// A writer writes a temporary file renamed over the target by Close (proto/atomic_file.h): a trace
// that was not closed, or whose writing failed, is never left behind. Writers and readers are
// move-only and not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "proto/atomic_file.h"
#include "proto/status.h"
#include "proto/trace.pb.h"

namespace google::protobuf::io {
class FileInputStream;
class FileOutputStream;
}  // namespace google::protobuf::io

namespace moesim::models {

inline constexpr uint32_t kTraceFormatVersion = 1;

// The format's limits, so that what a reader allocates is bounded whatever a file says: per-layer
// counts take layers x experts x 8 bytes, at most 1,024 x 65,536 x 8 = 512 MiB. Chosen with room
// above today's largest models (DeepSeek-V3, arXiv:2412.19437: 61 layers, 256 routed experts) and
// clusters (1,048,576 ranks); not measured, and not a property of any model.
inline constexpr uint32_t kMaxTraceExperts = 1u << 16;  // 65,536
inline constexpr uint32_t kMaxTraceLayers = 1u << 10;   // 1,024
inline constexpr uint32_t kMaxTraceRanks = 1u << 20;    // 1,048,576

// The header is usable: format_version 1 (0 is taken as 1 when writing), 1 <= num_experts <=
// kMaxTraceExperts, 1 <= top_k <= num_experts, num_layers <= kMaxTraceLayers and num_ranks <=
// kMaxTraceRanks (0: not stated). `file` names the file in errors.
Status CheckTraceHeader(const pb::TraceHeader& header, const std::string& file);

// The record fits the header: layer < num_layers (kMaxTraceLayers when 0), rank < num_ranks
// (kMaxTraceRanks when 0), experts.size() == tokens x top_k, each id < num_experts, weights empty
// or one per id. `where` is the start of the message ("t.moetrace: record 3 (byte 1042)").
Status CheckTraceRecord(const pb::TraceHeader& header, const pb::TraceRecord& record,
                        const std::string& where);

// The trace can stand for a model with `num_experts` experts and top-`top_k` routing (`model`
// names it in the error): both must equal the header's.
Status CheckTraceMatchesModel(const pb::TraceHeader& header, const std::string& file,
                              const std::string& model, uint32_t num_experts, uint32_t top_k);

class TraceWriter {
 public:
  // Starts the temporary file beside `path` and writes the header, after CheckTraceHeader.
  static StatusOr<TraceWriter> Create(const std::string& path, pb::TraceHeader header);
  TraceWriter(TraceWriter&&) noexcept;
  TraceWriter& operator=(TraceWriter&&) noexcept;
  ~TraceWriter();  // Close not called: the temporary file is removed, `path` left as it was

  // Appends one record after CheckTraceRecord.
  Status Write(const pb::TraceRecord& record);
  // Flushes, syncs and renames the file over `path`; reports a failed write (disk full, with
  // errno's text) here if not before.
  Status Close();

  const pb::TraceHeader& header() const { return header_; }
  uint64_t records_written() const { return records_; }

 private:
  TraceWriter() = default;
  std::string path_;
  pb::TraceHeader header_;
  std::unique_ptr<AtomicFile> file_;
  std::unique_ptr<google::protobuf::io::FileOutputStream> out_;
  uint64_t records_ = 0;
};

class TraceReader {
 public:
  // Opens `path` (a regular file: proto/input_file.h) and reads and checks the header.
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
//   mean_load     = m; min_load = min(c); max_load = max(c)
//   min_over_mean = min(c) / m, max_over_mean = max(c) / m   (both 1 = perfectly balanced)
//   cv            = sqrt(sum((c_e - m)^2) / E) / m (population standard deviation over mean)
//   entropy_bits  = -sum p_e log2 p_e, p_e = c_e / sum(c)  (log2 E = perfectly balanced)
//   idle_experts  = #{e : c_e = 0}
// ep_loads[r]: with ep > 0 and E divisible by ep, the selections of EP rank r under contiguous
// placement (experts r*E/ep .. (r+1)*E/ep - 1), i.e. the token copies that rank computes.
struct LoadStats {
  uint64_t tokens = 0;
  uint64_t selections = 0;
  double mean_load = 0;
  uint64_t min_load = 0;
  uint64_t max_load = 0;
  double min_over_mean = 0;
  double max_over_mean = 0;
  double cv = 0;
  double entropy_bits = 0;
  uint32_t idle_experts = 0;
  std::vector<uint64_t> ep_loads;
};
LoadStats ComputeLoadStats(std::span<const uint64_t> counts, uint64_t tokens, uint32_t ep);

// Per-layer expert counts of a whole trace, streamed record by record: counts[layer][expert]
// (layers < kMaxTraceLayers, checked by the reader).
struct TraceCounts {
  pb::TraceHeader header;
  uint64_t records = 0;
  uint32_t ranks = 0;                         // 1 + the largest rank of any record (0: no record)
  std::vector<std::vector<uint64_t>> counts;  // index = layer; layers never seen stay empty
  std::vector<uint64_t> tokens;               // index = layer
  // With a capacity factor cf > 0: dropped[layer][expert], the copies each record (one rank's
  // batch in one step and layer) sends an expert beyond its capacity ExpertCapacity(tokens,
  // top_k, experts, cf) = ceil(tokens x top_k / experts x cf), as a rank drops them under
  // Megatron-Core's moe_expert_capacity_factor (models/routing.h); summed over steps and ranks.
  std::vector<std::vector<uint64_t>> dropped;
};
StatusOr<TraceCounts> CountTrace(const std::string& path, double capacity_factor = 0);

}  // namespace moesim::models
