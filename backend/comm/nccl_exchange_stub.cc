// NcclExchange where moebench was built without CUDA and NCCL: a clear error, nothing else.
#include "backend/comm/nccl_exchange.h"

namespace moesim::backend {

struct NcclExchange::Impl {};

NcclExchange::NcclExchange(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NcclExchange::~NcclExchange() = default;

StatusOr<std::unique_ptr<NcclExchange>> NcclExchange::Create(Communicator&, int, uint32_t) {
  return Error(
      "moebench was built without NCCL (CMake found no CUDA toolkit or no nccl.h / libnccl); "
      "rebuild where they are, or use --device cpu");
}

StatusOr<std::vector<uint64_t>> NcclExchange::ExchangeCounts(std::span<const uint64_t>, void*) {
  return Error("NCCL is not built in");
}

Status NcclExchange::ExchangeRows(const void*, std::span<const uint64_t>, void*,
                                  std::span<const uint64_t>, uint64_t, bool, void*) {
  return Error("NCCL is not built in");
}

}  // namespace moesim::backend
