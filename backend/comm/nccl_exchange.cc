// NcclExchange with CUDA and NCCL (compiled only where both were found; see CMakeLists.txt).
// Compiled here; not yet run on a GPU.
#include "backend/comm/nccl_exchange.h"

#include <algorithm>

#include "backend/comm/nccl_check.h"

namespace moesim::backend {

struct NcclExchange::Impl {
  uint32_t world = 0, per_peer = 0;
  int device = 0;
  ncclComm_t nccl = nullptr;
  uint64_t* host = nullptr;    // pinned: send counts, then received counts, world * per_peer each
  uint64_t* counts = nullptr;  // device: the same two arrays

  ~Impl() {
    if (nccl != nullptr) (void)ncclCommDestroy(nccl);
    if (counts != nullptr) (void)cudaFree(counts);
    if (host != nullptr) (void)cudaFreeHost(host);
  }
  uint64_t words() const { return uint64_t{world} * per_peer; }
};

NcclExchange::NcclExchange(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NcclExchange::~NcclExchange() = default;

StatusOr<std::unique_ptr<NcclExchange>> NcclExchange::Create(Communicator& comm, int device,
                                                             uint32_t counts_per_peer) {
  auto impl = std::make_unique<Impl>();
  impl->world = comm.size();
  impl->per_peer = std::max(counts_per_peer, 1u);
  impl->device = device;
  // Every rank sets up its device; a rank that cannot fails, and so do all (no one is left in
  // ncclCommInitRank waiting for it).
  std::string problem;
  if (const cudaError_t e = cudaSetDevice(device); e != cudaSuccess) {
    problem = NcclWhere(__FILE__, __LINE__) + ": cudaSetDevice(" + std::to_string(device) +
              "): " + cudaGetErrorString(e);
  }
  if (comm.AnyRank(!problem.empty())) {
    return Error(problem.empty() ? "another rank could not select its GPU" : problem);
  }
  ncclUniqueId id{};
  ncclResult_t made = ncclSuccess;
  if (comm.rank() == 0) made = ncclGetUniqueId(&id);
  if (comm.AnyRank(made != ncclSuccess)) {
    return Error(made != ncclSuccess ? NcclWhere(__FILE__, __LINE__) +
                                           ": ncclGetUniqueId: " + ncclGetErrorString(made)
                                     : "rank 0 could not make the NCCL unique id");
  }
  comm.Broadcast(&id, sizeof id);
  MOEBENCH_NCCL_OK(ncclCommInitRank(&impl->nccl, static_cast<int>(comm.size()), id,
                                    static_cast<int>(comm.rank())));
  MOEBENCH_CUDA_OK(cudaMallocHost(&impl->host, 2 * impl->words() * sizeof(uint64_t)));
  MOEBENCH_CUDA_OK(cudaMalloc(&impl->counts, 2 * impl->words() * sizeof(uint64_t)));
  return std::unique_ptr<NcclExchange>(new NcclExchange(std::move(impl)));
}

StatusOr<std::vector<uint64_t>> NcclExchange::ExchangeCounts(std::span<const uint64_t> send,
                                                             void* stream_handle) {
  Impl& m = *impl_;
  if (send.size() != m.words()) {
    return Error("NcclExchange::ExchangeCounts: " + std::to_string(send.size()) + " counts, want " +
                 std::to_string(m.world) + " ranks x " + std::to_string(m.per_peer));
  }
  auto stream = static_cast<cudaStream_t>(stream_handle);
  const uint64_t n = m.words(), bytes = n * sizeof(uint64_t);
  std::copy(send.begin(), send.end(), m.host);
  MOEBENCH_CUDA_OK(cudaSetDevice(m.device));
  MOEBENCH_CUDA_OK(cudaMemcpyAsync(m.counts, m.host, bytes, cudaMemcpyHostToDevice, stream));
  MOEBENCH_NCCL_OK(ncclAlltoAll(m.counts, m.counts + n, m.per_peer, ncclUint64, m.nccl, stream));
  MOEBENCH_CUDA_OK(
      cudaMemcpyAsync(m.host + n, m.counts + n, bytes, cudaMemcpyDeviceToHost, stream));
  MOEBENCH_CUDA_OK(cudaStreamSynchronize(stream));
  return std::vector<uint64_t>(m.host + n, m.host + 2 * n);
}

Status NcclExchange::ExchangeRows(const void* send, std::span<const uint64_t> send_rows, void* recv,
                                  std::span<const uint64_t> recv_rows, uint64_t row_bytes,
                                  bool equal_splits, void* stream_handle) {
  Impl& m = *impl_;
  if (send_rows.size() != m.world || recv_rows.size() != m.world) {
    return Error("NcclExchange::ExchangeRows: counts for " + std::to_string(send_rows.size()) +
                 " and " + std::to_string(recv_rows.size()) + " ranks, the communicator has " +
                 std::to_string(m.world));
  }
  auto stream = static_cast<cudaStream_t>(stream_handle);
  MOEBENCH_CUDA_OK(cudaSetDevice(m.device));
  // Bytes as ncclUint8: the payload's type does not matter to a copy.
  if (equal_splits) {
    if (send_rows[0] == 0) return Status::Ok();
    MOEBENCH_NCCL_OK(ncclAlltoAll(send, recv, send_rows[0] * row_bytes, ncclUint8, m.nccl, stream));
    return Status::Ok();
  }
  auto* s = static_cast<const char*>(send);
  auto* r = static_cast<char*>(recv);
  MOEBENCH_NCCL_OK(ncclGroupStart());
  for (uint32_t peer = 0; peer < m.world; ++peer) {
    if (send_rows[peer] > 0) {
      MOEBENCH_NCCL_OK(ncclSend(s, send_rows[peer] * row_bytes, ncclUint8, static_cast<int>(peer),
                                m.nccl, stream));
    }
    if (recv_rows[peer] > 0) {
      MOEBENCH_NCCL_OK(ncclRecv(r, recv_rows[peer] * row_bytes, ncclUint8, static_cast<int>(peer),
                                m.nccl, stream));
    }
    s += send_rows[peer] * row_bytes;
    r += recv_rows[peer] * row_bytes;
  }
  MOEBENCH_NCCL_OK(ncclGroupEnd());
  return Status::Ok();
}

}  // namespace moesim::backend
