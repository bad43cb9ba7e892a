// Fuzzes a model file (moesim.pb.ModelSpec in text format, what `moesim model FILE.pbtxt` and
// `moesim plan --model FILE.pbtxt` read): LoadModelArgument (parse and ValidateModelSpec), then
// what `moesim model` prints from it: parameter counts and FLOPs per token.
#include <cstdint>

#include "models/model_spec.h"
#include "models/params.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static moesim::fuzz::InputFile file(".pbtxt");
  auto spec = moesim::models::LoadModelArgument(file.Write(data, size));
  if (!spec.ok()) return 0;
  const moesim::models::ModelParams params = moesim::models::CountParams(*spec);
  (void)moesim::models::ActiveParamsAsPublished(*spec, params);
  (void)moesim::models::ForwardFlopsPerToken(*spec, /*seq_len=*/4096);
  (void)moesim::models::TrainingFlopsPerToken(*spec, /*seq_len=*/4096);
  (void)moesim::models::MoeLayerCount(*spec);
  return 0;
}
