// Trace files (models/trace.h): round trip, streaming, and every way a file can be wrong.
#include "models/trace.h"

#include <google/protobuf/util/delimited_message_util.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_paths.h"

namespace moesim::models {
namespace {

using testing::TempPath;

pb::TraceHeader Header(uint32_t experts, uint32_t top_k) {
  pb::TraceHeader h;
  h.set_num_experts(experts);
  h.set_top_k(top_k);
  h.set_model("test");
  return h;
}

pb::TraceRecord Record(uint64_t step, uint32_t layer, uint32_t rank,
                       const std::vector<uint32_t>& ids, uint32_t top_k) {
  pb::TraceRecord r;
  r.set_step(step);
  r.set_layer(layer);
  r.set_rank(rank);
  r.set_tokens(ids.size() / top_k);
  r.mutable_experts()->Add(ids.begin(), ids.end());
  return r;
}

// Writes a header and three 2-token top-2 records over 8 experts; returns the path.
std::string WriteSmall(const std::string& name) {
  const std::string path = TempPath(name);
  auto w = TraceWriter::Create(path, Header(8, 2));
  REQUIRE(w.ok());
  for (uint32_t i = 0; i < 3; ++i) {
    REQUIRE(w->Write(Record(0, i, 0, {i, 7, 2, 3}, 2)).ok());
  }
  REQUIRE(w->Close().ok());
  return path;
}

// Reads every record; returns the first error's message, or "" when the file read cleanly.
std::string ReadAll(const std::string& path, uint64_t* records = nullptr) {
  auto r = TraceReader::Open(path);
  if (!r.ok()) return r.error().message();
  pb::TraceRecord rec;
  for (;;) {
    auto got = r->Next(&rec);
    if (!got.ok()) return got.error().message();
    if (!*got) break;
  }
  if (records != nullptr) *records = r->records_read();
  return "";
}

}  // namespace

TEST_CASE("trace write then read gives back the header and every record") {
  const std::string path = TempPath("roundtrip");
  pb::TraceRecord first = Record(5, 1, 3, {0, 1, 2, 3, 3, 0}, 2);  // 3 tokens x top-2
  first.add_weights(0.5f);
  for (int i = 0; i < 5; ++i) first.add_weights(0.1f * i);
  {
    auto w = TraceWriter::Create(path, Header(4, 2));
    REQUIRE(w.ok());
    REQUIRE(w->Write(first).ok());
    REQUIRE(w->Write(Record(6, 0, 0, {}, 2)).ok());  // 0 tokens is a valid (empty) record
    REQUIRE(w->Close().ok());
  }
  auto r = TraceReader::Open(path);
  REQUIRE(r.ok());
  CHECK(r->header().num_experts() == 4);
  CHECK(r->header().top_k() == 2);
  CHECK(r->header().format_version() == kTraceFormatVersion);  // 0 is written as 1
  pb::TraceRecord rec;
  auto got = r->Next(&rec);
  REQUIRE(got.ok());
  REQUIRE(*got);
  CHECK(rec.SerializeAsString() == first.SerializeAsString());  // byte-identical record
  got = r->Next(&rec);
  REQUIRE((got.ok() && *got));
  CHECK(rec.step() == 6);
  CHECK(rec.tokens() == 0);
  got = r->Next(&rec);
  REQUIRE(got.ok());
  CHECK_FALSE(*got);  // clean end of file after 2 records
  CHECK(r->records_read() == 2);
  CHECK(r->offset() == r->file_bytes());
  std::filesystem::remove(path);
}

TEST_CASE("trace reader streams many records one at a time") {
  const std::string path = TempPath("many");
  const uint32_t records = 2000, tokens = 16, k = 4, experts = 32;
  {
    auto w = TraceWriter::Create(path, Header(experts, k));
    REQUIRE(w.ok());
    std::vector<uint32_t> ids(tokens * k);
    for (uint32_t i = 0; i < records; ++i) {
      for (uint32_t j = 0; j < ids.size(); ++j) ids[j] = (i + j) % experts;
      REQUIRE(w->Write(Record(i / 8, i % 8, 0, ids, k)).ok());
    }
    REQUIRE(w->Close().ok());
  }
  auto r = TraceReader::Open(path);
  REQUIRE(r.ok());
  pb::TraceRecord rec;
  uint64_t tokens_seen = 0, id_sum = 0, previous_offset = r->offset();
  for (uint32_t i = 0;; ++i) {
    auto got = r->Next(&rec);
    REQUIRE(got.ok());
    if (!*got) break;
    CHECK(r->offset() > previous_offset);  // every record moves the offset forward
    previous_offset = r->offset();
    tokens_seen += rec.tokens();
    for (uint32_t id : rec.experts()) id_sum += id;
  }
  // 2000 records x 16 tokens = 32,000 tokens; each record's 64 ids (i + j) mod 32, j = 0..63, hold
  // every expert twice: sum 2 x (0 + ... + 31) = 992 per record, 1,984,000 in all.
  CHECK(r->records_read() == 2000);
  CHECK(tokens_seen == 32000);
  CHECK(id_sum == 1984000);
  std::filesystem::remove(path);
}

TEST_CASE("truncated trace names the record that was cut") {
  const std::string path = WriteSmall("truncated");
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 3);
  // Records 0 and 1 are whole; record 2 lost its last 3 bytes.
  const std::string error = ReadAll(path);
  CHECK_THAT(error, Catch::Contains(path + ": record 2 (byte "));
  CHECK_THAT(error, Catch::Contains("truncated"));
  std::filesystem::remove(path);
}

