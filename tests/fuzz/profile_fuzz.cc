// Fuzzes a hardware profile (moesim.pb.HardwareProfile in text format, what `moesim calibrate
// --out` writes and `moesim simulate --hardware FILE` reads) through LoadHardwareProfile.
#include <cstdint>

#include "sim/compute/profile_predict.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static moesim::fuzz::InputFile file(".pbtxt");
  (void)moesim::sim::LoadHardwareProfile(file.Write(data, size));
  return 0;
}
