// What `moesim plan` takes on its command line (sim/cli/plan_command.cc), and the pieces its
// scenario emission (--emit-scenario, sim/cli/plan_emit.cc) shares with the search: the preset
// cluster the search builds, the recomputation's name, a comma list.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "proto/cluster.pb.h"
#include "proto/plan.pb.h"
#include "proto/scenario.pb.h"
#include "proto/status.h"
#include "sim/step/plan_search.h"

namespace moesim::sim::plan_cli {

struct PlanOptions {
  std::string model;
  std::string cluster = "dgx-h100";
  std::optional<uint32_t> gpus;
  uint64_t global_batch = 0;
  uint64_t seq_len = 4096;
  std::string mode = "training";
  std::string routing = "uniform";                    // "uniform" | "zipf:ALPHA"
  uint32_t router_groups = 0, router_group_topk = 0;  // group-limited routing (0: none)
  // Groups picked by the sum of their best N expert scores (DeepSeek-V3: 2); 0: drawn first.
  uint32_t router_group_score_top = 0;
  std::string trace;
  std::string hardware;  // HardwareProfile path, or empty
  std::string placement =
      "contiguous";  // "contiguous" | "round-robin" | "eplb[:REDUNDANT[:GROUPS]]"
  std::string fidelity = "analytical";
  bool overlap_alltoall = false, overlap_shared = false, overlap_grads = false;
  bool overlap_tp = false;  // TP collectives under their GEMMs (Megatron-Core's tp_comm_overlap)
  // Interleaved candidates' pipeline sends on the critical path (--no-overlap-p2p-communication);
  // by default they overlap, as Megatron-Core's overlap_p2p_comm.
  bool no_overlap_pipeline = false;
  std::string nccl_version;  // --nccl-version: over the cluster's (and written by --emit-scenario)
  double capacity_factor = 0;
  std::string alltoall_algo = "direct";
  std::optional<uint32_t> alltoall_chunk_tokens;  // deepep_normal's chunk; absent: DeepEP's 80
  std::string dispatch_dtype, combine_dtype;      // "fp8" | "bf16"; empty: the model's dtype
  std::string schedule = "1f1b";                  // "1f1b" | "interleaved" | "dualpipe" | "all"
  uint32_t virtual_stages = 2;                    // interleaved: chunks per device
  std::string recompute_modules;  // "norm,mla_up_proj,...": instead of selective and full
  bool fp8_activations = false;
  uint32_t mtp_depth = 0;
  std::optional<uint32_t> comm_sms;
  std::optional<double> alltoall_hidden;  // Overlap.alltoall_hidden; absent: the schedule's
  bool grad_reduce_in_fp32 = true;        // StepSpec.grad_reduce_in_fp32
  // The all-to-all kernels' own rates per GPU (StepSpec.dispatch_kernel_gbps, ...); absent: none.
  std::optional<double> dispatch_kernel_gbps, combine_kernel_gbps;
  // The host's issue time per kernel, microseconds (StepSpec.host_us_per_kernel); absent: none.
  std::optional<double> host_us_per_kernel;
  std::optional<double> dispatch_rdma_kernel_gbps, combine_rdma_kernel_gbps;
  std::string expert_gemm = "auto";  // sim/compute/kernel_model.h
  uint32_t top = 10;
  uint32_t rerank_flow = 0;  // --rerank-flow K: the best K re-timed at flow fidelity
  double flow_tolerance = 0;  // --flow-tolerance (sim/network/flow_model.h)
  bool expert_tp = false;    // also enumerate etp > 1
  bool csv = false, json = false;
  bool show_refused = false;  // --show-refused: list the plans the plan rules refused
  bool quiet = false;         // --quiet: no progress on stderr
  std::string html;           // HTML report path (sim/report/html_report.h), or empty
  uint32_t threads = 0;
  uint32_t emit_scenario = 0;  // --emit-scenario N: row N (1-based, ranked) as a scenario
  std::string output;          // -o: where --emit-scenario writes it
};

// `nodes` of preset `preset`, over a rail-optimized fabric in groups of up to 32 nodes when more
// than one: the cluster plan search builds for --cluster PRESET --gpus N, and writes out
// (--emit-scenario).
pb::Cluster PresetCluster(const std::string& preset, uint32_t nodes);

// What the backward recomputes as a scenario's step block names it (StepSpec.Recompute's names),
// or the modules as --recompute-modules lists them: PlanRow.recompute, in --csv and --json.
std::string RecomputeName(Recompute r, const std::string& recompute_modules);

// "a,b,c" as a list.
std::vector<std::string> SplitCommas(const std::string& text);

// --emit-scenario N -o FILE: row N of `table` (ranked, 1-based) as the scenario `moesim simulate`
// runs as plan search ran it (sim/cli/plan_emit.cc); says what it wrote on `err`.
Status EmitScenario(const PlanOptions& o, const pb::ModelSpec& model, const pb::Routing& routing,
                    const pb::ExpertPlacementSpec& placement, uint32_t nodes,
                    const std::vector<PlanCandidate>& candidates, const pb::PlanTable& table,
                    std::ostream& err);

}  // namespace moesim::sim::plan_cli
