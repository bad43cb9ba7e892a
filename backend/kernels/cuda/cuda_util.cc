#include "backend/kernels/cuda/cuda_util.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "backend/kernels/bf16.h"

namespace moesim::backend::gpu {
namespace {

constexpr char kNoDevice[] = "no CUDA device visible: ";

std::string Where(const char* file, int line) {
  char host[256] = "?";
  gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + file + ":" + std::to_string(line);
}

std::string Gigabytes(uint64_t bytes) {
  char text[64];
  std::snprintf(text, sizeof text, "%.3f GB", static_cast<double>(bytes) * 1e-9);
  return text;
}

}  // namespace

Error CudaError(cudaError_t error, const char* call, const char* file, int line) {
  return Error(Where(file, line) + ": " + call + ": " + cudaGetErrorName(error) + ": " +
               cudaGetErrorString(error));
}

Error CublasError(cublasStatus_t status, const char* call, const char* file, int line) {
  return Error(Where(file, line) + ": " + call + ": " + cublasGetStatusName(status) + ": " +
               cublasGetStatusString(status));
}

bool IsNoDeviceError(const Error& error) { return error.message().rfind(kNoDevice, 0) == 0; }

Status UseDevice(int device) {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return Error(std::string(kNoDevice) + cudaGetErrorName(error) + ": " +
                 cudaGetErrorString(error));
  }
  if (count == 0) return Error(std::string(kNoDevice) + "cudaGetDeviceCount returned 0");
  if (device < 0 || device >= count) {
    return Error("CUDA device " + std::to_string(device) + " does not exist; valid: 0.." +
                 std::to_string(count - 1));
  }
  MOESIM_CUDA_OK(cudaSetDevice(device));
  return Status::Ok();
}

StatusOr<int> VisibleDevices() {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    (void)cudaGetLastError();
    return Error(std::string(kNoDevice) + cudaGetErrorName(error) + ": " +
                 cudaGetErrorString(error));
  }
  if (count == 0) return Error(std::string(kNoDevice) + "cudaGetDeviceCount returned 0");
  return count;
}

StatusOr<DeviceInfo> QueryDevice(int device) {
  MOESIM_RETURN_IF_ERROR(UseDevice(device));
  cudaDeviceProp prop{};
  MOESIM_CUDA_OK(cudaGetDeviceProperties(&prop, device));
  DeviceInfo info;
  info.device = device;
  info.name = prop.name;
  info.compute_major = prop.major;
  info.compute_minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  info.memory_bytes = prop.totalGlobalMem;
  info.l2_bytes = static_cast<uint64_t>(prop.l2CacheSize);
  MOESIM_CUDA_OK(cudaDriverGetVersion(&info.driver_version));
  MOESIM_CUDA_OK(cudaRuntimeGetVersion(&info.runtime_version));
  int major = 0, minor = 0, patch = 0;
  MOESIM_CUBLAS_OK(cublasGetProperty(MAJOR_VERSION, &major));
  MOESIM_CUBLAS_OK(cublasGetProperty(MINOR_VERSION, &minor));
  MOESIM_CUBLAS_OK(cublasGetProperty(PATCH_LEVEL, &patch));
  info.cublas_version = major * 10000 + minor * 100 + patch;
  return info;
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_ != nullptr) (void)cudaFree(ptr_);
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (ptr_ != nullptr) (void)cudaFree(ptr_);
    ptr_ = std::exchange(other.ptr_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

StatusOr<DeviceBuffer> DeviceBuffer::Allocate(uint64_t bytes, const std::string& what) {
  DeviceBuffer buffer;
  if (bytes == 0) return buffer;
  const cudaError_t error = cudaMalloc(&buffer.ptr_, bytes);
  if (error != cudaSuccess) {
    (void)cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    std::string memory;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
      memory = "; " + Gigabytes(free_bytes) + " free of " + Gigabytes(total_bytes);
    }
    buffer.ptr_ = nullptr;
    return Error("cudaMalloc for " + what + ": " + std::to_string(bytes) + " bytes (" +
                 Gigabytes(bytes) + ") needed" + memory + ": " + cudaGetErrorName(error) + ": " +
                 cudaGetErrorString(error));
  }
  buffer.bytes_ = bytes;
  return buffer;
}

Status AllocateBuffers(std::span<const BufferRequest> requests) {
  for (const BufferRequest& r : requests) {
    MOESIM_ASSIGN_OR_RETURN(*r.buffer, DeviceBuffer::Allocate(r.bytes, r.what));
  }
  return Status::Ok();
}

StreamAndBlas::~StreamAndBlas() {
  if (blas_ != nullptr) (void)cublasDestroy(blas_);
  if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
}

Status StreamAndBlas::Init() {
  MOESIM_CUDA_OK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  MOESIM_CUBLAS_OK(cublasCreate(&blas_));
  MOESIM_CUBLAS_OK(cublasSetStream(blas_, stream_));
  return Status::Ok();
}

EventMarks::~EventMarks() {
  for (cudaEvent_t e : events_) (void)cudaEventDestroy(e);
}

Status EventMarks::Init(int count) {
  while (static_cast<int>(events_.size()) < count) {
    cudaEvent_t e = nullptr;
    MOESIM_CUDA_OK(cudaEventCreate(&e));
    events_.push_back(e);
  }
  return Status::Ok();
}

Status EventMarks::Record(int i, cudaStream_t stream) {
  MOESIM_CUDA_OK(cudaEventRecord(events_.at(i), stream));
  return Status::Ok();
}

StatusOr<double> EventMarks::Elapsed(int from, int to) const {
  MOESIM_CUDA_OK(cudaEventSynchronize(events_.at(to)));
  float ms = 0;
  MOESIM_CUDA_OK(cudaEventElapsedTime(&ms, events_.at(from), events_.at(to)));
  return static_cast<double>(ms);
}

Status UploadAsBf16(std::span<const float> x, DeviceBuffer& dst) {
  if (x.empty()) return Status::Ok();
  std::vector<uint16_t> bits(x.size());
  for (size_t i = 0; i < x.size(); ++i) bits[i] = FloatToBf16(x[i]);
  MOESIM_CUDA_OK(cudaMemcpy(dst.as<void>(), bits.data(), bits.size() * 2, cudaMemcpyDefault));
  return Status::Ok();
}

StatusOr<std::vector<float>> FetchBf16(const DeviceBuffer& b, uint64_t count, cudaStream_t s) {
  MOESIM_ASSIGN_OR_RETURN(std::vector<uint16_t> bits, Fetch<uint16_t>(b, count, s));
  std::vector<float> out(count);
  for (uint64_t i = 0; i < count; ++i) out[i] = Bf16ToFloat(bits[i]);
  return out;
}

Timing Summarize(std::vector<double> ms) {
  Timing t;
  t.iterations = static_cast<uint32_t>(ms.size());
  if (ms.empty()) return t;
  std::sort(ms.begin(), ms.end());
  const size_t n = ms.size();
  t.median_ms = n % 2 == 1 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
  t.min_ms = ms.front();
  t.max_ms = ms.back();
  return t;
}

}  // namespace moesim::backend::gpu
