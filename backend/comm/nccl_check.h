// Checked CUDA-runtime and NCCL calls for moebench's NCCL code (backend/nccl_*.cc, compiled only
// where CUDA and NCCL were found): a failure returns an Error naming host:file:line, the call and
// the library's message, as nccl-tests prints them. Include only from .cc files.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>
#include <unistd.h>

#include <string>

#include "proto/status.h"

namespace moesim::backend {

inline std::string NcclWhere(const char* file, int line) {
  char host[256] = "?";
  gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + file + ":" + std::to_string(line);
}

}  // namespace moesim::backend

#define MOEBENCH_CUDA_OK(call)                                                                    \
  do {                                                                                            \
    const cudaError_t e_ = (call);                                                                \
    if (e_ != cudaSuccess) {                                                                      \
      return ::moesim::Error(::moesim::backend::NcclWhere(__FILE__, __LINE__) + ": " #call ": " + \
                             cudaGetErrorString(e_));                                             \
    }                                                                                             \
  } while (0)

#define MOEBENCH_NCCL_OK(call)                                                                    \
  do {                                                                                            \
    const ncclResult_t r_ = (call);                                                               \
    if (r_ != ncclSuccess) {                                                                      \
      return ::moesim::Error(::moesim::backend::NcclWhere(__FILE__, __LINE__) + ": " #call ": " + \
                             ncclGetErrorString(r_));                                             \
    }                                                                                             \
  } while (0)
