// A simulated step as MLCommons Chakra execution traces, the workload input of ASTRA-sim: one file
// per rank, DIR/PREFIX.RANK.et, and DIR/comm_group.json (`moesim export chakra`).
//
//   MOESIM_ASSIGN_OR_RETURN(ScenarioStep step, SimulateScenarioStep(s, fidelity, hardware));
//   MOESIM_ASSIGN_OR_RETURN(ChakraExport e, ChakraExport::Create(step, s.workload.plan,
//                                                                 s.workload.model));
//   ChakraRankTrace t = e.Rank(5);                 // in memory
//   MOESIM_ASSIGN_OR_RETURN(ChakraWritten w, WriteChakraTraces(e, "out", {}));  // files
//
// What a rank's file holds (schema: proto/chakra_et.proto, Chakra's et_def.proto): a
// GlobalMetadata, then the rank's nodes in program order, each node's data_deps naming the node
// before it (one chain per rank):
//   for each pipeline slice of the rank's stage, in 1F1B order (PipelineSlices,
//   sim/step/step_report.h):
//     forward of micro-batch i:  RECV from the stage before (not on the first stage), the stage's
//                                forward ops, SEND to the stage after (not on the last)
//     backward (training):       RECV from the stage after, the stage's backward ops (recompute
//                                included), SEND to the stage before
//   then, training: the gradients' REDUCE_SCATTER (dense over dp x cp, expert over edp), the
//   optimizer, and the ALL_GATHER of the updated weights (distributed optimizer); or ALL_REDUCE
//   of the gradients and then the optimizer (without).
// A compute op is a COMP_NODE (num_ops = its FLOPs, tensor_size = the bytes its kernels read and
// write, duration_micros and duration_ns = moesim's time); a collective a COMM_COLL_NODE
// (comm_type, comm_size = its buffer as nccl-tests sizes it, pg_name = its group's id in
// comm_group.json); a pipeline transfer a COMM_SEND_NODE / COMM_RECV_NODE (comm_src, comm_dst,
// comm_tag, comm_size). Attribute names and value types are those Chakra's generators write and
// ASTRA-sim's feeder reads. A SEND does not hold up the chain: the node after it depends on the
// node before it (sends are asynchronous, as Megatron's isend), so the chains cannot deadlock on a
// send.
//
// Per rank (the same stage's ranks differ only here): the EP all-to-alls' comm_size is what this
// EP rank sends to the others (StepReport::dispatch_bytes, combine_bytes; their gradients the
// same), the expert op's FLOPs and bytes are this EP rank's (StepReport::expert_work). Durations
// are moesim's, of the slowest EP rank. A collective over one rank is left out.
//
// Thread-safety: a ChakraExport is immutable after Create; Rank() may run on many threads.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "models/plan.h"
#include "proto/chakra_et.pb.h"
#include "proto/model.pb.h"
#include "proto/status.h"
#include "sim/step/scenario_run.h"
#include "sim/step/step_report.h"

namespace moesim::sim {

// Chakra's schema version the files declare (GlobalMetadata.version), as its generators write it.
inline constexpr char kChakraSchemaVersion[] = "0.0.4";

// One rank's trace in file order.
struct ChakraRankTrace {
  ChakraProtoMsg::GlobalMetadata metadata;
  std::vector<ChakraProtoMsg::Node> nodes;
};

// The communicator groups every rank's collectives name: id (from 1; ASTRA-sim reads "0" as all
// ranks) -> ranks, ascending.
using ChakraGroups = std::map<uint32_t, std::vector<uint32_t>>;

// A rank's groups by id in ChakraGroups (0: a group of one rank, whose collectives are left out).
struct ChakraRankGroups {
  uint32_t tp = 0, cp = 0, ep = 0, etp = 0, dp_cp = 0, edp = 0;
};

// Refers to the step, plan and model it was created from: they must outlive it.
class ChakraExport {
 public:
  // Errors: a schedule other than 1F1B (the order written is 1F1B's); a step that replays a
  // trace (each micro-batch's MoE layers their own routing: one op list per stage cannot hold
  // them); a step without every
  // stage's ops, or with a communication op this export cannot name (a bug, not bad input).
  static StatusOr<ChakraExport> Create(const ScenarioStep& step, const models::Plan& plan,
                                       const pb::ModelSpec& model);

  uint32_t ranks() const { return plan_.world(); }
  ChakraRankTrace Rank(uint32_t rank) const;
  // How many nodes Rank(rank) holds, counted without building them (O(ops of a micro-batch)).
  uint64_t Nodes(uint32_t rank) const;
  const ChakraGroups& groups() const { return groups_; }
  // comm_group.json: {"1": [0, 1], "2": [2, 3], ...}, ids in order, as ASTRA-sim's
  // --comm-group-configuration reads it.
  std::string CommGroupJson() const;

 private:
  ChakraExport(const ScenarioStep& step, const models::Plan& plan, const pb::ModelSpec& model);

  const ScenarioStep& step_;
  const models::Plan& plan_;
  const pb::ModelSpec& model_;
  std::vector<PipelineSlice> slices_;
  std::vector<ChakraRankGroups> rank_groups_;
  ChakraGroups groups_;
};

// What the traces may take on disk in all by default (ChakraExportOptions::max_bytes).
inline constexpr uint64_t kChakraMaxBytes = uint64_t{4} << 30;
// Bytes a node takes in a file, for the estimate checked against max_bytes: an upper end of
// what the files measure (111 B a node for Mixtral-8x7B on 256 GPUs, README "Chakra traces").
inline constexpr uint64_t kChakraBytesPerNode = 128;

struct ChakraExportOptions {
  // Files DIR/PREFIX.RANK.et: ASTRA-sim's --workload-configuration is DIR/PREFIX.
  std::string prefix = "workload";
  // Write into a DIR that is not empty, replacing files of the same names; without it such a DIR
  // is refused (nothing is removed either way).
  bool force = false;
  // Traces estimated larger in all (Nodes() x kChakraBytesPerNode) are refused before anything is
  // written.
  uint64_t max_bytes = kChakraMaxBytes;
};

struct ChakraWritten {
  uint32_t files = 0;  // trace files, one per rank
  uint64_t nodes = 0;  // over every rank
  uint64_t bytes = 0;  // over every trace file
  uint64_t largest_file = 0;
  uint32_t groups = 0;
};

// Writes every rank's trace and comm_group.json into `dir` (created if absent), each file whole or
// absent (proto/atomic_file.h). Errors: `dir` not empty without force, not a directory, or not
// writable; a PREFIX that is empty or holds a '/'; traces estimated past options.max_bytes or past
// the folder's free space.
StatusOr<ChakraWritten> WriteChakraTraces(const ChakraExport& e, const std::string& dir,
                                          const ChakraExportOptions& options);

}  // namespace moesim::sim
