// NcclAllToAll with CUDA and NCCL (compiled only where both were found; see CMakeLists.txt).
#include "backend/bench/nccl_alltoall.h"

#include <algorithm>
#include <vector>

#include "backend/comm/nccl_check.h"

namespace moesim::backend {
namespace {

// Device memory freed on scope exit.
struct DeviceFloats {
  float* ptr = nullptr;
  ~DeviceFloats() {
    if (ptr != nullptr) cudaFree(ptr);
  }
};

}  // namespace

struct NcclAllToAll::Impl {
  Communicator& comm;
  ncclComm_t nccl = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;

  ~Impl() {
    if (start != nullptr) cudaEventDestroy(start);
    if (stop != nullptr) cudaEventDestroy(stop);
    if (stream != nullptr) cudaStreamDestroy(stream);
    if (nccl != nullptr) ncclCommDestroy(nccl);
  }

  // Fills, times `op` as nccl-tests does, checks: counts in floats per peer.
  template <typename Op>
  StatusOr<A2aRow> Run(const std::vector<uint64_t>& send_floats,
                       const std::vector<uint64_t>& recv_floats, uint64_t size, const A2aOptions& o,
                       Op op) {
    const uint32_t n = comm.size(), me = comm.rank();
    std::vector<float> host_send, host_recv;
    for (uint32_t dst = 0; dst < n; ++dst) {
      for (uint64_t i = 0; i < send_floats[dst]; ++i)
        host_send.push_back(A2aExpectedValue(me, dst, i));
    }
    uint64_t recv_total = 0;
    for (uint64_t c : recv_floats) recv_total += c;
    DeviceFloats send, recv;
    const size_t send_bytes = std::max<size_t>(host_send.size(), 1) * sizeof(float);
    const size_t recv_bytes = std::max<size_t>(recv_total, 1) * sizeof(float);
    MOEBENCH_CUDA_OK(cudaMalloc(&send.ptr, send_bytes));
    MOEBENCH_CUDA_OK(cudaMalloc(&recv.ptr, recv_bytes));
    MOEBENCH_CUDA_OK(cudaMemcpy(send.ptr, host_send.data(), host_send.size() * sizeof(float),
                                cudaMemcpyHostToDevice));
    MOEBENCH_CUDA_OK(cudaMemset(recv.ptr, 0xff, recv_bytes));
    for (uint32_t i = 0; i < o.warmup; ++i) MOESIM_RETURN_IF_ERROR(op(send.ptr, recv.ptr));
    MOEBENCH_CUDA_OK(cudaStreamSynchronize(stream));
    comm.Barrier();
    MOEBENCH_CUDA_OK(cudaEventRecord(start, stream));
    for (uint32_t i = 0; i < o.iterations; ++i) MOESIM_RETURN_IF_ERROR(op(send.ptr, recv.ptr));
    MOEBENCH_CUDA_OK(cudaEventRecord(stop, stream));
    MOEBENCH_CUDA_OK(cudaEventSynchronize(stop));
    float ms = 0;
    MOEBENCH_CUDA_OK(cudaEventElapsedTime(&ms, start, stop));
    const int64_t ns = static_cast<int64_t>(static_cast<double>(ms) * 1e6);
    std::vector<int64_t> slowest(1);
    comm.ReduceMax(std::span<const int64_t>(&ns, 1), slowest);

    host_recv.resize(recv_total);
    MOEBENCH_CUDA_OK(
        cudaMemcpy(host_recv.data(), recv.ptr, recv_total * sizeof(float), cudaMemcpyDeviceToHost));
    int64_t wrong = 0;
    uint64_t at = 0;
    for (uint32_t src = 0; src < n; ++src) {
      for (uint64_t i = 0; i < recv_floats[src]; ++i)
        wrong += host_recv[at++] != A2aExpectedValue(src, me, i);
    }
    std::vector<int64_t> all(me == 0 ? n : 0);
    comm.Gather(std::span<const int64_t>(&wrong, 1), all);

    A2aRow out;
    out.row = A2aRowOf(size, slowest[0], o.iterations, n);
    for (int64_t w : all) out.wrong += static_cast<uint64_t>(w);
    return out;
  }
};

NcclAllToAll::NcclAllToAll(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NcclAllToAll::~NcclAllToAll() = default;

StatusOr<std::unique_ptr<NcclAllToAll>> NcclAllToAll::Create(Communicator& comm) {
  int devices = 0;
  const cudaError_t e = cudaGetDeviceCount(&devices);
  // Every rank decides from its own node; a rank without its GPU fails, so all do (AnyRank).
  std::string problem;
  if (e != cudaSuccess || devices == 0) {
    problem = std::string("no CUDA device visible: ") +
              (e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount returned 0");
  } else if (comm.ranks_on_node() > static_cast<uint32_t>(devices)) {
    problem = std::to_string(comm.ranks_on_node()) + " ranks on this node need a GPU each, but " +
              std::to_string(devices) + " are visible (CUDA_VISIBLE_DEVICES)";
  }
  if (comm.AnyRank(!problem.empty())) {
    return Error(problem.empty() ? "another rank has no GPU" : problem);
  }
  std::unique_ptr<Impl> impl(new Impl{comm});
  MOEBENCH_CUDA_OK(cudaSetDevice(static_cast<int>(comm.local_rank())));
  ncclUniqueId id{};
  if (comm.rank() == 0) MOEBENCH_NCCL_OK(ncclGetUniqueId(&id));
  comm.Broadcast(&id, sizeof id);
  MOEBENCH_NCCL_OK(ncclCommInitRank(&impl->nccl, static_cast<int>(comm.size()), id,
                                    static_cast<int>(comm.rank())));
  MOEBENCH_CUDA_OK(cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking));
  MOEBENCH_CUDA_OK(cudaEventCreate(&impl->start));
  MOEBENCH_CUDA_OK(cudaEventCreate(&impl->stop));
  return std::unique_ptr<NcclAllToAll>(new NcclAllToAll(std::move(impl)));
}

StatusOr<A2aRow> NcclAllToAll::Measure(uint64_t size_bytes, const A2aOptions& o) {
  Impl& m = *impl_;
  const uint32_t n = m.comm.size();
  const uint64_t per_peer = std::max<uint64_t>(1, size_bytes / sizeof(float) / n);
  const std::vector<uint64_t> counts(n, per_peer);
  return m.Run(counts, counts, per_peer * n * sizeof(float), o,
               [&](float* send, float* recv) -> Status {
                 MOEBENCH_NCCL_OK(ncclAlltoAll(send, recv, per_peer, ncclFloat, m.nccl, m.stream));
                 return Status::Ok();
               });
}

StatusOr<A2aRow> NcclAllToAll::MeasureV(const models::TrafficMatrix& bytes, const A2aOptions& o) {
  Impl& m = *impl_;
  const uint32_t n = m.comm.size(), me = m.comm.rank();
  std::vector<uint64_t> send(n), recv(n);
  uint64_t largest = 0;
  for (uint32_t r = 0; r < n; ++r) {
    uint64_t sent = 0, received = 0;
    for (uint32_t j = 0; j < n; ++j) {
      sent += bytes.at(r, j);
      received += bytes.at(j, r);
    }
    largest = std::max({largest, sent, received});
  }
  for (uint32_t j = 0; j < n; ++j) {
    send[j] = bytes.at(me, j) / sizeof(float);
    recv[j] = bytes.at(j, me) / sizeof(float);
  }
  return m.Run(send, recv, largest, o, [&](float* s, float* r) -> Status {
    MOEBENCH_NCCL_OK(ncclGroupStart());
    for (uint32_t peer = 0; peer < n; ++peer) {
      if (send[peer] > 0) {
        MOEBENCH_NCCL_OK(
            ncclSend(s, send[peer], ncclFloat, static_cast<int>(peer), m.nccl, m.stream));
      }
      if (recv[peer] > 0) {
        MOEBENCH_NCCL_OK(
            ncclRecv(r, recv[peer], ncclFloat, static_cast<int>(peer), m.nccl, m.stream));
      }
      s += send[peer];
      r += recv[peer];
    }
    MOEBENCH_NCCL_OK(ncclGroupEnd());
    return Status::Ok();
  });
}

}  // namespace moesim::backend
