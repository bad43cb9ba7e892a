// One projection of every expert at once: for each expert e with rows_e = offsets[e+1] -
// offsets[e] > 0,
//
//   out[offsets[e] .. + rows_e) [rows_e x n] = in[offsets[e] .. + rows_e) [rows_e x k] . W_e^T
//
// where W_e = weights + e * n * k is [n x k] row-major (torch.nn.Linear's layout). In cuBLAS's
// column-major terms that is C [n x rows_e] = op(A) . B with A = W_e transposed (lda = k),
// B = the rows (ldb = k), C ldc = n: the "TN" GEMM that cuBLAS tunes best. bf16 in and out, fp32
// accumulation (CUBLAS_COMPUTE_32F).
//
// kGroupedBatched issues one cublasGemmGroupedBatchedEx whose groups are the experts with equal
// row counts (one group at balanced load); kPerExpertLoop issues one cublasGemmEx per expert.
// The grouped call's pointer arrays live on the device; they are staged through pinned memory and
// re-uploaded only when the pointers or offsets change.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/kernels/cuda/cuda_util.h"
#include "backend/kernels/cuda/kernels.cuh"

namespace moesim::backend::gpu {

// `w` in the layout the GEMMs read (ToDeviceLayout, backend/kernels/cpu_kernels.h) into w1 and w2
// (synchronous), as GpuLayer and GpuEpLayer keep their experts.
Status UploadExpertWeights(const ExpertWeights& w, DeviceBuffer& w1, DeviceBuffer& w2);
// Uniform random weights in that layout for `experts` experts: w1 in +-1/sqrt(hidden), w2 in
// +-1/sqrt(ffn) (activations keep their scale through the FFN); seeds `seed` and `seed + 1`.
Status FillRandomExpertWeights(uint64_t experts, uint32_t hidden, uint32_t ffn, uint64_t seed,
                               DeviceBuffer& w1, DeviceBuffer& w2, cudaStream_t stream);

class GroupedGemm {
 public:
  GroupedGemm() = default;
  ~GroupedGemm();
  GroupedGemm(const GroupedGemm&) = delete;
  GroupedGemm& operator=(const GroupedGemm&) = delete;

  Status Init(uint32_t experts);
  // offsets: host, [experts + 1], nondecreasing.
  Status Run(cublasHandle_t blas, cudaStream_t stream, GemmApi api, const bf16* in,
             const bf16* weights, bf16* out, std::span<const uint64_t> offsets, int n, int k);

 private:
  Status Upload(cudaStream_t stream, const bf16* in, const bf16* weights, bf16* out,
                std::span<const uint64_t> offsets, int n, int k);

  uint32_t experts_ = 0;
  void** staging_ = nullptr;      // pinned: A, B, C pointer arrays, experts_ each
  cudaEvent_t staged_ = nullptr;  // the last upload from staging_ finished
  DeviceBuffer device_pointers_;
  // What the device pointer arrays hold now, and the grouped call's host arrays.
  std::vector<const void*> key_;
  uint32_t problems_ = 0;  // non-empty experts
  std::vector<int> m_, n_, k_, lda_, ldc_, group_size_;
  std::vector<cublasOperation_t> trans_a_, trans_b_;
  std::vector<float> alpha_, beta_;
};

}  // namespace moesim::backend::gpu