TEST_CASE("corrupted trace bytes give an error naming the record and byte offset") {
  const std::string path = WriteSmall("corrupted");
  // Find where record 1 starts, then overwrite its first field tag (after the 1-byte length
  // prefix: each record is under 128 bytes) with 0x0F: field 1, wire type 7, which does not exist.
  uint64_t offset = 0;
  {
    auto r = TraceReader::Open(path);
    REQUIRE(r.ok());
    pb::TraceRecord rec;
    REQUIRE(r->Next(&rec).ok());
    offset = r->offset();
  }
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset + 1));
    f.put('\x0F');
  }
  const std::string error = ReadAll(path);
  CHECK_THAT(error, Catch::Contains(path + ": record 1 (byte " + std::to_string(offset) + ")"));
  CHECK_THAT(error, Catch::Contains("corrupted"));
  std::filesystem::remove(path);
}

TEST_CASE("expert id out of range names the record and its position") {
  const std::string path = TempPath("out_of_range");
  {
    // Written without TraceWriter, which would refuse it.
    std::ofstream out(path, std::ios::binary);
    pb::TraceHeader h = Header(8, 2);
    h.set_format_version(1);
    REQUIRE(google::protobuf::util::SerializeDelimitedToOstream(h, &out));
    REQUIRE(google::protobuf::util::SerializeDelimitedToOstream(Record(0, 0, 0, {1, 2}, 2), &out));
    REQUIRE(google::protobuf::util::SerializeDelimitedToOstream(
        Record(0, 1, 0, {1, 2, 3, 4, 5, 8}, 2), &out));
  }
  // Record 1's sixth id (index 5 = token 2, choice 1) is 8; 8 experts means ids 0..7.
  const std::string error = ReadAll(path);
  CHECK_THAT(error, Catch::Contains(path + ": record 1 (byte "));
  CHECK_THAT(error, Catch::Contains("experts[5] (token 2, choice 1) = 8"));
  CHECK_THAT(error, Catch::Contains("valid: 0..7"));

  auto w = TraceWriter::Create(TempPath("refused"), Header(8, 2));
  REQUIRE(w.ok());
  const Status refused = w->Write(Record(0, 0, 0, {9, 1}, 2));
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error().message(), Catch::Contains("experts[0] (token 0, choice 0) = 9"));
  REQUIRE(w->Close().ok());
  std::filesystem::remove(TempPath("refused"));
  std::filesystem::remove(path);
}

