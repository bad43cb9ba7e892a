// `moebench a2a [--device cpu|gpu] [-b 8] [-e 64M] [-f 2] [--matrix FILE] [-w 5] [--iters 20]
// [--json]`: nccl-tests' all-to-all sweep, measured; with --matrix, one all-to-all(v) of an
// nccl-tests alltoallv_perf matrix file (`moesim simulate --export-alltoallv` writes one).
#include <algorithm>
#include <memory>

#include "backend/bench/a2a_bench.h"
#include "backend/bench/nccl_alltoall.h"
#include "backend/cli/command.h"
#include "models/alltoallv_matrix.h"
#include "proto/byte_size.h"
#include "proto/nccl_tests_table.h"

namespace moesim::backend {
namespace {

struct A2aCommandOptions {
  std::string device = "cpu";
  std::string begin = "8", end = "64M";
  uint32_t factor = 2;
  std::string matrix;
  A2aOptions timing;
  bool json = false;
};

void PrintTable(const pb::CollectiveSweep& sweep, const std::vector<A2aRow>& rows,
                const A2aCommandOptions& o, std::ostream& out) {
  out << "# moebench a2a: " << sweep.op() << ", " << sweep.gpus() << " ranks, " << sweep.algo()
      << " (measured); warm-up " << o.timing.warmup << ", " << o.timing.iterations
      << " iterations; time = the slowest rank's mean (nccl-tests -a 3)\n";
  if (!o.matrix.empty()) {
    out << "# matrix " << o.matrix << ": size = the largest bytes a rank sends or receives\n";
  }
  NcclTestsTable table;
  // In place where every row measured it (MPI_Alltoall); alltoallv and NCCL run out-of-place only.
  table.in_place = std::all_of(rows.begin(), rows.end(),
                               [](const A2aRow& r) { return r.row.has_in_place_time_us(); });
  out << (table.in_place ? "# nccl-tests' layout; in-place: one buffer for send and receive\n"
                         : "# nccl-tests' layout; measured out-of-place only (no in-place half)\n")
      << "#\n";
  for (const A2aRow& r : rows) {
    table.wrong.push_back(r.wrong);
    table.in_place_wrong.push_back(r.in_place_wrong);
  }
  WriteNcclTestsTable(sweep, table, out);
}

int Run(const A2aCommandOptions& o, CommandIo& io) {
  const uint32_t ranks = io.comm.size();
  models::TrafficMatrix matrix;
  std::vector<uint64_t> sizes;
  if (!o.matrix.empty()) {
    auto m = models::ReadAlltoallvMatrix(o.matrix, ranks);
    if (!m.ok()) return io.Fail(m.error());
    matrix = std::move(*m);
  } else {
    auto begin = ParseByteSize(o.begin, "-b");
    if (!begin.ok()) return io.Fail(begin.error());
    auto end = ParseByteSize(o.end, "-e");
    if (!end.ok()) return io.Fail(end.error());
    if (*begin == 0 || *end < *begin || o.factor < 2) {
      return io.Fail(InputError({}, "-b/-e/-f",
                                o.begin + "/" + o.end + "/" + std::to_string(o.factor),
                                "an empty sweep", "0 < -b <= -e, -f >= 2"));
    }
    for (uint64_t size = *begin; size <= *end; size *= o.factor) {
      sizes.push_back(size);
      if (size > UINT64_MAX / o.factor) break;
    }
  }
  if (o.timing.iterations < 1)
    return io.Fail(InputError({}, "--iters", "0", "nothing to time", ">= 1"));

  std::unique_ptr<NcclAllToAll> nccl;
  if (o.device == "gpu") {
    auto created = NcclAllToAll::Create(io.comm);
    if (!created.ok()) return io.Fail(Error("--device gpu: " + created.error().message()));
    nccl = std::move(*created);
  }
  pb::CollectiveSweep sweep;
  sweep.set_op(o.matrix.empty() ? "alltoall" : "alltoallv");
  sweep.set_algo(o.device == "gpu" ? (o.matrix.empty() ? "ncclAlltoAll" : "ncclSend/ncclRecv")
                                   : (o.matrix.empty() ? "MPI_Alltoall" : "MPI_Alltoallv"));
  sweep.set_cluster(o.device);
  sweep.set_gpus(ranks);
  sweep.set_fidelity("measured");
  std::vector<A2aRow> rows;
  auto add = [&](StatusOr<A2aRow> row) {
    if (!row.ok()) return Status(row.error());
    *sweep.add_rows() = row->row;
    rows.push_back(*std::move(row));
    return Status::Ok();
  };
  if (!o.matrix.empty()) {
    const Status s =
        add(nccl ? nccl->MeasureV(matrix, o.timing) : MeasureAllToAllV(io.comm, matrix, o.timing));
    if (!s.ok()) return io.Fail(s.error());
  }
  for (uint64_t size : sizes) {
    const Status s =
        add(nccl ? nccl->Measure(size, o.timing) : MeasureAllToAll(io.comm, size, o.timing));
    if (!s.ok()) return io.Fail(s.error());
  }
  if (!io.root()) return 0;
  if (o.json) {
    const Status s = WriteResult(sweep, "", true, io);
    if (!s.ok()) return io.Fail(s.error());
  } else {
    PrintTable(sweep, rows, o, io.out);
  }
  for (const A2aRow& r : rows) {
    const uint64_t w = r.wrong + r.in_place_wrong.value_or(0);
    if (w != 0)
      return io.Fail(Error("all-to-all delivered " + std::to_string(w) + " wrong elements"));
  }
  return 0;
}

}  // namespace

void AddA2aCommand(CLI::App& app, CommandAction* chosen) {
  auto o = std::make_shared<A2aCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "a2a", "Measure all-to-all(v) bandwidth in nccl-tests' columns (MPI on CPUs, NCCL on GPUs)");
  cmd->add_option("--device", o->device, "cpu: MPI_Alltoall(v); gpu: NCCL")
      ->check(CLI::IsMember({"cpu", "gpu"}))
      ->capture_default_str();
  cmd->add_option("-b,--minbytes", o->begin, "Smallest size (K, M, G suffixes)")
      ->capture_default_str();
  cmd->add_option("-e,--maxbytes", o->end, "Largest size")->capture_default_str();
  cmd->add_option("-f,--stepfactor", o->factor, "Size multiplier between rows")
      ->capture_default_str();
  cmd->add_option("--matrix", o->matrix,
                  "nccl-tests alltoallv matrix file (cell [i][j] = bytes rank i sends rank j); "
                  "-b/-e/-f are then ignored");
  cmd->add_option("-w,--warmup", o->timing.warmup, "Untimed iterations")->capture_default_str();
  cmd->add_option("-n,--iters", o->timing.iterations, "Timed iterations")->capture_default_str();
  cmd->add_flag("--json", o->json, "Print the sweep as JSON (moesim collective's schema)");
  cmd->callback([o, chosen] { *chosen = [o](CommandIo& io) { return Run(*o, io); }; });
}

}  // namespace moesim::backend
