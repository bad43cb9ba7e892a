// Checked CUDA and cuBLAS calls that turn failures into moesim Errors, and the owners of device
// memory, streams and events that the kernels layer uses. Host code only (compiled by the host
// compiler or nvcc alike); every message names host:file:line, as nccl-tests does.
//
//   MOESIM_CUDA_OK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
//   MOESIM_ASSIGN_OR_RETURN(DeviceBuffer buf, DeviceBuffer::Allocate(bytes, "expert weights"));
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "backend/kernels/gpu_kernels.h"
#include "proto/status.h"

namespace moesim::backend::gpu {

Error CudaError(cudaError_t error, const char* call, const char* file, int line);
Error CublasError(cublasStatus_t status, const char* call, const char* file, int line);

#define MOESIM_CUDA_OK(call)                                                                   \
  do {                                                                                         \
    cudaError_t moesim_cuda_error_ = (call);                                                   \
    if (moesim_cuda_error_ != cudaSuccess) {                                                   \
      return ::moesim::backend::gpu::CudaError(moesim_cuda_error_, #call, __FILE__, __LINE__); \
    }                                                                                          \
  } while (0)

#define MOESIM_CUBLAS_OK(call)                                                           \
  do {                                                                                   \
    cublasStatus_t moesim_cublas_status_ = (call);                                       \
    if (moesim_cublas_status_ != CUBLAS_STATUS_SUCCESS) {                                \
      return ::moesim::backend::gpu::CublasError(moesim_cublas_status_, #call, __FILE__, \
                                                 __LINE__);                              \
    }                                                                                    \
  } while (0)

// Selects `device`, or says why it cannot ("no CUDA device visible: ..." when there is none).
Status UseDevice(int device);

// Owns one cudaMalloc allocation. On failure the Error names what was being allocated, the bytes
// needed and the bytes free on the device.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  static StatusOr<DeviceBuffer> Allocate(uint64_t bytes, const std::string& what);

  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  uint64_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  uint64_t bytes_ = 0;
};

// A buffer to allocate: where it goes, its bytes, and its name for an out-of-memory error.
struct BufferRequest {
  DeviceBuffer* buffer;
  uint64_t bytes;
  const char* what;
};
// Each request in turn; the first that fails names its buffer and the bytes it needed.
Status AllocateBuffers(std::span<const BufferRequest> requests);

// A stream and a cuBLAS handle bound to it, destroyed together.
class StreamAndBlas {
 public:
  StreamAndBlas() = default;
  ~StreamAndBlas();
  StreamAndBlas(const StreamAndBlas&) = delete;
  StreamAndBlas& operator=(const StreamAndBlas&) = delete;
  Status Init();
  cudaStream_t stream() const { return stream_; }
  cublasHandle_t blas() const { return blas_; }

 private:
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
};

// `count` CUDA events recorded in order on one stream; Elapsed(i, j) is milliseconds from i to j.
class EventMarks {
 public:
  EventMarks() = default;
  ~EventMarks();
  EventMarks(const EventMarks&) = delete;
  EventMarks& operator=(const EventMarks&) = delete;
  Status Init(int count);
  Status Record(int i, cudaStream_t stream);
  StatusOr<double> Elapsed(int from, int to) const;  // synchronises on `to`

 private:
  std::vector<cudaEvent_t> events_;
};

// `x` rounded to bf16 into the start of `dst` (host to device, synchronous; nothing when empty).
Status UploadAsBf16(std::span<const float> x, DeviceBuffer& dst);

// `host` into the start of `dst` as it is (synchronous; nothing when empty).
template <typename T>
Status Upload(const std::vector<T>& host, DeviceBuffer& dst) {
  if (host.empty()) return Status::Ok();
  MOESIM_CUDA_OK(
      cudaMemcpy(dst.as<void>(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return Status::Ok();
}

// The first `count` elements of `b`, after the work queued on `s` (synchronises `s`).
template <typename T>
StatusOr<std::vector<T>> Fetch(const DeviceBuffer& b, uint64_t count, cudaStream_t s) {
  std::vector<T> out(count);
  if (count == 0) return out;
  MOESIM_CUDA_OK(
      cudaMemcpyAsync(out.data(), b.as<void>(), count * sizeof(T), cudaMemcpyDeviceToHost, s));
  MOESIM_CUDA_OK(cudaStreamSynchronize(s));
  return out;
}
// The same for bf16 elements, widened to float.
StatusOr<std::vector<float>> FetchBf16(const DeviceBuffer& b, uint64_t count, cudaStream_t s);

// Median, min and max of per-iteration milliseconds.
Timing Summarize(std::vector<double> ms);

// Runs `op` (a Status()) warm-up times, then `iterations` times between two events each on
// `stream`; their milliseconds, summarised.
template <typename Op>
StatusOr<Timing> TimeOp(cudaStream_t stream, uint32_t warmup, uint32_t iterations, Op op) {
  EventMarks marks;
  MOESIM_RETURN_IF_ERROR(marks.Init(2));
  for (uint32_t i = 0; i < warmup; ++i) MOESIM_RETURN_IF_ERROR(op());
  std::vector<double> ms;
  for (uint32_t i = 0; i < iterations; ++i) {
    MOESIM_RETURN_IF_ERROR(marks.Record(0, stream));
    MOESIM_RETURN_IF_ERROR(op());
    MOESIM_RETURN_IF_ERROR(marks.Record(1, stream));
    MOESIM_ASSIGN_OR_RETURN(double elapsed, marks.Elapsed(0, 1));
    ms.push_back(elapsed);
  }
  return Summarize(std::move(ms));
}

// `flops` over `ms` milliseconds, in TFLOP/s (0 for no time).
inline double Tflops(double flops, double ms) { return ms > 0 ? flops / (ms * 1e-3) / 1e12 : 0.0; }

// A grouped-GEMM sweep's point from its two projections' timings (rates from their medians).
inline GroupedGemmPoint PointOf(const GroupedGemmShape& shape, GemmApi api, const Timing& up,
                                const Timing& down) {
  const double rows = static_cast<double>(shape.experts) * shape.tokens_per_expert;
  const double up_flops = 2.0 * rows * shape.hidden * 2 * shape.ffn;
  const double down_flops = 2.0 * rows * shape.ffn * shape.hidden;
  GroupedGemmPoint p;
  p.shape = shape;
  p.api = api;
  p.up = up;
  p.down = down;
  p.up_tflops = Tflops(up_flops, up.median_ms);
  p.down_tflops = Tflops(down_flops, down.median_ms);
  p.ffn_tflops = Tflops(up_flops + down_flops, up.median_ms + down.median_ms);
  return p;
}

}  // namespace moesim::backend::gpu