TEST_CASE("record whose ids are not tokens x top_k is refused") {
  pb::TraceRecord r = Record(0, 0, 0, {1, 2, 3}, 2);  // 3 ids for top-2
  r.set_tokens(2);                                    // 2 tokens x 2 = 4 ids expected
  const Status s = CheckTraceRecord(Header(8, 2), r, "t: record 0");
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.error().message(), Catch::Contains("holds 3 expert ids for tokens = 2"));
  CHECK_THAT(s.error().message(), Catch::Contains("tokens x top_k = 4"));
}

TEST_CASE("trace header checks and top-k that disagrees with the model") {
  pb::TraceHeader h = Header(8, 0);
  h.set_format_version(1);
  CHECK_FALSE(CheckTraceHeader(h, "t").ok());  // top_k 0
  h.set_top_k(9);
  CHECK_FALSE(CheckTraceHeader(h, "t").ok());  // top_k 9 > 8 experts
  h.set_top_k(2);
  CHECK(CheckTraceHeader(h, "t").ok());
  h.set_format_version(2);
  CHECK_FALSE(CheckTraceHeader(h, "t").ok());  // unknown format version

  // A top-2 trace over 8 experts used with a top-8, 64-expert model (OLMoE-like).
  const Status s = CheckTraceMatchesModel(Header(8, 2), "t.trace", "olmoe-1b-7b", 64, 8);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.error().message(), Catch::Contains("t.trace: header.top_k = 2"));
  CHECK_THAT(s.error().message(), Catch::Contains("olmoe-1b-7b uses top-8"));
  CHECK(CheckTraceMatchesModel(Header(64, 8), "t.trace", "olmoe-1b-7b", 64, 8).ok());

  // A file that is not a trace at all.
  const std::string path = TempPath("not_a_trace");
  std::ofstream(path) << "hello, this is text\n";
  CHECK_FALSE(ReadAll(path).empty());
  std::filesystem::remove(path);
}

TEST_CASE("load statistics follow their formulas") {
  // counts {4, 0, 2, 2}: sum 8, mean m = 2; min 0, max 4: min/mean 0, max/mean = 4/2 = 2;
  // cv = sqrt(((4-2)^2 + (0-2)^2 + 0 + 0) / 4) / 2 = sqrt(2) / 2 = 0.70711;
  // p = {1/2, 0, 1/4, 1/4}: entropy = 1/2 x 1 + 2 x 1/4 x 2 = 1.5 bits; one idle expert;
  // ep 2 (contiguous): rank 0 holds experts 0-1 = 4, rank 1 experts 2-3 = 4.
  const std::vector<uint64_t> counts{4, 0, 2, 2};
  const LoadStats s = ComputeLoadStats(counts, 4, 2);
  CHECK(s.tokens == 4);
  CHECK(s.selections == 8);
  CHECK(s.mean_load == Approx(2.0));
  CHECK(s.min_load == 0);
  CHECK(s.max_load == 4);
  CHECK(s.min_over_mean == Approx(0.0).margin(1e-12));
  CHECK(s.max_over_mean == Approx(2.0));
  CHECK(s.cv == Approx(0.70711).epsilon(1e-4));
  CHECK(s.entropy_bits == Approx(1.5));
  CHECK(s.idle_experts == 1);
  CHECK(s.ep_loads == std::vector<uint64_t>{4, 4});
  // Balanced: max/mean 1, cv 0, entropy log2 4 = 2 bits.
  const LoadStats b = ComputeLoadStats(std::vector<uint64_t>{3, 3, 3, 3}, 6, 0);
  CHECK(b.max_over_mean == Approx(1.0));
  CHECK(b.min_over_mean == Approx(1.0));
  CHECK(b.cv == Approx(0.0).margin(1e-12));
  CHECK(b.entropy_bits == Approx(2.0));
  CHECK(b.ep_loads.empty());
}

}  // namespace moesim::models

