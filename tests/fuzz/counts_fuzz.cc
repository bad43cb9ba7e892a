// Fuzzes a per-expert counts CSV (model,domain,layer,expert,count; what a scenario's
// `routing { synthetic { counts_file } }` and `moesim trace import counts` read): ParseCsv, then
// every (model, domain, layer) looked up as the MEASURED generator does.
#include <cstdint>
#include <string>

#include "models/expert_counts.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto counts = moesim::models::ExpertCounts::ParseCsv(moesim::fuzz::AsText(data, size), "fuzz.csv");
  if (!counts.ok()) return 0;
  for (const std::string& model : counts->Models()) {
    for (const std::string& domain : counts->Domains(model)) {
      for (uint32_t layer : counts->Layers(model, domain)) {
        (void)counts->Find(model, domain, layer);
      }
    }
  }
  return 0;
}
