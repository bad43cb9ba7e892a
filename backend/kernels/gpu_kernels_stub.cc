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
StatusOr<int> VisibleDevices() { return NoCuda(); }
bool IsNoDeviceError(const Error& error) {
  return error.message().rfind("no CUDA device visible: ", 0) == 0;
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

struct GpuEpLayer::Impl {
  GpuEpLayerConfig config;
  SendLayout send;
};

StatusOr<std::unique_ptr<GpuEpLayer>> GpuEpLayer::Create(const GpuEpLayerConfig&) {
  return NoCuda();
}
GpuEpLayer::GpuEpLayer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GpuEpLayer::~GpuEpLayer() = default;
const GpuEpLayerConfig& GpuEpLayer::config() const { return impl_->config; }
Status GpuEpLayer::UploadWeights(const ExpertWeights&) { return NoCuda(); }
Status GpuEpLayer::RandomWeights(uint64_t) { return NoCuda(); }
Status GpuEpLayer::UploadLogits(std::span<const float>, uint32_t) { return NoCuda(); }
Status GpuEpLayer::UploadActivations(std::span<const float>) { return NoCuda(); }
Status GpuEpLayer::Poison() { return NoCuda(); }
Status GpuEpLayer::RoutePermute() { return NoCuda(); }
const SendLayout& GpuEpLayer::send_layout() const { return impl_->send; }
Status GpuEpLayer::Regroup(std::span<const RowBlock>) { return NoCuda(); }
Status GpuEpLayer::Experts(const ReceiveLayout&) { return NoCuda(); }
Status GpuEpLayer::RegroupBack(std::span<const RowBlock>) { return NoCuda(); }
Status GpuEpLayer::Unpermute() { return NoCuda(); }
void* GpuEpLayer::stream() const { return nullptr; }
uint64_t GpuEpLayer::row_bytes() const { return 0; }
void* GpuEpLayer::send_rows() const { return nullptr; }
void* GpuEpLayer::recv_rows() const { return nullptr; }
void* GpuEpLayer::back_send_rows() const { return nullptr; }
void* GpuEpLayer::back_recv_rows() const { return nullptr; }
Status GpuEpLayer::Mark(int) { return NoCuda(); }
StatusOr<double> GpuEpLayer::Elapsed(int, int) const { return NoCuda(); }
Status GpuEpLayer::Synchronize() const { return NoCuda(); }
StatusOr<std::vector<float>> GpuEpLayer::DownloadOutput() const { return NoCuda(); }

StatusOr<CopyBandwidth> MeasureCopyBandwidth(uint64_t, uint32_t, int) { return NoCuda(); }
StatusOr<GemmRate> MeasureDenseGemm(int, int, int, uint32_t, int) { return NoCuda(); }
StatusOr<std::vector<GroupedGemmPoint>> SweepGroupedGemm(std::span<const GroupedGemmShape>, GemmApi,
                                                         uint32_t, uint32_t, int) {
  return NoCuda();
}
StatusOr<Fp8GemmCheck> CheckFp8Gemm(uint64_t, uint64_t, uint64_t, uint64_t, int) {
  return NoCuda();
}
StatusOr<std::vector<GroupedGemmPoint>> SweepFp8GroupedGemm(std::span<const GroupedGemmShape>,
                                                            uint32_t, uint32_t, int) {
  return NoCuda();
}

}  // namespace moesim::backend::gpu
