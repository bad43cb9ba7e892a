// Fuzzes a trace stream (.moetrace: a length-delimited TraceHeader, then TraceRecords; what
// `moesim trace stats` and a scenario's `routing { trace { file } }` read): TraceReader record by
// record, then `moesim trace stats FILE --ep 1` in-process (CountTrace, ComputeLoadStats per layer,
// the dispatch send matrix, which streams the file a second time).
#include <cstdint>
#include <sstream>

#include "models/trace.h"
#include "proto/trace.pb.h"
#include "sim/cli/cli.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static moesim::fuzz::InputFile file(".moetrace");
  const std::string& path = file.Write(data, size);
  auto reader = moesim::models::TraceReader::Open(path);
  if (!reader.ok()) return 0;
  moesim::pb::TraceRecord record;
  for (;;) {
    auto got = reader->Next(&record);
    if (!got.ok() || !*got) break;
  }
  std::ostringstream out, err;
  (void)moesim::sim::RunMoesim({"trace", "stats", path, "--ep", "1"}, out, err);
  return 0;
}
