#include "sim/report/chakra_export.h"

#include <google/protobuf/util/delimited_message_util.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <system_error>

#include "models/model_spec.h"
#include "proto/atomic_file.h"
#include "proto/host_memory.h"

namespace moesim::sim {
namespace {

using ChakraProtoMsg::AttributeProto;
using ChakraProtoMsg::CollectiveCommType;
using ChakraProtoMsg::Node;

AttributeProto* AddAttr(Node& node, const char* name) {
  AttributeProto* a = node.add_attr();
  a->set_name(name);
  return a;
}

// Signed 64-bit as Chakra's generators write num_ops and comm_size (int64_val); moesim's counts
// stay far below 2^63 (KernelFlopsUpperBound, step.h).
int64_t Signed(uint64_t x) { return static_cast<int64_t>(x); }

// duration_micros rounded to the nearest microsecond, duration_ns rounded up (Duration's report
// rounding): ASTRA-sim replays duration_micros, the ns keep moesim's figure for a reader.
void SetDuration(Node& node, Duration time) {
  node.set_duration_micros(static_cast<uint64_t>((time.picoseconds() + 500'000) / 1'000'000));
  AddAttr(node, "duration_ns")->set_int64_val(time.nanoseconds_ceil());
}

// Builds one rank's chain: each node depends on the last node that is not a SEND.
class ChakraChain {
 public:
  explicit ChakraChain(std::vector<Node>* nodes) : nodes_(nodes) {}

  Node& Add(std::string name, ChakraProtoMsg::NodeType type, bool holds_chain = true) {
    Node& n = nodes_->emplace_back();
    n.set_id(nodes_->size() - 1);
    n.set_name(std::move(name));
    n.set_type(type);
    if (last_) n.add_data_deps(*last_);
    if (holds_chain) last_ = n.id();
    AddAttr(n, "is_cpu_op")->set_bool_val(false);
    return n;
  }

  void Compute(std::string name, const KernelWork& work, Duration time) {
    Node& n = Add(std::move(name), ChakraProtoMsg::COMP_NODE);
    AddAttr(n, "num_ops")->set_int64_val(Signed(work.flops));
    AddAttr(n, "tensor_size")->set_uint64_val(work.bytes);
    SetDuration(n, time);
  }

  void Collective(std::string name, CollectiveCommType type, uint64_t bytes, uint32_t group,
                  Duration time) {
    Node& n = Add(std::move(name), ChakraProtoMsg::COMM_COLL_NODE);
    AddAttr(n, "comm_type")->set_int64_val(type);
    AddAttr(n, "comm_size")->set_int64_val(Signed(bytes));
    AddAttr(n, "pg_name")->set_string_val(std::to_string(group));
    SetDuration(n, time);
  }

  void PointToPoint(std::string name, bool send, uint32_t src, uint32_t dst, uint32_t tag,
                    uint64_t bytes, Duration time) {
    Node& n =
        Add(std::move(name), send ? ChakraProtoMsg::COMM_SEND_NODE : ChakraProtoMsg::COMM_RECV_NODE,
            /*holds_chain=*/!send);
    AddAttr(n, "comm_src")->set_int32_val(static_cast<int32_t>(src));
    AddAttr(n, "comm_dst")->set_int32_val(static_cast<int32_t>(dst));
    AddAttr(n, "comm_tag")->set_int32_val(static_cast<int32_t>(tag));
    AddAttr(n, "comm_size")->set_int64_val(Signed(bytes));
    SetDuration(n, time);
  }

 private:
  std::vector<Node>* nodes_;
  std::optional<uint64_t> last_;
};

// The collective of a communication op of the step (sim/step/step_ops.cc names them), and the
// group it runs on; in the backward an all-gather's gradient is a reduce-scatter and the other way
// round (moesim times them alike). Unknown names are a bug here, not bad input.
struct OpCollective {
  CollectiveCommType type;
  uint32_t group;
};
std::optional<OpCollective> CollectiveOf(const StepOp& op, const ChakraRankGroups& g) {
  const bool back = op.pass == "backward";
  const CollectiveCommType gather =
      back ? ChakraProtoMsg::REDUCE_SCATTER : ChakraProtoMsg::ALL_GATHER;
  const CollectiveCommType scatter =
      back ? ChakraProtoMsg::ALL_GATHER : ChakraProtoMsg::REDUCE_SCATTER;
  const std::string& n = op.name;
  if (op.alltoall) return OpCollective{ChakraProtoMsg::ALL_TO_ALL, g.ep};
  if (n.starts_with("tp-allgather")) return OpCollective{gather, g.tp};
  if (n.starts_with("tp-reducescatter")) return OpCollective{scatter, g.tp};
  if (n.starts_with("cp-allgather")) return OpCollective{gather, g.cp};
  if (n == "etp-allgather") return OpCollective{gather, g.etp};
  if (n == "etp-reducescatter") return OpCollective{scatter, g.etp};
  return std::nullopt;
}

// Whether `op` is written on a rank of groups `g`: compute always, a collective unless its group is
// one rank (nothing to exchange).
bool Written(const StepOp& op, const ChakraRankGroups& g) {
  if (!op.communication) return true;
  const std::optional<OpCollective> c = CollectiveOf(op, g);  // known: Create checked
  return c && c->group != 0;
}

}  // namespace

ChakraExport::ChakraExport(const ScenarioStep& step, const models::Plan& plan,
                           const pb::ModelSpec& model)
    : step_(step), plan_(plan), model_(model) {}

StatusOr<ChakraExport> ChakraExport::Create(const ScenarioStep& step, const models::Plan& plan,
                                            const pb::ModelSpec& model) {
  if (step.report.schedule != PipelineSchedule::k1F1B) {
    return InputError({}, "step.schedule", std::string(ToString(step.report.schedule)),
                      "moesim export chakra writes each rank's ops in 1F1B order", "1f1b");
  }
  if (!step.report.routing.empty()) {
    return InputError({}, "routing", "trace",
                      "moesim export chakra writes one MoE layer's routing for every layer and "
                      "micro-batch, and this step replays a trace (" +
                          step.report.routing + ")",
                      "routing { synthetic { ... } }");
  }
  if (step.report.stages.size() != plan.sizes().pp) {
    return Error("the step holds " + std::to_string(step.report.stages.size()) +
                 " stages' ops, not pp = " + std::to_string(plan.sizes().pp));
  }
  for (const StageOps& stage : step.report.stages) {
    for (const std::vector<StepOp>* pass : {&stage.forward, &stage.backward}) {
      for (const StepOp& op : *pass) {
        if (op.communication && !CollectiveOf(op, {})) {
          return Error("moesim export chakra does not know the collective of op \"" + op.name +
                       "\" (sim/report/chakra_export.cc CollectiveOf)");
        }
      }
    }
  }
  ChakraExport e(step, plan, model);
  e.slices_ = PipelineSlices(step.result);
  // Group ids in order of the first rank that names them, and of the kinds below.
  std::map<std::vector<uint32_t>, uint32_t> ids;
  auto id = [&](const std::vector<uint32_t>& group) -> uint32_t {
    if (group.size() < 2) return 0;
    const auto [it, added] = ids.emplace(group, static_cast<uint32_t>(ids.size() + 1));
    if (added) e.groups_[it->second] = group;
    return it->second;
  };
  for (uint32_t r = 0; r < plan.world(); ++r) {
    ChakraRankGroups g;
    g.tp = id(plan.TpGroup(r));
    g.cp = id(plan.CpGroup(r));
    g.ep = id(plan.EpGroup(r));
    g.etp = id(plan.EtpGroup(r));
    g.dp_cp = id(plan.DpCpGroup(r));
    g.edp = id(plan.EdpGroup(r));
    e.rank_groups_.push_back(g);
  }
  for (auto& [group_id, ranks] : e.groups_) std::sort(ranks.begin(), ranks.end());
  return e;
}

ChakraRankTrace ChakraExport::Rank(uint32_t rank) const {
  const StepReport& report = step_.report;
  const ChakraRankGroups& g = rank_groups_.at(rank);
  const uint32_t stage = plan_.PpStage(rank), pp = plan_.sizes().pp;
  const uint32_t ep_rank = plan_.EpRank(rank);
  const std::vector<uint32_t> pipe = plan_.PpGroup(rank);
  const StageOps& ops = report.stages.at(stage);
  const bool training = report.mode == StepMode::kTraining;

  ChakraRankTrace t;
  t.metadata.set_version(kChakraSchemaVersion);
  auto meta = [&](const char* name) {
    AttributeProto* a = t.metadata.add_attr();
    a->set_name(name);
    return a;
  };
  meta("producer")->set_string_val("moesim export chakra");
  meta("scenario")->set_string_val(step_.result.scenario());
  meta("rank")->set_uint32_val(rank);
  meta("pipeline_stage")->set_uint32_val(stage);
  meta("micro_batches")->set_uint32_val(report.micro_batches);

  ChakraChain chain(&t.nodes);
  auto emit = [&](const StepOp& op, const std::string& where) {
    const std::string name = where + "/L" + std::to_string(op.layer) + "/" + op.name;
    if (!op.communication) {
      KernelWork work = op.work;
      if (op.name == "expert" && ep_rank < report.expert_work.size()) {
        const ExpertRankWork& w = report.expert_work[ep_rank];
        work = op.pass == "backward" ? w.backward : w.forward;
      }
      chain.Compute(name, work, op.time);
      return;
    }
    if (!Written(op, g)) return;
    const std::optional<OpCollective> c = CollectiveOf(op, g);
    uint64_t bytes = op.work.bytes;
    if (op.alltoall) {
      const std::vector<uint64_t>& per_rank =
          op.name == "combine" ? report.combine_bytes : report.dispatch_bytes;
      if (ep_rank < per_rank.size()) bytes = per_rank[ep_rank];
    }
    chain.Collective(name, c->type, bytes, c->group, op.time);
  };

  // Tags: unique per (sender stage, micro-batch, direction), the same at both ends.
  auto tag = [&](uint32_t from_stage, uint32_t mb, bool backward) {
    return 1 + (mb * 2 + (backward ? 1 : 0)) * pp + from_stage;
  };
  const uint64_t p2p = report.pipeline_send_bytes;
  for (const PipelineSlice& s : slices_) {
    if (s.stage != stage) continue;
    const std::string mb = "mb" + std::to_string(s.micro_batch);
    if (s.forward) {
      if (stage > 0) {
        chain.PointToPoint(mb + "/forward/recv", false, pipe[stage - 1], rank,
                           tag(stage - 1, s.micro_batch, false), p2p, report.pipeline_send);
      }
      for (const StepOp& op : ops.forward) emit(op, mb + "/forward");
      if (stage + 1 < pp) {
        chain.PointToPoint(mb + "/forward/send", true, rank, pipe[stage + 1],
                           tag(stage, s.micro_batch, false), p2p, report.pipeline_send);
      }
    } else {
      if (stage + 1 < pp) {
        chain.PointToPoint(mb + "/backward/recv", false, pipe[stage + 1], rank,
                           tag(stage + 1, s.micro_batch, true), p2p, report.pipeline_send);
      }
      for (const StepOp& op : ops.backward) emit(op, mb + "/" + op.pass);
      if (stage > 0) {
        chain.PointToPoint(mb + "/backward/send", true, rank, pipe[stage - 1],
                           tag(stage, s.micro_batch, true), p2p, report.pipeline_send);
      }
    }
  }
  if (!training) return t;

  // The gradients (kGradBytes each) and, with the distributed optimizer, the updated weights in
  // the model's dtype. Their durations are not written per group by the step: 0 here, ASTRA-sim
  // times them.
  const uint32_t elem = models::BytesPerElement(model_.dtype());
  const bool sharded = step_.config.distributed_optimizer;
  const struct {
    const char* name;
    uint32_t group;
    uint64_t params;
  } syncs[] = {{"dense", g.dp_cp, ops.dense_params}, {"expert", g.edp, ops.expert_params}};
  for (const auto& s : syncs) {
    if (s.group == 0 || s.params == 0) continue;
    chain.Collective(
        std::string("grad-sync/") + s.name + (sharded ? "/reduce-scatter" : "/all-reduce"),
        sharded ? ChakraProtoMsg::REDUCE_SCATTER : ChakraProtoMsg::ALL_REDUCE,
        s.params * kGradBytes, s.group, Duration());
  }
  chain.Compute("optimizer", ops.optimizer_work, ops.optimizer);
  if (!sharded) return t;
  for (const auto& s : syncs) {
    if (s.group == 0 || s.params == 0) continue;
    chain.Collective(std::string("grad-sync/") + s.name + "/all-gather", ChakraProtoMsg::ALL_GATHER,
                     s.params * elem, s.group, Duration());
  }
  return t;
}

uint64_t ChakraExport::Nodes(uint32_t rank) const {
  const ChakraRankGroups& g = rank_groups_.at(rank);
  const uint32_t stage = plan_.PpStage(rank), pp = plan_.sizes().pp;
  const StageOps& ops = step_.report.stages.at(stage);
  auto written = [&](const std::vector<StepOp>& pass) {
    uint64_t n = 0;
    for (const StepOp& op : pass) n += Written(op, g) ? 1 : 0;
    return n;
  };
  // Each slice: its ops, a RECV from the neighbour before it in the pass and a SEND to the one
  // after (forward: stage - 1 and stage + 1; backward the other way), where they exist.
  const uint64_t neighbours = (stage > 0 ? 1 : 0) + (stage + 1 < pp ? 1 : 0);
  const uint64_t forward = written(ops.forward) + neighbours;
  const uint64_t backward = written(ops.backward) + neighbours;
  uint64_t n = 0;
  for (const PipelineSlice& s : slices_)
    if (s.stage == stage) n += s.forward ? forward : backward;
  if (step_.report.mode != StepMode::kTraining) return n;
  // The gradient collectives (twice with the distributed optimizer) and the optimizer.
  uint64_t syncs = 0;
  syncs += g.dp_cp != 0 && ops.dense_params != 0 ? 1 : 0;
  syncs += g.edp != 0 && ops.expert_params != 0 ? 1 : 0;
  return n + 1 + syncs * (step_.config.distributed_optimizer ? 2 : 1);
}

std::string ChakraExport::CommGroupJson() const {
  // One group a line, its ranks on that line.
  std::string text = "{";
  for (const auto& [id, ranks] : groups_) {
    text += (id == groups_.begin()->first ? "\n  \"" : ",\n  \"") + std::to_string(id) +
            "\": " + nlohmann::json(ranks).dump();
  }
  return text + "\n}\n";
}

namespace {

// `dir` ready to write into: created if absent; refused if it is not a directory, or holds
// anything and `force` is off.
Status PrepareChakraDir(const std::string& dir, bool force) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (dir.empty()) return InputError({}, "-o", "\"\"", "names no directory", "a directory path");
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    return InputError({}, "-o", dir, "exists and is not a directory",
                      "a new or empty directory (or --force to write into one with files)");
  }
  if (fs::is_directory(dir, ec) && !fs::is_empty(dir, ec) && !force) {
    return InputError({}, "-o", dir, "is not empty",
                      "a new or empty directory, or --force to replace files of the same names");
  }
  fs::create_directories(dir, ec);
  if (ec) return Error("-o = " + dir + ": cannot create the directory: " + ec.message());
  return Status::Ok();
}

}  // namespace

StatusOr<ChakraWritten> WriteChakraTraces(const ChakraExport& e, const std::string& dir,
                                          const ChakraExportOptions& options) {
  if (options.prefix.empty() || options.prefix.find('/') != std::string::npos) {
    return InputError({}, "--prefix", "\"" + Printable(options.prefix) + "\"",
                      "names the trace files DIR/PREFIX.RANK.et",
                      "a file name without '/', such as workload");
  }
  uint64_t nodes = 0;
  for (uint32_t r = 0; r < e.ranks(); ++r) nodes += e.Nodes(r);
  const double estimate = static_cast<double>(nodes) * kChakraBytesPerNode;
  if (estimate > static_cast<double>(options.max_bytes)) {
    return InputError(
        {}, "step",
        std::to_string(nodes) + " Chakra nodes over " + std::to_string(e.ranks()) + " ranks",
        "the traces would take about " + FormatBytes(estimate) + ", more than " +
            FormatBytes(static_cast<double>(options.max_bytes)) + " (--max-gib)",
        "fewer micro-batches (step.global_batch over dp x micro_batch), or a larger "
        "--max-gib");
  }
  MOESIM_RETURN_IF_ERROR(PrepareChakraDir(dir, options.force));
  MOESIM_RETURN_IF_ERROR(CheckSpaceFor(dir, estimate, "-o", "the Chakra traces"));
  const std::string base = (std::filesystem::path(dir) / options.prefix).string();
  MOESIM_RETURN_IF_ERROR(CheckOutputPath(base + ".0.et", "-o"));
  ChakraWritten w;
  for (uint32_t r = 0; r < e.ranks(); ++r) {
    const ChakraRankTrace t = e.Rank(r);
    std::ostringstream out;
    bool ok = google::protobuf::util::SerializeDelimitedToOstream(t.metadata, &out);
    for (const Node& n : t.nodes)
      ok = ok && google::protobuf::util::SerializeDelimitedToOstream(n, &out);
    if (!ok) return Error("rank " + std::to_string(r) + ": cannot serialise its Chakra trace");
    const std::string bytes = out.str();
    MOESIM_RETURN_IF_ERROR(WriteFileAtomically(base + "." + std::to_string(r) + ".et", bytes,
                                               "the Chakra trace of rank " + std::to_string(r)));
    ++w.files;
    w.nodes += t.nodes.size();
    w.bytes += bytes.size();
    w.largest_file = std::max<uint64_t>(w.largest_file, bytes.size());
  }
  MOESIM_RETURN_IF_ERROR(
      WriteFileAtomically((std::filesystem::path(dir) / "comm_group.json").string(),
                          e.CommGroupJson(), "the communicator groups"));
  w.groups = static_cast<uint32_t>(e.groups().size());
  return w;
}

}  // namespace moesim::sim
