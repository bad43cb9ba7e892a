// NcclAllToAll where moebench was built without CUDA and NCCL: a clear error, nothing else.
#include "backend/bench/nccl_alltoall.h"

namespace moesim::backend {

struct NcclAllToAll::Impl {};

NcclAllToAll::NcclAllToAll(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NcclAllToAll::~NcclAllToAll() = default;

StatusOr<std::unique_ptr<NcclAllToAll>> NcclAllToAll::Create(Communicator&) {
  return Error(
      "moebench was built without CUDA and NCCL (CMake found no CUDA toolkit or no "
      "nccl.h / libnccl); rebuild where they are, or use --device cpu");
}

StatusOr<A2aRow> NcclAllToAll::Measure(uint64_t, const A2aOptions&) {
  return Error("NCCL is not built in");
}

StatusOr<A2aRow> NcclAllToAll::MeasureV(const models::TrafficMatrix&, const A2aOptions&) {
  return Error("NCCL is not built in");
}

}  // namespace moesim::backend
