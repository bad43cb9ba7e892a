#include "backend/kernels/cuda/grouped_gemm.h"

#include <cmath>
#include <map>

#include "backend/kernels/bf16.h"

namespace moesim::backend::gpu {

Status UploadExpertWeights(const ExpertWeights& w, DeviceBuffer& w1, DeviceBuffer& w2) {
  const DeviceLayoutWeights t = ToDeviceLayout(w);
  MOESIM_CUDA_OK(cudaMemcpy(w1.as<void>(), t.w1.data(), t.w1.size() * 2, cudaMemcpyDefault));
  MOESIM_CUDA_OK(cudaMemcpy(w2.as<void>(), t.w2.data(), t.w2.size() * 2, cudaMemcpyDefault));
  return Status::Ok();
}

Status FillRandomExpertWeights(uint64_t experts, uint32_t hidden, uint32_t ffn, uint64_t seed,
                               DeviceBuffer& w1, DeviceBuffer& w2, cudaStream_t stream) {
  const uint64_t matrix = uint64_t{hidden} * ffn * experts;
  MOESIM_CUDA_OK(LaunchFillUniform(w1.as<bf16>(), 2 * matrix, seed,
                                   1.0f / std::sqrt(static_cast<float>(hidden)), stream));
  MOESIM_CUDA_OK(LaunchFillUniform(w2.as<bf16>(), matrix, seed + 1,
                                   1.0f / std::sqrt(static_cast<float>(ffn)), stream));
  MOESIM_CUDA_OK(cudaStreamSynchronize(stream));
  return Status::Ok();
}

GroupedGemm::~GroupedGemm() {
  if (staged_ != nullptr) (void)cudaEventDestroy(staged_);
  if (staging_ != nullptr) (void)cudaFreeHost(staging_);
}

Status GroupedGemm::Init(uint32_t experts) {
  experts_ = experts;
  MOESIM_CUDA_OK(cudaMallocHost(&staging_, sizeof(void*) * 3 * experts));
  MOESIM_CUDA_OK(cudaEventCreateWithFlags(&staged_, cudaEventDisableTiming));
  MOESIM_ASSIGN_OR_RETURN(device_pointers_,
                          DeviceBuffer::Allocate(sizeof(void*) * 3 * experts, "GEMM pointers"));
  return Status::Ok();
}

Status GroupedGemm::Upload(cudaStream_t stream, const bf16* in, const bf16* weights, bf16* out,
                           std::span<const uint64_t> offsets, int n, int k) {
  std::vector<const void*> key = {in, weights, out, reinterpret_cast<const void*>(intptr_t{n}),
                                  reinterpret_cast<const void*>(intptr_t{k})};
  for (uint64_t o : offsets) key.push_back(reinterpret_cast<const void*>(o));
  if (key == key_) return Status::Ok();

  // Groups: experts with equal row counts, in order of each count's first expert.
  std::map<uint64_t, std::vector<uint32_t>> by_rows;
  std::vector<uint64_t> order;
  for (uint32_t e = 0; e < experts_; ++e) {
    const uint64_t rows = offsets[e + 1] - offsets[e];
    if (rows == 0) continue;
    if (by_rows[rows].empty()) order.push_back(rows);
    by_rows[rows].push_back(e);
  }
  // cuBLAS's m, n, k per group: C [n x rows] = W^T [n x k] . rows^T [k x rows], column-major.
  m_.clear(), n_.clear(), k_.clear(), group_size_.clear();
  std::vector<uint32_t> experts_in_order;
  for (uint64_t rows : order) {
    m_.push_back(n);
    n_.push_back(static_cast<int>(rows));
    k_.push_back(k);
    group_size_.push_back(static_cast<int>(by_rows[rows].size()));
    for (uint32_t e : by_rows[rows]) experts_in_order.push_back(e);
  }
  const size_t groups = m_.size();
  trans_a_.assign(groups, CUBLAS_OP_T);
  trans_b_.assign(groups, CUBLAS_OP_N);
  lda_.assign(groups, k);  // also ldb
  ldc_.assign(groups, n);
  alpha_.assign(groups, 1.0f);
  beta_.assign(groups, 0.0f);
  problems_ = static_cast<uint32_t>(experts_in_order.size());

  MOESIM_CUDA_OK(cudaEventSynchronize(staged_));  // the previous upload has left staging_
  for (uint32_t i = 0; i < problems_; ++i) {
    const uint32_t e = experts_in_order[i];
    staging_[i] = const_cast<bf16*>(weights) + uint64_t{e} * n * k;
    staging_[problems_ + i] = const_cast<bf16*>(in) + offsets[e] * k;
    staging_[2 * problems_ + i] = out + offsets[e] * n;
  }
  MOESIM_CUDA_OK(cudaMemcpyAsync(device_pointers_.as<void*>(), staging_,
                                 sizeof(void*) * 3 * problems_, cudaMemcpyHostToDevice, stream));
  MOESIM_CUDA_OK(cudaEventRecord(staged_, stream));
  key_ = std::move(key);
  return Status::Ok();
}

Status GroupedGemm::Run(cublasHandle_t blas, cudaStream_t stream, GemmApi api, const bf16* in,
                        const bf16* weights, bf16* out, std::span<const uint64_t> offsets, int n,
                        int k) {
  if (offsets.size() != experts_ + 1) {
    return Error("GroupedGemm: " + std::to_string(offsets.size()) + " offsets for " +
                 std::to_string(experts_) + " experts");
  }
  const float alpha = 1.0f, beta = 0.0f;
  if (ResolveGemmApi(api, offsets) == GemmApi::kPerExpertLoop) {
    for (uint32_t e = 0; e < experts_; ++e) {
      const int rows = static_cast<int>(offsets[e + 1] - offsets[e]);
      if (rows == 0) continue;
      MOESIM_CUBLAS_OK(cublasGemmEx(
          blas, CUBLAS_OP_T, CUBLAS_OP_N, n, rows, k, &alpha, weights + uint64_t{e} * n * k,
          CUDA_R_16BF, k, in + offsets[e] * k, CUDA_R_16BF, k, &beta, out + offsets[e] * n,
          CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
    return Status::Ok();
  }
  MOESIM_RETURN_IF_ERROR(Upload(stream, in, weights, out, offsets, n, k));
  if (problems_ == 0) return Status::Ok();
  void** pointers = device_pointers_.as<void*>();
  MOESIM_CUBLAS_OK(cublasGemmGroupedBatchedEx(
      blas, trans_a_.data(), trans_b_.data(), m_.data(), n_.data(), k_.data(), alpha_.data(),
      pointers, CUDA_R_16BF, lda_.data(), pointers + problems_, CUDA_R_16BF, lda_.data(),
      beta_.data(), pointers + 2 * problems_, CUDA_R_16BF, ldc_.data(), static_cast<int>(m_.size()),
      group_size_.data(), CUBLAS_COMPUTE_32F));
  return Status::Ok();
}

}  // namespace moesim::backend::gpu