namespace moesim::models {

TEST_CASE("trace records: layer and rank checked against the header's counts") {
  // The header says 4 layers and 2 ranks: layer 3 and rank 1 fit, layer 4 and rank 2 do not.
  pb::TraceHeader h = Header(8, 2);
  h.set_num_layers(4);
  h.set_num_ranks(2);
  CHECK(CheckTraceRecord(h, Record(0, 3, 1, {0, 1}, 2), "t: record 0").ok());
  CHECK(CheckTraceRecord(h, Record(0, 4, 0, {0, 1}, 2), "t: record 0").error().message() ==
        "t: record 0: layer = 4: beyond the header's num_layers = 4; valid: 0..3");
  CHECK(CheckTraceRecord(h, Record(0, 0, 2, {0, 1}, 2), "t: record 0").error().message() ==
        "t: record 0: rank = 2: beyond the header's num_ranks = 2; valid: 0..1");
  // A header that does not state them (importers): the format's limits, 1,024 layers and
  // 1,048,576 ranks.
  const pb::TraceHeader open = Header(8, 2);
  CHECK(CheckTraceRecord(open, Record(0, 1023, 1048575, {0, 1}, 2), "t").ok());
  CHECK(CheckTraceRecord(open, Record(0, 1024, 0, {0, 1}, 2), "t").error().message() ==
        "t: layer = 1024: beyond the trace format's limit of 1024 layers (kMaxTraceLayers); "
        "valid: 0..1023");
  CHECK(CheckTraceRecord(open, Record(0, 0, 1048576, {0, 1}, 2), "t").error().message() ==
        "t: rank = 1048576: beyond the trace format's limit of 1048576 ranks (kMaxTraceRanks); "
        "valid: 0..1048575");
  // The header's own counts are held to the same limits, and experts to 65,536.
  pb::TraceHeader big = Header(65537, 2);
  big.set_format_version(1);
  CHECK(CheckTraceHeader(big, "t").error().message() ==
        "t: header.num_experts = 65537: more experts than a trace may hold; valid: 1..65536 "
        "(kMaxTraceExperts)");
  big = Header(8, 2);
  big.set_format_version(1);
  big.set_num_layers(1025);
  CHECK(CheckTraceHeader(big, "t").error().message() ==
        "t: header.num_layers = 1025: more layers than a trace may hold; valid: 0 (not stated) to "
        "1024 (kMaxTraceLayers)");
}

TEST_CASE("trace files whose layer or rank is 2^32-1 are refused at the record, not indexed") {
  // tests/fixtures/bad: a header (num_experts 8, top_k 2: 6 bytes after a 1-byte length, so the
  // record starts at byte 7) and one record of one token, experts {0, 1}, at layer or rank
  // 4294967295, where `layer + 1` used to wrap to 0.
  const std::string layer = testing::BadFixture("trace_layer_overflow.moetrace");
  CHECK(CountTrace(layer).error().message() ==
        layer +
            ": record 0 (byte 7): layer = 4294967295: beyond the trace format's limit of 1024 "
            "layers (kMaxTraceLayers); valid: 0..1023");
  const std::string rank = testing::BadFixture("trace_rank_overflow.moetrace");
  CHECK(CountTrace(rank).error().message() ==
        rank +
            ": record 0 (byte 7): rank = 4294967295: beyond the trace format's limit of 1048576 "
            "ranks (kMaxTraceRanks); valid: 0..1048575");
  // A directory is not a trace.
  const std::string dir = testing::SourcePath("tests/fixtures/bad");
  CHECK(TraceReader::Open(dir).error().message() ==
        dir + ": is a directory; valid: a regular file");
}

TEST_CASE("trace writer: a trace not closed, or whose writing failed, is never left behind") {
  const std::string path = TempPath("unclosed.moetrace");
  std::filesystem::remove(path);
  {
    auto w = TraceWriter::Create(path, Header(8, 2));
    REQUIRE(w.ok());
    REQUIRE(w->Write(Record(0, 0, 0, {0, 1}, 2)).ok());
    // An error half-way (here: none, the writer is just dropped) leaves nothing at `path`.
  }
  CHECK_FALSE(std::filesystem::exists(path));
  // /dev/full takes the header into protobuf's buffer; the flush at Close fails with ENOSPC.
  auto full = TraceWriter::Create("/dev/full", Header(8, 2));
  REQUIRE(full.ok());
  CHECK(full->Close().error().message() ==
        "/dev/full: cannot write the trace file: No space left on device");
}

}  // namespace moesim::models
