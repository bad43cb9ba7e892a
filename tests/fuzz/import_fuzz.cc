// Fuzzes one trace importer (models/trace_import.h; MOESIM_FUZZ_IMPORT_FORMAT, set per executable
// by tests/fuzz/CMakeLists.txt: megatron-jsonl, csv or npy), as `moesim trace import FORMAT FILE
// -o OUT --experts 64` runs it, then counts the trace it wrote (CountTrace, ComputeLoadStats).
// Records of at most 3 tokens, so that inputs of a few tokens already span several records.
#include <cstdint>
#include <string>

#include "models/trace.h"
#include "models/trace_import.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static moesim::fuzz::InputFile input("." MOESIM_FUZZ_IMPORT_FORMAT);
  static moesim::fuzz::InputFile output(".moetrace");
  moesim::models::TraceImportOptions options;
  options.num_experts = 64;
  options.tokens_per_record = 3;
  auto summary = moesim::models::ImportTrace(MOESIM_FUZZ_IMPORT_FORMAT, input.Write(data, size),
                                             output.path(), options);
  if (!summary.ok()) return 0;
  auto counted = moesim::models::CountTrace(output.path());
  if (!counted.ok()) return 0;
  for (size_t layer = 0; layer < counted->counts.size(); ++layer) {
    if (counted->counts[layer].empty()) continue;
    (void)moesim::models::ComputeLoadStats(counted->counts[layer], counted->tokens[layer], 4);
  }
  return 0;
}
