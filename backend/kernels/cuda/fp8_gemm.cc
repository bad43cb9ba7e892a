#include "backend/kernels/cuda/fp8_gemm.h"

#include <string>

namespace moesim::backend::gpu {
namespace {

// cuBLASLt's recommended workspace on Hopper.
constexpr uint64_t kWorkspaceBytes = 32ull << 20;

std::string Shape(int m, int n, int k) {
  return "m " + std::to_string(m) + ", n " + std::to_string(n) + ", k " + std::to_string(k);
}

template <typename T>
cublasStatus_t SetDesc(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t what,
                       const T& value) {
  return cublasLtMatmulDescSetAttribute(desc, what, &value, sizeof(value));
}

}  // namespace

void Fp8BlockGemm::Destroy(Plan& plan) {
  if (plan.d != nullptr) (void)cublasLtMatrixLayoutDestroy(plan.d);
  if (plan.b != nullptr) (void)cublasLtMatrixLayoutDestroy(plan.b);
  if (plan.a != nullptr) (void)cublasLtMatrixLayoutDestroy(plan.a);
  if (plan.desc != nullptr) (void)cublasLtMatmulDescDestroy(plan.desc);
  plan = Plan{};
}

Fp8BlockGemm::~Fp8BlockGemm() {
  for (auto& [shape, plan] : plans_) Destroy(plan);
  if (lt_ != nullptr) (void)cublasLtDestroy(lt_);
}

Status Fp8BlockGemm::Init() {
  MOESIM_CUBLAS_OK(cublasLtCreate(&lt_));
  MOESIM_ASSIGN_OR_RETURN(workspace_,
                          DeviceBuffer::Allocate(kWorkspaceBytes, "cuBLASLt workspace"));
  return Status::Ok();
}

StatusOr<Fp8BlockGemm::Plan*> Fp8BlockGemm::PlanFor(int m, int n, int k) {
  const auto key = std::make_tuple(m, n, k);
  if (auto it = plans_.find(key); it != plans_.end()) return &it->second;
  if (m <= 0 || n <= 0 || k <= 0 || k % 128 != 0) {
    return Error("Fp8BlockGemm: " + Shape(m, n, k) +
                 ": needs positive sizes and k a multiple of 128");
  }
  Plan p;
  if (Status built = Build(p, m, n, k); !built.ok()) {
    Destroy(p);
    return built.error();
  }
  return &plans_.emplace(key, p).first->second;
}

Status Fp8BlockGemm::Build(Plan& p, int m, int n, int k) {
  MOESIM_CUBLAS_OK(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  MOESIM_CUBLAS_OK(SetDesc(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T));
  MOESIM_CUBLAS_OK(SetDesc(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N));
  const int32_t a_mode = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
  const int32_t b_mode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
  MOESIM_CUBLAS_OK(SetDesc(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, a_mode));
  MOESIM_CUBLAS_OK(SetDesc(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, b_mode));
  MOESIM_CUBLAS_OK(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_8F_E4M3, k, n, k));
  MOESIM_CUBLAS_OK(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_8F_E4M3, k, m, k));
  MOESIM_CUBLAS_OK(cublasLtMatrixLayoutCreate(&p.d, CUDA_R_16BF, n, m, n));
  cublasLtMatmulPreference_t pref = nullptr;
  MOESIM_CUBLAS_OK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t workspace = kWorkspaceBytes;
  cublasStatus_t status = cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  if (status == CUBLAS_STATUS_SUCCESS) {
    status =
        cublasLtMatmulAlgoGetHeuristic(lt_, p.desc, p.a, p.b, p.d, p.d, pref, 1, &result, &found);
  }
  (void)cublasLtMatmulPreferenceDestroy(pref);
  if (status != CUBLAS_STATUS_SUCCESS || found == 0) {
    return Error(
        "Fp8BlockGemm: cuBLASLt has no FP8 GEMM with 1 x 128 and 128 x 128 block scales "
        "for " +
        Shape(m, n, k) + " here (" + cublasGetStatusString(status) +
        "; it needs a Hopper GPU and cuBLAS 12.9 or later)");
  }
  p.algo = result.algo;
  return Status::Ok();
}

Status Fp8BlockGemm::Run(cudaStream_t stream, const uint8_t* x, const float* x_scales,
                         const uint8_t* w, const float* w_scales, bf16* y, int m, int n, int k) {
  MOESIM_ASSIGN_OR_RETURN(Plan * p, PlanFor(m, n, k));
  const void* a_scale = w_scales;
  const void* b_scale = x_scales;
  MOESIM_CUBLAS_OK(SetDesc(p->desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, a_scale));
  MOESIM_CUBLAS_OK(SetDesc(p->desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, b_scale));
  const float alpha = 1.0f, beta = 0.0f;
  MOESIM_CUBLAS_OK(cublasLtMatmul(lt_, p->desc, &alpha, w, p->a, x, p->b, &beta, y, p->d, y, p->d,
                                  &p->algo, workspace_.as<void>(), kWorkspaceBytes, stream));
  return Status::Ok();
}

}  // namespace moesim::backend::gpu
