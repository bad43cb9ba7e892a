// gpu_kernels.h where moebench_kernels was built without CUDA: every entry point says so. The
// message starts like a missing device's, so callers that skip without a GPU skip here too.
#include "backend/kernels/gpu_kernels.h"

namespace moesim::backend::gpu {
namespace {

Error NoCuda() {
  return Error(
      "no CUDA device visible: moebench was built without CUDA (MOESIM_CUDA=OFF or no CUDA "
      "toolkit at configure time)");
}

}  // namespace

struct GpuLayer::Impl {
  GpuLayerConfig config;
};

StatusOr<DeviceInfo> QueryDevice(int) { return NoCuda(); }
bool IsNoDeviceError(const Error& error) {
  return error.message().rfind("no CUDA device visible: ", 0) == 0;
}
const char* GemmApiName(GemmApi api) {
  return api == GemmApi::kGroupedBatched ? "cublasGemmGroupedBatchedEx" : "cublasGemmEx loop";
}

StatusOr<std::unique_ptr<GpuLayer>> GpuLayer::Create(const GpuLayerConfig&) { return NoCuda(); }
GpuLayer::GpuLayer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GpuLayer::~GpuLayer() = default;
const GpuLayerConfig& GpuLayer::config() const { return impl_->config; }
uint32_t GpuLayer::tokens() const { return 0; }
Status GpuLayer::UploadWeights(const ExpertWeights&) { return NoCuda(); }
Status GpuLayer::RandomWeights(uint64_t) { return NoCuda(); }
Status GpuLayer::UploadLogits(std::span<const float>, uint32_t) { return NoCuda(); }
Status GpuLayer::UploadActivations(std::span<const float>) { return NoCuda(); }
Status GpuLayer::RandomActivations(uint64_t) { return NoCuda(); }
Status GpuLayer::Poison() { return NoCuda(); }
StatusOr<GpuLayerTimes> GpuLayer::Run() { return NoCuda(); }
StatusOr<GpuLayerTimes> GpuLayer::Benchmark(uint32_t, uint32_t) { return NoCuda(); }
StatusOr<GpuLayerOutputs> GpuLayer::Download() const { return NoCuda(); }

StatusOr<CopyBandwidth> MeasureCopyBandwidth(uint64_t, uint32_t, int) { return NoCuda(); }
StatusOr<GemmRate> MeasureDenseGemm(int, int, int, uint32_t, int) { return NoCuda(); }
StatusOr<std::vector<GroupedGemmPoint>> SweepGroupedGemm(std::span<const GroupedGemmShape>, GemmApi,
                                                         uint32_t, uint32_t, int) {
  return NoCuda();
}

}  // namespace moesim::backend::gpu
