// FP8 expert GEMMs with DeepSeek-V3's block scales on cuBLASLt (CUDA 12.9+, Hopper): the GPU side
// of `moebench gemm --dtype fp8` and of the FP8 check against backend/kernels/fp8.h.
//
//   y [m x n] (bf16, row-major) = x [m x k] . w [n x k]^T
//
// x: E4M3 codes row-major with one fp32 scale per 1 x 128 tile, [m x k/128] row-major (what
// LaunchQuantizeTiles1x128 writes); w: E4M3 codes row-major ([out x in], as torch.nn.Linear keeps
// its weight) with one fp32 scale per 128 x 128 block, [ceil(n/128) x k/128] row-major. In
// cuBLASLt's column-major terms: D [n x m] = op(A) . B with A = w (k x n, lda k, transposed,
// CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F) and B = x (k x m, ldb k,
// CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F), fp32 accumulation (CUBLAS_COMPUTE_32F), the "TN" layout
// FP8 needs. k must be a multiple of 128. Scale convention: value = code x scale.
//
// NOT YET RUN ON A GPU (no device has been lent since this was written): the scale tensors'
// layouts are read off cuBLASLt's documentation of the two modes; the check in
// tests/backend_fp8_test.cc ("[gpu]") compares the product with Fp8GemmReference on the same
// codes and says so if they disagree.
#pragma once

#include <cublasLt.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "backend/kernels/cuda/cuda_util.h"
#include "backend/kernels/cuda/kernels.cuh"

namespace moesim::backend::gpu {

// codes [rows x cols] E4M3 and scales [rows x cols/128] from bf16 x [rows x cols], as
// QuantizeTiles1x128 does on the CPU (cols a multiple of 128, else cudaErrorInvalidValue).
cudaError_t LaunchQuantizeTiles1x128(const bf16* x, uint64_t rows, uint32_t cols, uint8_t* codes,
                                     float* scales, cudaStream_t stream);

// codes [rows x cols] E4M3 and scales [ceil(rows/128) x cols/128] from bf16 w [rows x cols], as
// QuantizeBlocks128 does on the CPU (cols a multiple of 128, else cudaErrorInvalidValue). A stack
// of matrices whose rows are each a multiple of 128 quantizes as one: their blocks never mix.
cudaError_t LaunchQuantizeBlocks128(const bf16* w, uint64_t rows, uint32_t cols, uint8_t* codes,
                                    float* scales, cudaStream_t stream);

class Fp8BlockGemm {
 public:
  Fp8BlockGemm() = default;
  ~Fp8BlockGemm();
  Fp8BlockGemm(const Fp8BlockGemm&) = delete;
  Fp8BlockGemm& operator=(const Fp8BlockGemm&) = delete;

  Status Init();
  // One GEMM as above. The first call of a shape asks cuBLASLt's heuristic for an algorithm and
  // keeps it; an Error names the shape when cuBLASLt has none (no Hopper GPU, or an older cuBLAS).
  Status Run(cudaStream_t stream, const uint8_t* x, const float* x_scales, const uint8_t* w,
             const float* w_scales, bf16* y, int m, int n, int k);

 private:
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  StatusOr<Plan*> PlanFor(int m, int n, int k);
  // Fills `p` for one shape; on an Error the caller destroys what it holds.
  Status Build(Plan& p, int m, int n, int k);
  static void Destroy(Plan& plan);

  cublasLtHandle_t lt_ = nullptr;
  DeviceBuffer workspace_;
  std::map<std::tuple<int, int, int>, Plan> plans_;
};

}  // namespace moesim::backend::gpu
