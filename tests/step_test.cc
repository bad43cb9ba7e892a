#include "sim/step/step.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <optional>
#include <utility>

#include "models/model_spec.h"
#include "models/params.h"
#include "sim/compute/compute_model.h"
#include "sim/network/group_comm.h"
#include "step_fixtures.h"
#include "test_paths.h"
#include "topology/cluster.h"

namespace moesim::sim {
namespace {

using testing::Parse;

topology::Cluster Cluster(uint32_t nodes) { return testing::DgxH100(nodes); }
pb::ModelSpec Tiny() { return testing::TinyMoe(); }

// 16 experts, top-8: on EP 16 over 2 nodes of 8 a token reaches ~4 experts on each node.
pb::ModelSpec Wide() {
  return Parse<pb::ModelSpec>(
      "name: 'wide' hidden_size: 1024 expert_ffn_size: 256 num_experts: 16 top_k: 8 "
      "num_layers: 1 dtype: BF16 vocab_size: 100");
}

// The time of the first op named `name`.
Duration TimeOf(const StepReport& r, const std::string& name) {
  for (const StepOp& op : r.ops)
    if (op.name == name) return op.time;
  FAIL("no " << name);
  return Duration();
}

pb::Routing Uniform() { return Parse<pb::Routing>("synthetic { distribution: UNIFORM seed: 3 }"); }
pb::Routing Skewed() {
  return Parse<pb::Routing>("synthetic { distribution: ZIPF zipf_alpha: 1.5 seed: 3 }");
}

models::Plan Resolve(const pb::ModelSpec& model, uint32_t world, const std::string& plan) {
  auto p = models::ResolvePlan(Parse<pb::ParallelPlan>(plan), world, model, nullptr);
  REQUIRE(p.ok());
  return *p;
}

StepReport RunStep(const topology::Cluster& cluster, const pb::ModelSpec& model,
                   const models::Plan& plan, const pb::Routing& routing, const StepConfig& config) {
  auto work = StepMoeLayer(model, plan, routing, {}, 8, config, nullptr);
  REQUIRE(work.ok());
  auto r = SimulateStep(cluster, model, plan, *work, config);
  if (!r.ok()) FAIL(r.error().message());
  return *r;
}

StepConfig Training(uint64_t global_batch, uint64_t seq_len) {
  StepConfig c;
  c.global_batch = global_batch;
  c.seq_len = seq_len;
  return c;
}

// A prefill of 16 sequences of 1,024 tokens, its EP all-to-alls run as `algo`.
StepConfig Prefill(models::AllToAllAlgo algo) {
  StepConfig c = Training(16, 1024);
  c.mode = StepMode::kPrefill;
  c.alltoall_algo = algo;
  return c;
}

uint32_t Count(const StepReport& r, const std::string& name) {
  uint32_t n = 0;
  for (const StepOp& op : r.ops) n += op.name == name;
  return n;
}

// The ops of one pass ("forward", "backward", "recompute") of the report's micro-batch.
std::vector<StepOp> Pass(const StepReport& r, const std::string& pass) {
  std::vector<StepOp> out;
  for (const StepOp& op : r.ops) {
    if (op.pass == pass) out.push_back(op);
  }
  return out;
}

Duration Sum(const std::vector<StepOp>& ops) {
  Duration d;
  for (const StepOp& op : ops) d += op.time;
  return d;
}

Duration Mean(Duration a, Duration b) {
  return Duration::Picoseconds(((a + b).picoseconds() + 1) / 2);
}

// The tiny model with `layers` layers laid out as `plan` on 8 GPUs of one node, a training step
// of 16 sequences of 256 tokens under `schedule` (V chunks a device where interleaved).
StepReport Scheduled(uint32_t layers, const std::string& plan, PipelineSchedule schedule,
                     uint32_t virtual_stages = 1, std::optional<bool> sends_overlapped = false,
                     std::optional<uint32_t> comm_sms = std::nullopt) {
  pb::ModelSpec model = Tiny();
  model.set_num_layers(layers);
  StepConfig c = Training(16, 256);
  c.schedule = schedule;
  c.virtual_stages = virtual_stages;
  c.overlap.pipeline = sends_overlapped;
  c.comm_sms = comm_sms;
  return RunStep(Cluster(1), model, Resolve(model, 8, plan), Uniform(), c);
}

// tests/fixtures/two_nodes_4gpu.pbtxt (2 x 4 H100, NVLink 400 GB/s, one 50 GB/s NIC per GPU, line
// rates) and a one-layer toy of hidden 4096 with 16 experts (2 per GPU) at EP 8 over both nodes.
// `work` starts with every rank's matrices empty (8 x 8) and nothing dropped.
struct ToyEp8 {
  topology::Cluster cluster;
  pb::ModelSpec model;
  models::Plan plan;
  models::LayerWork work;
};
ToyEp8 ToyEp8OnTwoNodes(uint32_t top_k) {
  auto cluster =
      topology::LoadClusterArgument(testing::SourcePath("tests/fixtures/two_nodes_4gpu.pbtxt"), "");
  REQUIRE(cluster.ok());
  pb::ModelSpec model = Parse<pb::ModelSpec>(
      "name: 'toy' hidden_size: 4096 expert_ffn_size: 14336 num_experts: 16 top_k: " +
      std::to_string(top_k) + " num_layers: 1 dtype: BF16 vocab_size: 100");
  models::Plan plan = Resolve(model, 8, "ep: 8");
  models::LayerWork work;
  work.dispatch_tokens = models::TrafficMatrix(8);
  work.rank_tokens = models::TrafficMatrix(8);
  work.dropped.assign(8, 0);
  return {std::move(*cluster), std::move(model), std::move(plan), std::move(work)};
}

}  // namespace

TEST_CASE("Step: four all-to-alls per MoE layer per micro-batch in training, two in inference") {
  const topology::Cluster cluster = Cluster(1);
  const pb::ModelSpec model = Tiny();
  const models::Plan plan = Resolve(model, 8, "ep: 4");
  // 2 MoE layers: dispatch and combine forward, and their gradients backward = 4 per layer.
  StepReport train = RunStep(cluster, model, plan, Uniform(), Training(16, 128));
  CHECK(train.alltoalls_per_micro_batch == 8);
  CHECK(Count(train, "dispatch") == 4);  // 2 layers x (forward + backward)
  CHECK(Count(train, "combine") == 4);
  // global batch 16 over dp 8 with micro-batch 1: 2 micro-batches.
  CHECK(train.micro_batches == 2);

  StepConfig prefill = Training(16, 128);
  prefill.mode = StepMode::kPrefill;
  StepReport infer = RunStep(cluster, model, plan, Uniform(), prefill);
  CHECK(infer.alltoalls_per_micro_batch == 4);  // 2 layers x (dispatch + combine)
  CHECK(infer.backward == Duration());
  CHECK(infer.grad_sync == Duration());

  StepConfig decode = prefill;
  decode.mode = StepMode::kDecode;
  StepReport dec = RunStep(cluster, model, plan, Uniform(), decode);
  CHECK(dec.alltoalls_per_micro_batch == 4);
}

TEST_CASE("Step: bytes of the DP gradient reductions") {
  const topology::Cluster cluster = Cluster(1);
  const pb::ModelSpec model = Tiny();
  // ep 4 over dp 8 (tp 1, pp 1): edp = 8 / 4 = 2.
  const models::Plan plan = Resolve(model, 8, "ep: 4");
  const StepReport r = RunStep(cluster, model, plan, Uniform(), Training(16, 128));
  // Dense parameters on every GPU: embedding 100 x 64 = 6,400, untied LM head 6,400, and per
  // layer attention 4 x 64^2 = 16,384 plus router 64 x 4 = 256: 12,800 + 2 x 16,640 = 46,080;
  // fp32 gradients: 184,320 bytes, reduced over the 8 data-parallel GPUs.
  CHECK(r.dense_grad_bytes == 184'320);
  // Experts: 2 layers x 4 experts x 3 x 64 x 32 = 49,152 over ep 4 = 12,288 per GPU: 49,152
  // bytes, reduced over the 2 GPUs holding the same experts.
  CHECK(r.expert_grad_bytes == 49'152);
  CHECK(r.grad_sync > Duration());
}

TEST_CASE("Step: 1F1B pipeline is (m + p - 1)(F + B) without overlap") {
  const topology::Cluster cluster = Cluster(1);
  pb::ModelSpec model = Tiny();
  model.set_num_layers(4);
  // pp 2, ep 4 over the 4 GPUs of a stage: dp = 8 / 2 = 4; global batch 32 / (4 x 1) = 8
  // micro-batches.
  const models::Plan plan = Resolve(model, 8, "pp: 2 ep: 4");
  const StepReport r = RunStep(cluster, model, plan, Uniform(), Training(32, 256));
  REQUIRE(r.micro_batches == 8);
  const Duration fb = r.forward + r.backward;
  CHECK(r.pipeline == int64_t{8 + 2 - 1} * fb);
  CHECK(r.bubble == fb);  // (p - 1) = 1 slot
  CHECK(r.step == r.pipeline + r.grad_sync + r.optimizer);
  // Each stage's forward ends with (or backward starts with) the send to the other stage.
  CHECK(r.stage_forward.size() == 2);
}

TEST_CASE("Step: turning overlap on never makes a step slower") {
  const topology::Cluster cluster = Cluster(2);
  pb::ModelSpec model = *models::LoadCatalogModel("mixtral-8x7b", {}, *models::CatalogDir());
  model.set_num_layers(4);
  model.set_num_shared_experts(1);  // so the shared-expert overlap has something to hide
  // EP 8 across the two nodes' GPUs by a dp-major order? Default order keeps EP inside a node;
  // ep 16 (8 experts would not divide) is impossible, so EP 8 with dp 2 and a skewed routing.
  const models::Plan plan = Resolve(model, 16, "ep: 8");
  for (const Recompute recompute : {Recompute::kNone, Recompute::kFull}) {
    StepConfig base = Training(64, 1024);
    base.recompute = recompute;
    const StepReport off = RunStep(cluster, model, plan, Skewed(), base);
    for (int which = 0; which < 3; ++which) {
      StepConfig on = base;
      if (which == 0) on.overlap.alltoall = true;
      if (which == 1) on.overlap.shared_expert = true;
      if (which == 2) on.overlap.gradients = true;
      const StepReport r = RunStep(cluster, model, plan, Skewed(), on);
      INFO("overlap " << which << " recompute " << static_cast<int>(recompute));
      CHECK(r.step <= off.step);
      // The all-to-alls are exposed without overlap, so hiding them makes the step faster.
      if (which == 0) CHECK(r.step < off.step);
      if (which == 1) CHECK(r.step < off.step);
    }
  }
}

TEST_CASE("Step: a global batch that dp x micro-batch does not divide is an error") {
  const topology::Cluster cluster = Cluster(1);
  const pb::ModelSpec model = Tiny();
  const models::Plan plan = Resolve(model, 8, "ep: 4");
  StepConfig c = Training(12, 128);  // dp 8: 12 is not a multiple of 8
  auto work = StepMoeLayer(model, plan, Uniform(), {}, 8, c, nullptr);
  REQUIRE(work.ok());
  auto r = SimulateStep(cluster, model, plan, *work, c);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().message(), Catch::Contains("a multiple of 8"));
}

TEST_CASE("Step: a capacity factor drops the hot experts' excess and shortens the expert phase") {
  const topology::Cluster cluster = Cluster(1);
  const pb::ModelSpec model = Tiny();
  const models::Plan plan = Resolve(model, 8, "ep: 4");
  StepConfig c = Training(16, 512);
  const StepReport all = RunStep(cluster, model, plan, Skewed(), c);
  CHECK(all.dropped_copies == 0);
  // 4 ranks x 512 tokens x top-2 routed copies per MoE layer per micro-batch.
  CHECK(all.routed_copies == 4 * 512 * 2);
  c.capacity_factor = 1.0;
  const StepReport capped = RunStep(cluster, model, plan, Skewed(), c);
  // Zipf 1.5 over 4 experts sends most copies to expert 0, beyond ceil(512 x 2 / 4) = 256 per
  // sender: those are dropped, and the busiest rank computes fewer tokens.
  CHECK(capped.dropped_copies > 0);
  CHECK(capped.dropped_copies < capped.routed_copies);
  CHECK(capped.step < all.step);
  // MFU counts the FLOPs computed: without drops the nominal and computed MFU agree; with them
  // the computed one is lower by the dropped share d of the routed experts' FLOPs R = 3 x 2 x
  // (top_k experts' weights) within the F FLOPs per token of training:
  // (nominal - computed) / nominal = d x R / F.
  CHECK(all.mfu == all.mfu_nominal);
  const double d = static_cast<double>(capped.dropped_copies) / capped.routed_copies;
  const double routed = 3.0 * 2 * models::CountParams(model).active.routed_experts;
  const double per_token = static_cast<double>(models::TrainingFlopsPerToken(model, 512));
  CHECK(capped.mfu < capped.mfu_nominal);
  CHECK((capped.mfu_nominal - capped.mfu) / capped.mfu_nominal ==
        Approx(d * routed / per_token).epsilon(1e-9));
}

TEST_CASE("Step: hierarchical EP all-to-alls relay across nodes, deduplicated, and say so") {
  // 16 experts, top-8, EP 16 over 2 nodes of 8: a token reaches ~4 experts on each node, so
  // DeepEP's dispatch sends it across once per node instead of once per expert copy, and the
  // NVLink forward (450 GB/s) costs far less than the copies saved on the 50 GB/s NIC.
  const topology::Cluster cluster = Cluster(2);
  const pb::ModelSpec model = Wide();
  const models::Plan plan = Resolve(model, 16, "ep: 16");
  const StepConfig direct = Prefill(models::AllToAllAlgo::kDirect);
  const StepConfig relayed = Prefill(models::AllToAllAlgo::kHierarchical);
  const StepReport d = RunStep(cluster, model, plan, Uniform(), direct);
  const StepReport h = RunStep(cluster, model, plan, Uniform(), relayed);
  CHECK(TimeOf(h, "dispatch") < TimeOf(d, "dispatch"));
  CHECK(TimeOf(h, "combine") < TimeOf(d, "combine"));
  CHECK(TimeOf(h, "expert") == TimeOf(d, "expert"));  // the same tokens reach the same experts
  CHECK(h.hardware.find("hierarchical (DeepEP, deduplicated per node)") != std::string::npos);

  // EP inside one node: nothing to relay; the direct exchange stays, and the report says why.
  const topology::Cluster one = Cluster(1);
  const models::Plan inside = Resolve(model, 8, "ep: 8");
  const StepReport n = RunStep(one, model, inside, Uniform(), relayed);
  StepConfig one_direct = relayed;
  one_direct.alltoall_algo = models::AllToAllAlgo::kDirect;
  CHECK(TimeOf(n, "dispatch") ==
        TimeOf(RunStep(one, model, inside, Uniform(), one_direct), "dispatch"));
  CHECK(n.hardware.find("direct (hierarchical needs an EP group over several nodes") !=
        std::string::npos);

  // ETP 2 lays an EP group of 8 on every other GPU of the 2 nodes: 4 on each, so the relay runs,
  // but a routing's node counts (node = rank / 8) are not the group's nodes: every copy crosses.
  const models::Plan strided = Resolve(model, 16, "ep: 8 etp: 2");
  const StepReport s = RunStep(cluster, model, strided, Uniform(), relayed);
  CHECK(s.hardware.find("every copy crosses: the EP group does not fill whole nodes") !=
        std::string::npos);
}

TEST_CASE("Step: DeepEP's normal and low-latency kernels as EP all-to-alls, and say so") {
  // The cluster and model of the hierarchical case above: EP 16 over 2 nodes of 8.
  const topology::Cluster cluster = Cluster(2);
  const pb::ModelSpec model = Wide();
  const models::Plan plan = Resolve(model, 16, "ep: 16");
  const StepConfig hierarchical = Prefill(models::AllToAllAlgo::kHierarchical);
  const StepConfig normal = Prefill(models::AllToAllAlgo::kDeepEpNormal);
  const StepConfig low_latency = Prefill(models::AllToAllAlgo::kDeepEpLowLatency);
  const StepReport h = RunStep(cluster, model, plan, Uniform(), hierarchical);
  const StepReport n = RunStep(cluster, model, plan, Uniform(), normal);
  // The same relay. hierarchical is timed as NCCL's steps, one after the other (crossing, then
  // forward, plus NCCL's latencies); deepep_normal as DeepEP's kernels, the forward under the
  // crossing: never longer.
  CHECK(TimeOf(n, "dispatch") < TimeOf(h, "dispatch"));
  CHECK(TimeOf(n, "combine") < TimeOf(h, "combine"));
  CHECK(n.hardware.find("deepep_normal (DeepEP internode kernels, deduplicated per node, the "
                        "relay forwarding chunks of 80 tokens)") != std::string::npos);
  // The flow model forwards chunk by chunk: never below the analytical time.
  StepConfig normal_flow = normal;
  normal_flow.fidelity = Fidelity::kFlow;
  const StepReport nf = RunStep(cluster, model, plan, Uniform(), normal_flow);
  CHECK(TimeOf(nf, "dispatch") >= TimeOf(n, "dispatch"));
  CHECK(TimeOf(nf, "combine") >= TimeOf(n, "combine"));

  // Low latency: every copy crosses (no deduplication), each with its 16-byte header.
  const StepReport l = RunStep(cluster, model, plan, Uniform(), low_latency);
  CHECK(TimeOf(l, "dispatch") > TimeOf(n, "dispatch"));
  CHECK(l.hardware.find("deepep_low_latency (DeepEP low-latency kernels: a message per token and "
                        "expert, RDMA across nodes, NVLink within one; 330M messages/s per NIC)") !=
        std::string::npos);

  // deepep_normal with the EP group inside one node runs DeepEP's intranode kernels: per_rank.
  const topology::Cluster one = Cluster(1);
  const models::Plan inside = Resolve(model, 8, "ep: 8");
  const StepConfig per_rank = Prefill(models::AllToAllAlgo::kPerRank);
  const StepReport i = RunStep(one, model, inside, Uniform(), normal);
  CHECK(TimeOf(i, "dispatch") ==
        TimeOf(RunStep(one, model, inside, Uniform(), per_rank), "dispatch"));
  CHECK(i.hardware.find("per_rank (one copy per destination GPU); deepep_normal on one node runs "
                        "DeepEP's intranode kernels") != std::string::npos);
}

TEST_CASE("Step: expert tensor parallelism gathers tokens around each expert's FFN slice") {
  // 8 GPUs, 4 experts of FFN 32 (top-2), EP 2 and ETP 2 (edp 2): each EP rank's experts are split
  // over an ETP pair. Around the experts the pair all-gathers what each received and
  // reduce-scatters the partial outputs (Megatron-Core's all-to-all dispatcher with etp > 1), in
  // both passes of both MoE layers.
  const topology::Cluster cluster = Cluster(1);
  const pb::ModelSpec model = Tiny();
  const models::Plan split = Resolve(model, 8, "ep: 2 etp: 2");
  const models::Plan whole = Resolve(model, 8, "ep: 2");
  const StepConfig config = Training(16, 512);
  const StepReport e = RunStep(cluster, model, split, Uniform(), config);
  const StepReport w = RunStep(cluster, model, whole, Uniform(), config);
  CHECK(Count(e, "etp-allgather") == 4);
  CHECK(Count(e, "etp-reducescatter") == 4);
  CHECK(Count(w, "etp-allgather") == 0);
  // Each GPU holds half of each of its experts: its expert gradients halve (params / (ep x etp)).
  CHECK(2 * e.expert_grad_bytes == w.expert_grad_bytes);
  CHECK(e.dense_grad_bytes == w.dense_grad_bytes);

  // The expert op: every ETP rank runs both members' tokens (2n per expert, the routing being the
  // same on each) through FFN 32 / 2 = 16: fc1 (gate and up) [2n, 64] x [64, 32] and fc2
  // [2n, 16] x [16, 64], 6 (2n) h (f / 2) = 6nhf FLOPs, half the weights (BF16: the per-expert
  // loop, a launch per expert GEMM; sim/compute/kernel_model.h).
  auto work = StepMoeLayer(model, split, Uniform(), {}, 8, config, nullptr);
  REQUIRE(work.ok());
  const StatusOr<KernelModel> kernels = StepKernels(cluster, model.dtype(), config);
  REQUIRE(kernels.ok());
  Duration slowest;
  for (const std::vector<uint64_t>& counts : work->expert_tokens) {
    std::vector<GemmShape> up, down;
    for (uint64_t n : counts) {
      up.push_back({2 * n, 32, 64});
      down.push_back({2 * n, 64, 16});
    }
    slowest = std::max(slowest, kernels->Time(Kernel::Gemm(GemmClass::kExpert, up)) +
                                    kernels->Time(Kernel::Gemm(GemmClass::kExpert, down)));
  }
  bool found = false;
  for (const StepOp& op : e.ops) {
    if (op.name != "expert" || op.pass != "forward") continue;
    CHECK(op.time == slowest);
    found = true;
  }
  CHECK(found);

  // An ETP size that does not divide the FFN is refused where the plan says it, with what would.
  pb::Scenario scenario;
  auto file = TextFile::ParseString("plan {\n  ep: 2\n  etp: 4\n}\n", "s.pbtxt", &scenario);
  REQUIRE(file.ok());
  const pb::ModelSpec odd = Parse<pb::ModelSpec>(
      "name: 'odd' hidden_size: 64 expert_ffn_size: 30 num_experts: 4 top_k: 2 num_layers: 2 "
      "dtype: BF16 vocab_size: 100");
  auto refused = models::ResolvePlan(scenario.plan(), 8, odd, &*file);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message() ==
        "s.pbtxt:3:3: plan.etp = 4: does not split each expert's FFN of 30 evenly; valid: a "
        "divisor of 30");
}

TEST_CASE("Step: an unknown all-to-all algorithm is a located error") {
  pb::Scenario scenario;
  auto file = TextFile::ParseString(
      "step {\n  global_batch: 8\n  seq_len: 128\n  alltoall_algo: \"ring\"\n}\n", "s.pbtxt",
      &scenario);
  REQUIRE(file.ok());
  auto c = StepConfigFromSpec(scenario.step(), *file, Fidelity::kAnalytical);
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().message().rfind("s.pbtxt:4:", 0) == 0);
  CHECK(c.error().message().find("step.alltoall_algo") != std::string::npos);
  CHECK(c.error().message().find("ring") != std::string::npos);
  CHECK(c.error().message().find("direct, per_rank, hierarchical, deepep_normal, "
                                 "deepep_low_latency") != std::string::npos);
}

TEST_CASE("Step: overlap.alltoall_hidden is parsed, and refused where nothing overlaps") {
  pb::Scenario scenario;
  auto file = TextFile::ParseString(
      "step {\n  global_batch: 8\n  seq_len: 128\n"
      "  overlap { alltoall: true alltoall_hidden: 0.5 }\n}\n",
      "s.pbtxt", &scenario);
  REQUIRE(file.ok());
  auto c = StepConfigFromSpec(scenario.step(), *file, Fidelity::kAnalytical);
  REQUIRE(c.ok());
  CHECK(c->overlap.alltoall_hidden == 0.5);
  // Absent: the schedule's default, Megatron-Core's measured share, or DualPipe's 1.
  CHECK(DefaultAllToAllHidden(PipelineSchedule::k1F1B) == kMegatronEpOverlapHidden);
  CHECK(DefaultAllToAllHidden(PipelineSchedule::kInterleaved) == kMegatronEpOverlapHidden);
  CHECK(DefaultAllToAllHidden(PipelineSchedule::kDualPipe) == 1.0);
  // Without overlap { alltoall } or DualPipe nothing hides: a located error saying what would.
  auto alone = TextFile::ParseString(
      "step {\n  global_batch: 8\n  seq_len: 128\n  overlap { alltoall_hidden: 0.5 }\n}\n",
      "s.pbtxt", &scenario);
  REQUIRE(alone.ok());
  auto refused = StepConfigFromSpec(scenario.step(), *alone, Fidelity::kAnalytical);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message().rfind("s.pbtxt:4:", 0) == 0);
  CHECK_THAT(refused.error().message(),
             Catch::Contains("step.overlap.alltoall_hidden = 0.500000: nothing overlaps the "
                             "all-to-alls; valid: with overlap { alltoall: true } or schedule: "
                             "\"dualpipe\""));
}

TEST_CASE("Step: grad_reduce_in_fp32 sets the bytes of a gradient element") {
  pb::Scenario scenario;
  for (const auto& [text, bytes] : {std::pair{"", 4u}, std::pair{"grad_reduce_in_fp32: true", 4u},
                                    std::pair{"grad_reduce_in_fp32: false", 2u}}) {
    INFO(text);
    auto file = TextFile::ParseString(
        std::string("step {\n  global_batch: 8\n  seq_len: 128\n  ") + text + "\n}\n", "s.pbtxt",
        &scenario);
    REQUIRE(file.ok());
    auto c = StepConfigFromSpec(scenario.step(), *file, Fidelity::kAnalytical);
    REQUIRE(c.ok());
    CHECK(c->grad_bytes == bytes);
  }
}

TEST_CASE("Step: the internode kernels' RDMA rate bounds a relayed dispatch and combine") {
  // tests/fixtures/two_nodes_4gpu.pbtxt (2 x 4 H100), EP 8 over both nodes, 16 experts (2 per
  // GPU), top-8: each GPU routes one token, one copy to each of the 8 GPUs, so the token reaches
  // both nodes: node_tokens 1 per (GPU, node), its own node included, as DeepEP's test counts
  // "RDMA" bytes: 2 x 8,192 B (hidden 4096, BF16) = 16,384 B per GPU. At 0.001 GB/s (1e6 B/s)
  // dispatch takes 16.384 ms; combine at 0.002 GB/s 8.192 ms, whatever the links allow.
  auto [cluster, model, plan, work] = ToyEp8OnTwoNodes(8);
  work.node_tokens = models::TrafficMatrix(8);
  for (uint32_t r = 0; r < 8; ++r) {
    for (uint32_t j = 0; j < 8; ++j) {
      work.dispatch_tokens.at(r, j) = 1;
      work.rank_tokens.at(r, j) = 1;
    }
    work.node_tokens.at(r, 0) = 1;
    work.node_tokens.at(r, 1) = 1;
  }
  work.expert_tokens.assign(8, {8, 0});
  work.tokens_in.assign(8, 1);
  StepConfig config = Training(8, 1);
  config.mode = StepMode::kPrefill;
  config.alltoall_algo = models::AllToAllAlgo::kDeepEpNormal;
  auto links = SimulateStep(cluster, model, plan, work, config);
  REQUIRE(links.ok());
  config.dispatch_rdma_kernel_gbps = 0.001;
  config.combine_rdma_kernel_gbps = 0.002;
  auto slow = SimulateStep(cluster, model, plan, work, config);
  REQUIRE(slow.ok());
  CHECK(TimeOf(*slow, "dispatch") == Duration::Picoseconds(16'384'000'000));
  CHECK(TimeOf(*slow, "combine") == Duration::Picoseconds(8'192'000'000));
  CHECK(slow->hardware.find("the internode kernels at most dispatch 0.001, combine 0.002 GB/s "
                            "(RDMA) per GPU") != std::string::npos);
  // At 1e6 GB/s the links bind, as without a rate.
  config.dispatch_rdma_kernel_gbps = 1e6;
  config.combine_rdma_kernel_gbps = 1e6;
  auto fast = SimulateStep(cluster, model, plan, work, config);
  REQUIRE(fast.ok());
  CHECK(TimeOf(*fast, "dispatch") == TimeOf(*links, "dispatch"));
  CHECK(TimeOf(*fast, "combine") == TimeOf(*links, "combine"));
  // Without the node counts nothing is deduplicated per node, and the rate does not apply.
  work.node_tokens = models::TrafficMatrix();
  config.dispatch_rdma_kernel_gbps = 0.001;
  auto copies = SimulateStep(cluster, model, plan, work, config);
  REQUIRE(copies.ok());
  CHECK(TimeOf(*copies, "dispatch") < Duration::Picoseconds(16'384'000'000));
  CHECK(copies->hardware.find("the RDMA kernel rate applies to a relay deduplicated per node "
                              "only") != std::string::npos);
}

TEST_CASE("Step: per_rank EP all-to-alls send each token once per GPU, FP8 one way, BF16 back") {
  // tests/fixtures/two_nodes_4gpu.pbtxt (2 x 4 H100, NVLink 400 GB/s, one 50 GB/s NIC per GPU,
  // line rates), EP 8, hidden 4096, 16 experts (2 per GPU), top-2; the layer as in
  // tests/moe_layer_test.cc's per-rank case: GPU 0's token to two experts on GPU 5, GPU 1's to
  // two on GPU 2, every other token to its own GPU's two experts.
  // Members, not a structured binding: clang 14 (the sanitized build) lets no lambda capture one.
  ToyEp8 toy = ToyEp8OnTwoNodes(2);
  toy.work.dispatch_tokens.at(0, 5) = 2;  // copies
  toy.work.dispatch_tokens.at(1, 2) = 2;
  toy.work.rank_tokens.at(0, 5) = 1;  // distinct tokens
  toy.work.rank_tokens.at(1, 2) = 1;
  for (uint32_t r = 2; r < 8; ++r) {
    toy.work.dispatch_tokens.at(r, r) = 2;
    toy.work.rank_tokens.at(r, r) = 1;
  }
  toy.work.expert_tokens = {{0, 0}, {0, 0}, {2, 2}, {1, 1}, {1, 1}, {2, 2}, {1, 1}, {1, 1}};
  toy.work.tokens_in.assign(8, 1);
  StepConfig config = Training(8, 1);
  config.mode = StepMode::kPrefill;
  auto step = [&](models::AllToAllAlgo algo, std::optional<models::WireDtype> dispatch,
                  std::optional<models::WireDtype> combine) {
    StepConfig c = config;
    c.alltoall_algo = algo;
    c.dispatch_dtype = dispatch;
    c.combine_dtype = combine;
    auto r = SimulateStep(toy.cluster, toy.model, toy.plan, toy.work, c);
    if (!r.ok()) FAIL(r.error().message());
    return *r;
  };
  // The bytes each exchange must carry, by hand; GroupAllToAllV prices them as NCCL would
  // (sim/network/group_comm.h, its NCCL latency and protocol pinned in its own tests). Crossing
  // GPU 0 -> 5 and GPU 1 -> 2, and kept on GPUs 2 to 7 (the diagonal, which moves no bytes):
  //   direct, BF16:      2 copies x 4096 x 2 B = 16,384 B each
  //   per_rank, BF16:    1 token x 8,192 B each
  //   per_rank, FP8:     1 token x (4096 + 4096 / 128 x 4) = 4,224 B each
  const std::unique_ptr<NetworkModel> net = MakeNetworkModel(toy.cluster, Fidelity::kAnalytical);
  auto priced = [&](uint64_t bytes) {
    models::TrafficMatrix m(8);
    m.at(0, 5) = bytes;
    m.at(1, 2) = bytes;
    for (uint32_t r = 2; r < 8; ++r) m.at(r, r) = bytes;
    return std::pair{GroupAllToAllV(*net, toy.plan.EpGroup(0), m).time,
                     GroupAllToAllV(*net, toy.plan.EpGroup(0), m.Transposed()).time};
  };
  const auto [direct_bf16, direct_bf16_back] = priced(16'384);
  const auto [rank_bf16, rank_bf16_back] = priced(8'192);
  const Duration rank_fp8 = priced(4'224).first;

  const StepReport d = step(models::AllToAllAlgo::kDirect, std::nullopt, std::nullopt);
  CHECK(TimeOf(d, "dispatch") == direct_bf16);
  CHECK(TimeOf(d, "combine") == direct_bf16_back);
  CHECK(d.hardware.find("EP all-to-alls: network model") != std::string::npos);

  const StepReport p = step(models::AllToAllAlgo::kPerRank, std::nullopt, std::nullopt);
  CHECK(TimeOf(p, "dispatch") == rank_bf16);
  CHECK(TimeOf(p, "combine") == rank_bf16_back);
  CHECK(TimeOf(p, "dispatch") < TimeOf(d, "dispatch"));
  CHECK(TimeOf(p, "expert") == TimeOf(d, "expert"));  // every copy is still computed
  CHECK(p.hardware.find("per_rank (one copy per destination GPU)") != std::string::npos);

  // DeepSeek-V3's recipe: FP8 dispatch, BF16 combine (and their gradients, the same bytes).
  const StepReport f =
      step(models::AllToAllAlgo::kPerRank, models::WireDtype::kFp8, models::WireDtype::kBf16);
  CHECK(TimeOf(f, "dispatch") == rank_fp8);
  CHECK(TimeOf(f, "combine") == rank_bf16_back);
  CHECK(TimeOf(f, "dispatch") < TimeOf(p, "dispatch"));
  CHECK(f.hardware.find("a token is 4224 B in fp8 dispatch, 8192 B in bf16 combine") !=
        std::string::npos);

  // The kernels' own rates (dispatch_kernel_gbps, combine_kernel_gbps): a GPU's bytes received in
  // dispatch, its own tokens included, as DeepEP's and HybridEP's benchmarks count them. GPU 5
  // gets GPU 0's token and keeps its own: 2 x 8,192 = 16,384 B, as GPU 2 does; the rest keep
  // 8,192 B. At 0.001 GB/s (1e6 B/s) dispatch takes 16,384 / 1e6 s = 16.384 ms, and at 0.002
  // combine sends the same bytes back in 8.192 ms, whatever NVLink allows. At 1e6 GB/s the links
  // bind, as without a rate.
  {
    StepConfig slow = config;
    slow.alltoall_algo = models::AllToAllAlgo::kPerRank;
    slow.dispatch_kernel_gbps = 0.001;
    slow.combine_kernel_gbps = 0.002;
    auto r = SimulateStep(toy.cluster, toy.model, toy.plan, toy.work, slow);
    REQUIRE(r.ok());
    CHECK(TimeOf(*r, "dispatch") == Duration::Picoseconds(16'384'000'000));
    CHECK(TimeOf(*r, "combine") == Duration::Picoseconds(8'192'000'000));
    CHECK(r->hardware.find("the kernels at most dispatch 0.001, combine 0.002 GB/s per GPU") !=
          std::string::npos);
    slow.dispatch_kernel_gbps = 1e6;
    slow.combine_kernel_gbps.reset();
    auto fast = SimulateStep(toy.cluster, toy.model, toy.plan, toy.work, slow);
    REQUIRE(fast.ok());
    CHECK(TimeOf(*fast, "dispatch") == rank_bf16);
    CHECK(TimeOf(*fast, "combine") == rank_bf16_back);
  }

  // A layer without per-token ranks (an expected layer not filled) sends every copy, and says so.
  models::LayerWork copies_only = toy.work;
  copies_only.rank_tokens = models::TrafficMatrix();
  StepConfig c = config;
  c.alltoall_algo = models::AllToAllAlgo::kPerRank;
  auto r = SimulateStep(toy.cluster, toy.model, toy.plan, copies_only, c);
  REQUIRE(r.ok());
  CHECK(TimeOf(*r, "dispatch") == direct_bf16);
  CHECK(r->hardware.find("per_rank needs each token's GPUs") != std::string::npos);
}

TEST_CASE("Step: expert_gemm is parsed, and an unknown API is a located error") {
  pb::Scenario scenario;
  auto file = TextFile::ParseString(
      "step {\n  global_batch: 8\n  seq_len: 128\n  expert_gemm: \"cublas_grouped\"\n}\n",
      "s.pbtxt", &scenario);
  REQUIRE(file.ok());
  auto c = StepConfigFromSpec(scenario.step(), *file, Fidelity::kAnalytical);
  REQUIRE(c.ok());
  CHECK(c->expert_gemm == ExpertGemm::kCublasGrouped);

  auto bad_file = TextFile::ParseString(
      "step {\n  global_batch: 8\n  seq_len: 128\n  expert_gemm: \"cutlass\"\n}\n", "s.pbtxt",
      &scenario);
  REQUIRE(bad_file.ok());
  auto bad = StepConfigFromSpec(scenario.step(), *bad_file, Fidelity::kAnalytical);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message() ==
        "s.pbtxt:4:3: step.expert_gemm = cutlass: unknown expert GEMM API; valid: auto, loop, "
        "cublas_grouped, deepgemm");
}

TEST_CASE("Step: dispatch and combine dtypes are parsed, and an unknown one is a located error") {
  pb::Scenario scenario;
  auto file = TextFile::ParseString(
      "step {\n  global_batch: 8\n  seq_len: 128\n  alltoall_algo: \"per_rank\"\n"
      "  dispatch_dtype: \"fp8\"\n  combine_dtype: \"bf16\"\n}\n",
      "s.pbtxt", &scenario);
  REQUIRE(file.ok());
  auto c = StepConfigFromSpec(scenario.step(), *file, Fidelity::kAnalytical);
  REQUIRE(c.ok());
  CHECK(c->alltoall_algo == models::AllToAllAlgo::kPerRank);
  CHECK(c->dispatch_dtype == models::WireDtype::kFp8);
  CHECK(c->combine_dtype == models::WireDtype::kBf16);

  auto bad_file = TextFile::ParseString(
      "step {\n  global_batch: 8\n  seq_len: 128\n  dispatch_dtype: \"e4m3\"\n}\n", "s.pbtxt",
      &scenario);
  REQUIRE(bad_file.ok());
  auto bad = StepConfigFromSpec(scenario.step(), *bad_file, Fidelity::kAnalytical);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message() ==
        "s.pbtxt:4:3: step.dispatch_dtype = e4m3: unknown dtype for the all-to-all; valid: bf16, "
        "fp8 (absent: the model's dtype)");
}

TEST_CASE("Step: recomputation by module runs only those modules' forward work again") {
  const topology::Cluster cluster = Cluster(1);
  const pb::ModelSpec model = Tiny();
  // ep 4 on 8 GPUs: dp 8, tp 1; 128 tokens per micro-batch, 2 micro-batches.
  const models::Plan plan = Resolve(model, 8, "ep: 4");
  StepConfig none = Training(16, 128);
  none.recompute = Recompute::kNone;
  const StepReport base = RunStep(cluster, model, plan, Uniform(), none);
  CHECK(Pass(base, "recompute").empty());
  auto with = [&](std::vector<std::string> names, bool fp8 = false) {
    StepConfig c = none;
    c.recompute = Recompute::kModules;
    c.recompute_modules = *models::ParseRecomputeModules(names, {}, "f");
    c.fp8_activations = fp8;
    return RunStep(cluster, model, plan, Uniform(), c);
  };
  const StatusOr<KernelModel> kernels = StepKernels(cluster, pb::BF16, none);
  REQUIRE(kernels.ok());
  // One memory-bound kernel of `bytes` (sim/compute/kernel_model.h).
  auto memory = [&](uint64_t bytes) { return kernels->Time(Kernel::Memory(bytes)); };
  SECTION("norm: both norms of each layer, read and written once more") {
    // 2 norms x (read 2 + write 2, the residual add with it, as attn-norm and ffn-norm) x 128
    // tokens x h 64 x 2 bytes = 131,072 bytes per layer, one kernel.
    const StepReport r = with({"norm"});
    const std::vector<StepOp> again = Pass(r, "recompute");
    REQUIRE(again.size() == 2);
    CHECK(again[0].name == "norm");
    CHECK(again[0].time == memory(131'072));
    CHECK(r.backward == base.backward + 2 * memory(131'072));
  }
  SECTION("attention_core: flash attention's backward rebuilds the scores anyway, no time") {
    const StepReport r = with({"attention_core"});
    CHECK(Pass(r, "recompute").empty());
    CHECK(r.backward == base.backward);
  }
  SECTION("moe: the MoE block's forward ops again, its two all-to-alls included") {
    const StepReport r = with({"moe"});
    // Per layer: router, router-topk, dispatch-layout, permute, dispatch, expert, expert-act,
    // combine, unpermute: 18 for 2 layers, and 4 all-to-alls more per micro-batch (8 -> 12).
    const std::vector<StepOp> again = Pass(r, "recompute");
    CHECK(again.size() == 18);
    CHECK(r.alltoalls_per_micro_batch == 12);
    Duration moe_forward;
    for (const StepOp& op : Pass(base, "forward")) {
      if (op.block == OpBlock::kMoe) moe_forward += op.time;
    }
    CHECK(Sum(again) == moe_forward);
    CHECK(r.backward == base.backward + moe_forward);
  }
  SECTION("moe_act: the slowest rank's copies through the activation, FP8 inputs or BF16") {
    // Read gate and up (2 x 32 elements), write the product (32): 32 x (2 x 2 + 2) = 192 bytes
    // per copy in BF16, 32 x (2 x 1 + 2) = 128 with the inputs cached in FP8.
    auto work = StepMoeLayer(model, plan, Uniform(), {}, 8, none, nullptr);
    REQUIRE(work.ok());
    uint64_t copies = 0;
    for (const std::vector<uint64_t>& rank : work->expert_tokens) {
      uint64_t c = 0;
      for (uint64_t t : rank) c += t;
      copies = std::max(copies, c);
    }
    const StepReport bf16 = with({"moe_act"});
    REQUIRE(Pass(bf16, "recompute").size() == 2);
    CHECK(Pass(bf16, "recompute")[0].time == memory(copies * 192));
    CHECK(Pass(with({"moe_act"}, true), "recompute")[0].time == memory(copies * 128));
  }
  SECTION("mla_up_proj needs MLA") {
    StepConfig c = none;
    c.recompute = Recompute::kModules;
    c.recompute_modules.mla_up_proj = true;
    auto work = StepMoeLayer(model, plan, Uniform(), {}, 8, c, nullptr);
    REQUIRE(work.ok());
    auto r = SimulateStep(cluster, model, plan, *work, c);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() ==
          "step.recompute_modules = mla_up_proj: recomputes MLA's up-projections; tiny has no "
          "MLA; valid: norm, attention_core, mlp, moe, moe_act");
  }
}

TEST_CASE("Step: W is the weight-gradient half of each GEMM's backward, none of the rest") {
  const topology::Cluster cluster = Cluster(1);
  const pb::ModelSpec model = Tiny();
  const StepReport r =
      RunStep(cluster, model, Resolve(model, 8, "ep: 4"), Uniform(), Training(16, 128));
  // Half the backward of every GEMM op is its wgrad GEMMs (the same FLOPs as its dgrad): the
  // attention projections (attn-qkv, attn-out), router, expert and LM head. The attention core,
  // the memory-bound kernels and the all-to-alls: none.
  int64_t w = 0;
  for (const StepOp& op : Pass(r, "backward")) {
    const bool gemm = op.name == "attn-qkv" || op.name == "attn-out" || op.name == "router" ||
                      op.name == "expert" || op.name == "lm-head";
    w += std::llround(static_cast<double>(op.time.picoseconds()) * (gemm ? 0.5 : 0.0));
  }
  CHECK(r.weight == Duration::Picoseconds(w));
  CHECK(r.weight > Duration());
}

TEST_CASE("Step: DualPipe pairs stages i and p - 1 - i and overlaps every steady pair") {
  const topology::Cluster cluster = Cluster(1);
  pb::ModelSpec model = Tiny();
  model.set_num_layers(4);
  // pp 2, ep 4, dp 4; global batch 16: m = 4 = 2 pp.
  const models::Plan plan = Resolve(model, 8, "pp: 2 ep: 4");
  StepConfig c = Training(16, 256);
  c.schedule = PipelineSchedule::kDualPipe;
  const StepReport r = RunStep(cluster, model, plan, Uniform(), c);
  REQUIRE(r.micro_batches == 4);
  // The one device pair holds stages 0 and 1: F and B their means.
  CHECK(r.forward == Mean(r.stage_forward[0], r.stage_forward[1]));
  CHECK(r.backward == Mean(r.stage_backward[0], r.stage_backward[1]));
  // p 2: bubble (1 - 1)(...) = 0; 3p/2 - 1 = 2 forwards and backwards alone, m - 2 = 2 pairs.
  CHECK(r.bubble == Duration());
  CHECK(r.pipeline == 2 * (r.forward + r.backward) + 2 * r.pair);
  // The pairs overlap their all-to-alls though overlap.alltoall is off.
  CHECK(r.pair < r.forward + r.backward);
  // m 2 is fewer than 2 pp.
  StepConfig few = Training(8, 256);
  few.schedule = PipelineSchedule::kDualPipe;
  auto work = StepMoeLayer(model, plan, Uniform(), {}, 8, few, nullptr);
  REQUIRE(work.ok());
  auto bad = SimulateStep(cluster, model, plan, *work, few);
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error().message(), Catch::Contains("at least 2 x pp (4)"));
}

TEST_CASE("Step: DualPipe's pairs hide the pipeline sends with the all-to-alls") {
  // DeepSeek-V3's report (3.2.1): a DualPipe pair hides both the all-to-alls and the PP
  // communication. pp 2: device 0 pairs stage 0's forward with stage 1's backward and stage 1's
  // forward with stage 0's backward; of those passes only stage 0's forward and stage 1's
  // backward send (S each). Without SM sharing (comm_sms 0) and with all of the communication
  // hidden (DualPipe's alltoall_hidden 1), a pair is max(its communication, its compute): with
  // tp 1 the communication is the all-to-alls and the sends, and the compute the rest.
  const StepReport r = Scheduled(4, "pp: 2 ep: 4", PipelineSchedule::kDualPipe, 1, false, 0u);
  REQUIRE(r.pipeline_send > Duration());
  auto compute = [](const std::vector<StepOp>& ops) {
    Duration sum;
    for (const StepOp& op : ops)
      if (!op.communication) sum += op.time;
    return sum;
  };
  auto comm = [](const std::vector<StepOp>& ops) {
    Duration sum;
    for (const StepOp& op : ops)
      if (op.communication) sum += op.time;
    return sum;
  };
  const StageOps& s0 = r.stages[0];
  const StageOps& s1 = r.stages[1];
  const Duration c01 = compute(s0.forward) + compute(s1.backward);
  const Duration c10 = compute(s1.forward) + compute(s0.backward);
  const Duration a01 = comm(s0.forward) + comm(s1.backward) + 2 * r.pipeline_send;
  const Duration a10 = comm(s1.forward) + comm(s0.backward);
  REQUIRE(c01 > a01);
  REQUIRE(c10 > a10);
  // The compute outlasts the communication in both pairs: the sends cost nothing there (they
  // used to add 2S to the first pair).
  CHECK(r.pair == Mean(c01, c10));
}

TEST_CASE("Step: interleaved 1F1B divides the bubble by V and sends V times per pass") {
  const StepReport one = Scheduled(4, "pp: 2 ep: 4", PipelineSchedule::k1F1B);
  const StepReport r = Scheduled(4, "pp: 2 ep: 4", PipelineSchedule::kInterleaved, 2);
  // One more send in each pass of each stage: stage 0 forwards 2 (1), backwards 1 (0); stage 1
  // forwards 1 (0), backwards 2 (1).
  const Duration send = r.stage_forward[0] - one.stage_forward[0];
  CHECK(send > Duration());
  CHECK(r.stage_forward[1] - one.stage_forward[1] == send);
  CHECK(r.stage_backward[0] - one.stage_backward[0] == send);
  CHECK(r.stage_backward[1] - one.stage_backward[1] == send);
  // bubble (2 - 1)(F + B) / 2, then F + B and m - 1 = 3 pairs of F + B (no overlap).
  const Duration fb = r.forward + r.backward;
  CHECK(r.bubble == Duration::Picoseconds((fb.picoseconds() + 1) / 2));
  CHECK(r.pipeline == r.bubble + 4 * fb);
}

TEST_CASE("Step: interleaved with overlap_p2p_comm waits on its sends in the fill and drain only") {
  // Absent, overlap.pipeline is Megatron-LM's default: on with the interleaved schedule.
  const StepReport off = Scheduled(4, "pp: 2 ep: 4", PipelineSchedule::kInterleaved, 2, false);
  const StepReport on = Scheduled(4, "pp: 2 ep: 4", PipelineSchedule::kInterleaved, 2, {});
  CHECK(on.pipeline_sends_overlapped);
  CHECK_FALSE(off.pipeline_sends_overlapped);
  const Duration s = on.pipeline_send;
  REQUIRE(s > Duration());
  // The passes leave the sends out: stage 0 forwards 2 and backwards 1, stage 1 forwards 1 and
  // backwards 2 (V = 2 chunks, the model's last chunk and first chunk sending nothing on).
  CHECK(off.stage_forward[0] - on.stage_forward[0] == 2 * s);
  CHECK(off.stage_forward[1] - on.stage_forward[1] == s);
  CHECK(off.stage_backward[0] - on.stage_backward[0] == s);
  CHECK(off.stage_backward[1] - on.stage_backward[1] == 2 * s);
  // bubble: (2 - 1)(F + B) / 2, and the one hop's forward and backward send, (2 - 1) x 2S; then
  // F + B and m - 1 = 3 pairs of F + B (no all-to-all overlap), the sends beside them: the
  // steady pair outlasts a device's 2V = 4 sends of a micro-batch.
  const Duration fb = on.forward + on.backward;
  REQUIRE(fb > 4 * s);
  CHECK(on.bubble == Duration::Picoseconds((fb.picoseconds() + 1) / 2) + 2 * s);
  CHECK(on.pipeline == on.bubble + 4 * fb);
  CHECK(on.step < off.step);
  // 1F1B and DualPipe never overlap them, whatever overlap.pipeline says in C++ (the scenario
  // refuses true there: below).
  const StepReport one = Scheduled(4, "pp: 2 ep: 4", PipelineSchedule::k1F1B, 1, true);
  CHECK_FALSE(one.pipeline_sends_overlapped);

  // The scenario's field: absent, on with the interleaved schedule; refused with 1F1B, located.
  auto config = [](const std::string& fields) {
    pb::Scenario scenario;
    auto file = TextFile::ParseString(
        "step {\n  global_batch: 8\n  seq_len: 128\n" + fields + "}\n", "s.pbtxt", &scenario);
    REQUIRE(file.ok());
    return StepConfigFromSpec(scenario.step(), *file, Fidelity::kAnalytical);
  };
  const std::string interleaved = "  schedule: \"interleaved\"\n";
  auto c = config(interleaved + "  overlap { pipeline: false }\n");
  REQUIRE(c.ok());
  CHECK_FALSE(PipelineSendsOverlapped(*c));
  c = config(interleaved);
  REQUIRE(c.ok());
  CHECK(PipelineSendsOverlapped(*c));
  c = config("  overlap { pipeline: true }\n");
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().message().rfind("s.pbtxt:4:", 0) == 0);
  CHECK_THAT(c.error().message(),
             Catch::Contains("step.overlap.pipeline = true: Megatron-Core overlaps pipeline sends "
                             "only in its interleaved schedule (overlap_p2p_comm); this step's "
                             "schedule is 1f1b; valid: false, or with schedule: \"interleaved\""));
}

TEST_CASE("Step: interleaved 1F1B over uneven chunks prices the bubble at the largest") {
  // 5 layers over pp 2, 3 on the first stage and 2 on the last, V 2: the first stage's chunks are
  // 2 and 1 layers. It holds more layers, so its F + B is the schedule's; its bubble
  // (2 - 1)(F + B) x ceil(3 / 2) / 3 = (F + B) x 2 / 3, where chunks of exactly 1/V would give / 2.
  const std::string plan = "pp: 2 ep: 4 pp_first_stage_layers: 3";
  const StepReport r = Scheduled(5, plan, PipelineSchedule::kInterleaved, 2);
  CHECK(r.slowest_stage == 0);
  const Duration fb = r.forward + r.backward;
  CHECK(r.bubble == Duration::Picoseconds((2 * fb.picoseconds() + 2) / 3));
  CHECK(r.pipeline == r.bubble + 4 * fb);
  // 4 chunks on stages of 3 and 2 layers leave chunks empty: on the first stage chunks of
  // ceil(3 / 4) = 1 of its 3 layers, (F + B) / 3 (as Megatron's layouts give a chunk the embedding
  // or the loss alone).
  const StepReport four = Scheduled(5, plan, PipelineSchedule::kInterleaved, 4);
  const Duration fb4 = four.forward + four.backward;
  CHECK(four.bubble == Duration::Picoseconds((fb4.picoseconds() + 2) / 3));
}

TEST_CASE("Step: SM sharing slows the compute an overlapped all-to-all runs beside") {
  const topology::Cluster cluster = Cluster(2);
  pb::ModelSpec model = *models::LoadCatalogModel("mixtral-8x7b", {}, *models::CatalogDir());
  model.set_num_layers(4);
  const models::Plan plan = Resolve(model, 16, "ep: 8");
  StepConfig c = Training(64, 1024);
  c.overlap.alltoall = true;
  c.overlap.alltoall_hidden = 1.0;                   // as much as the compute and the SMs allow
  c.alltoall_algo = models::AllToAllAlgo::kPerRank;  // DeepEP: 20 SMs of the H100's 132
  const StepReport r = RunStep(cluster, model, plan, Skewed(), c);
  CHECK(r.comm_sms == 20);
  CHECK(r.gpu_sms == 132);
  // A pair: compute C and all-to-alls A of a forward and a backward (no other communication with
  // pp 1 and tp 1): max(A, C + A x 20 / 132), against max(A, C) without sharing.
  Duration compute, a2a;
  for (const StepOp& op : r.ops) (op.alltoall ? a2a : compute) += op.time;
  REQUIRE(compute > a2a);  // so the compute is what the pair waits on
  const Duration lost = Duration::Picoseconds((20 * a2a.picoseconds() + 131) / 132);
  CHECK(r.pair == compute + lost);
  // m - 1 pairs each lose it: 64 / (dp 2 x 1) = 32 micro-batches.
  CHECK(r.sm_sharing == int64_t{r.micro_batches - 1} * lost);
  // No SMs held: the plain max.
  c.comm_sms = 0;
  const StepReport free = RunStep(cluster, model, plan, Skewed(), c);
  CHECK(free.pair == compute);
  CHECK(free.sm_sharing == Duration());
  CHECK(free.step == r.step - r.sm_sharing);
  // Megatron-Core's measured share (the default): at most 36.55 % of the all-to-alls hides, which
  // binds before the SMs do (20 / 132 = 15 % of them lost to the compute):
  // compute + a2a - floor(0.3655 a2a).
  c.comm_sms.reset();
  c.overlap.alltoall_hidden.reset();
  const StepReport megatron = RunStep(cluster, model, plan, Skewed(), c);
  CHECK(megatron.alltoall_hidden == kMegatronEpOverlapHidden);
  CHECK(megatron.pair ==
        compute + a2a -
            Duration::Picoseconds(static_cast<int64_t>(
                std::floor(kMegatronEpOverlapHidden * static_cast<double>(a2a.picoseconds())))));
  CHECK(megatron.pair > r.pair);
}

TEST_CASE("Step: TP overlap runs each TP collective in tp chunks under the GEMM beside it") {
  // Mixtral-8x7B cut to two layers, the first dense (FFN 14,336) and the second MoE with a shared
  // expert, on one node as tp 2, ep 4 (dp 4, pp 1): every TP pair is there, in the forward, the
  // backward and the LM head.
  pb::ModelSpec model = *models::LoadCatalogModel("mixtral-8x7b", {}, *models::CatalogDir());
  model.set_num_layers(2);
  model.set_first_k_dense_layers(1);
  model.set_dense_ffn_size(14336);
  model.set_num_shared_experts(1);

  // Per (layer, pass): C the TP collectives beside a GEMM op, G that op's time. A pair costs
  // max(C, G) + min(C, G) / tp instead of C + G: it saves min(C, G) - floor(min(C, G) / tp). The
  // pairs, by the GEMM op: attn-qkv (the all-gather before it), attn-out (the reduce-scatter after
  // it), dense-ffn and shared-expert (both), lm-head (its all-gather).
  const std::vector<std::pair<std::string, std::vector<std::string>>> pairs = {
      {"attn-qkv", {"tp-allgather-attention"}},
      {"attn-out", {"tp-reducescatter-attention"}},
      {"dense-ffn", {"tp-allgather-ffn", "tp-reducescatter-ffn"}},
      {"shared-expert", {"tp-allgather-shared-expert", "tp-reducescatter-shared-expert"}},
      {"lm-head", {"tp-allgather-lm-head"}}};
  struct Saving {
    Duration saved;
    int comm_bound = 0, gemm_bound = 0;
  };
  auto saving = [&](const StepReport& off, const std::string& pass, int64_t tp) {
    Saving s;
    for (uint32_t layer = 0; layer < 2; ++layer) {
      for (const auto& [gemm, comms] : pairs) {
        Duration g, comm;
        bool found = false;
        for (const StepOp& op : off.ops) {
          if (op.layer != layer || op.pass != pass) continue;
          if (op.name == gemm) {
            g += op.time;
            found = true;
          }
          for (const std::string& name : comms) comm += op.name == name ? op.time : Duration();
        }
        if (!found) continue;
        REQUIRE(comm > Duration());  // every GEMM op of the list has its collective at tp > 1
        const Duration m = std::min(comm, g);
        (comm < g ? s.gemm_bound : s.comm_bound) += 1;
        s.saved += m - Duration::Picoseconds(m.picoseconds() / tp);
      }
    }
    return s;
  };
  // On one node the GEMMs outlast their collectives on NVLink (tp 2, and tp 4: a quarter of each
  // pair's shorter side stays exposed). With each TP pair split over two nodes (tp varying
  // slowest: GPU g pairs with g + 8) the collectives cross a 50 GB/s NIC and outlast the
  // attention's GEMMs. Either way the pass loses exactly the pairs' saving.
  struct Case {
    const char* what;
    uint32_t nodes;
    const char* plan;
    int64_t tp;
    bool across;
    int bound;  // pairs at least bound by the GEMM (in a node) or by the collectives (across)
  };
  for (const Case& k :
       {Case{"tp 2 in a node", 1, "tp: 2 ep: 4", 2, false, 7},
        Case{"tp 4 in a node", 1, "tp: 4 ep: 2", 4, false, 3},  // the smaller GEMMs: 3 of 7
        Case{"tp 2 across nodes", 2, "tp: 2 ep: 4 order: 'ep-dp-pp-tp'", 2, true, 2}}) {
    INFO(k.what);
    const bool across = k.across;
    const topology::Cluster cluster = Cluster(k.nodes);
    const models::Plan plan = Resolve(model, 8 * k.nodes, k.plan);
    StepConfig c = Training(8 * k.nodes, 4096);
    const StepReport off = RunStep(cluster, model, plan, Uniform(), c);
    c.overlap.tp = true;
    const StepReport on = RunStep(cluster, model, plan, Uniform(), c);
    const Saving f = saving(off, "forward", k.tp), b = saving(off, "backward", k.tp);
    CHECK(f.saved > Duration());
    CHECK(f.gemm_bound + f.comm_bound == 7);  // 2 + 2 + 2 + 1 pairs
    CHECK((across ? f.comm_bound : f.gemm_bound) >= k.bound);
    CHECK(on.forward == off.forward - f.saved);
    CHECK(on.backward == off.backward - b.saved);
    // The ops are reported as issued, and the step is faster by every micro-batch's pairs: pp 1,
    // so step = m (F + B) + gradients + optimizer.
    CHECK(on.ops.size() == off.ops.size());
    CHECK(on.step == off.step - int64_t{on.micro_batches} * (f.saved + b.saved));
  }

  // With every schedule, and with the all-to-all overlap beside it, turning it on never makes a
  // step slower (4 layers, tp 2 pp 2 ep 2: 16 / (2 x 2 x 2) = 2 data-parallel ranks, 8
  // micro-batches each).
  {
    pb::ModelSpec four = model;
    four.set_num_layers(4);
    const models::Plan piped = Resolve(four, 8, "tp: 2 pp: 2 ep: 2");
    for (const PipelineSchedule schedule :
         {PipelineSchedule::k1F1B, PipelineSchedule::kInterleaved, PipelineSchedule::kDualPipe}) {
      for (const bool alltoall : {false, true}) {
        INFO("schedule " << static_cast<int>(schedule) << " alltoall " << alltoall);
        StepConfig c = Training(16, 1024);
        c.schedule = schedule;
        if (schedule == PipelineSchedule::kInterleaved) c.virtual_stages = 2;
        c.overlap.alltoall = alltoall;
        const StepReport off = RunStep(Cluster(1), four, piped, Uniform(), c);
        c.overlap.tp = true;
        const StepReport on = RunStep(Cluster(1), four, piped, Uniform(), c);
        CHECK(on.step < off.step);
      }
    }
  }

  // Without TP there is nothing to overlap: the same step bit for bit.
  const topology::Cluster cluster = Cluster(1);
  const models::Plan no_tp = Resolve(model, 8, "ep: 4");
  StepConfig c = Training(8, 4096);
  const StepReport a = RunStep(cluster, model, no_tp, Uniform(), c);
  c.overlap.tp = true;
  const StepReport b = RunStep(cluster, model, no_tp, Uniform(), c);
  CHECK(a.step == b.step);

  // The scenario's step.overlap.tp turns it on.
  pb::Scenario scenario;
  auto file = TextFile::ParseString(
      "step {\n  global_batch: 8\n  seq_len: 4096\n  overlap { tp: true }\n}\n", "s.pbtxt",
      &scenario);
  REQUIRE(file.ok());
  auto parsed = StepConfigFromSpec(scenario.step(), *file, Fidelity::kAnalytical);
  REQUIRE(parsed.ok());
  CHECK(parsed->overlap.tp);
}

TEST_CASE("Step: a host cost per kernel delays the GPU where the host falls behind") {
  // The tiny model (2 MoE layers) as ep 2 on 8 GPUs, pp 1: a forward and a backward per
  // micro-batch, no pipeline sends.
  const topology::Cluster cluster = Cluster(1);
  const pb::ModelSpec model = Tiny();
  const models::Plan plan = Resolve(model, 8, "ep: 2");
  StepConfig c = Training(16, 256);
  const StepReport off = RunStep(cluster, model, plan, Uniform(), c);
  CHECK(off.host_wait == Duration());
  // The kernels each op issues (KernelModel::Launches): the QKV projection one GEMM, its backward
  // two (dgrad, wgrad); a collective one; the experts, 2 of 4 a rank at ep 2 in BF16's per-expert
  // loop, fc1 and fc2 of each forward, and their dgrad and wgrad back: 4 and 8.
  uint64_t total = 0;
  for (const StepOp& op : off.ops) {
    INFO(op.pass << " " << op.name);
    total += op.kernels;
    const bool back = op.pass == "backward";
    if (op.name == "attn-qkv") CHECK(op.kernels == (back ? 2u : 1u));
    if (op.name == "dispatch" || op.name == "combine") CHECK(op.kernels == 1u);
    if (op.name == "expert") CHECK(op.kernels == (back ? 8u : 4u));
  }
  CHECK(off.kernels_per_micro_batch == total);  // pp 1: the report's ops are the stage's

  // A host 1 ps a kernel, far quicker than any kernel (each >= the 4 us launch): the GPU waits
  // only where the host starts behind it, at the pass's first kernel and after each dispatch, where
  // the host waits for the GPU (the received counts) and then issues the next kernel 1 ps later.
  // The forward has 2 dispatches: 1 + 2 ps; the backward none: 1 ps.
  c.host_per_kernel = Duration::Picoseconds(1);
  const StepReport tiny = RunStep(cluster, model, plan, Uniform(), c);
  CHECK(tiny.forward == off.forward + Duration::Picoseconds(3));
  CHECK(tiny.backward == off.backward + Duration::Picoseconds(1));
  CHECK(tiny.host_wait == Duration::Picoseconds(4));
  // DeepEP's low-latency kernels take fixed-size buffers: no host wait at the dispatch.
  StepConfig ll = c;
  ll.alltoall_algo = models::AllToAllAlgo::kDeepEpLowLatency;
  const StepReport ll_on = RunStep(cluster, model, plan, Uniform(), ll);
  ll.host_per_kernel = Duration();
  const StepReport ll_off = RunStep(cluster, model, plan, Uniform(), ll);
  CHECK(ll_on.forward == ll_off.forward + Duration::Picoseconds(1));

  // A host 1 s a kernel, far slower than any kernel: the host issues every kernel of the pass
  // after the one before has run, so the pass takes n x 1 s plus at most its kernels' own time
  // (the last kernel's run, and each dispatch's wait for the kernel before it).
  c.host_per_kernel = Duration::Picoseconds(1'000'000'000'000);
  const StepReport slow = RunStep(cluster, model, plan, Uniform(), c);
  CHECK(slow.kernels_per_micro_batch == off.kernels_per_micro_batch);
  const int64_t n = static_cast<int64_t>(slow.kernels_per_micro_batch);
  const Duration kernels = off.forward + off.backward;
  CHECK(slow.forward + slow.backward >= n * c.host_per_kernel);
  CHECK(slow.forward + slow.backward <= n * c.host_per_kernel + kernels);
  CHECK(slow.host_wait == slow.forward + slow.backward - kernels);

  // The scenario's step.host_us_per_kernel: microseconds.
  pb::Scenario scenario;
  auto file = TextFile::ParseString(
      "step {\n  global_batch: 8\n  seq_len: 64\n  host_us_per_kernel: 12.5\n}\n", "s.pbtxt",
      &scenario);
  REQUIRE(file.ok());
  auto parsed = StepConfigFromSpec(scenario.step(), *file, Fidelity::kAnalytical);
  REQUIRE(parsed.ok());
  CHECK(parsed->host_per_kernel == Duration::Picoseconds(12'500'000));
}

TEST_CASE("Step: a multi-token-prediction module runs after the LM head and counts in MFU") {
  // One module on the tiny model, per token: attention 16,384 + router 256 + 2 experts x 6,144
  // + projection 2 x 64^2 = 8,192 + LM head 6,400 = 43,520 weights, 87,040 FLOPs, and its
  // attention over 128 tokens 2 x (64 + 64) x 128 = 32,768: 119,808.
  const pb::ModelSpec model = Tiny();
  CHECK(models::MtpForwardFlopsPerToken(model, 128, 1) == 119'808);
  CHECK(models::MtpForwardFlopsPerToken(model, 128, 2) == 239'616);
  const topology::Cluster cluster = Cluster(1);
  const models::Plan plan = Resolve(model, 8, "ep: 4");
  StepConfig c = Training(16, 128);
  const StepReport off = RunStep(cluster, model, plan, Uniform(), c);
  c.mtp_depth = 1;
  const StepReport r = RunStep(cluster, model, plan, Uniform(), c);
  // Its ops are layer 2 (= the model's layers): projection, a block like layer 1, the LM head.
  Duration mtp;
  std::vector<std::string> names;
  for (const StepOp& op : Pass(r, "forward")) {
    if (op.layer != 2) continue;
    mtp += op.time;
    names.push_back(op.name);
  }
  CHECK(names == std::vector<std::string>{"mtp-projection", "attn-norm", "attn-qkv", "rope",
                                          "attn-core", "attn-out", "ffn-norm", "router",
                                          "router-topk", "dispatch-layout", "permute", "dispatch",
                                          "expert", "expert-act", "combine", "unpermute",
                                          "final-norm", "lm-head", "loss"});
  CHECK(r.mtp_forward == mtp);
  CHECK(r.forward == off.forward + mtp);
  // MFU counts 3 x (forward + the module's) FLOPs per token over the step.
  const double tokens = 16.0 * 128, peak = PeakFlops(cluster.gpu_spec(), pb::BF16).per_second();
  const double flops =
      static_cast<double>(models::TrainingFlopsPerToken(model, 128) + 3 * 119'808) * tokens;
  CHECK(r.mfu == Approx(flops / (static_cast<double>(r.step.picoseconds()) / 1e12 * 8 * peak)));
}

TEST_CASE("Step: schedules, recompute modules, MTP and comm SMs are parsed and checked") {
  pb::Scenario scenario;
  auto file = TextFile::ParseString(
      "step {\n  global_batch: 8\n  seq_len: 128\n  schedule: \"interleaved\"\n"
      "  recompute_modules: [\"norm\", \"moe_act\"]\n  fp8_activations: true\n"
      "  mtp_depth: 1\n  comm_sms: 24\n}\n",
      "s.pbtxt", &scenario);
  REQUIRE(file.ok());
  auto c = StepConfigFromSpec(scenario.step(), *file, Fidelity::kAnalytical);
  REQUIRE(c.ok());
  CHECK(c->schedule == PipelineSchedule::kInterleaved);
  CHECK(c->virtual_stages == 2);  // the default
  CHECK(c->recompute == Recompute::kModules);
  CHECK(c->recompute_modules.norm);
  CHECK(c->recompute_modules.moe_act);
  CHECK_FALSE(c->recompute_modules.attention_core);
  CHECK(c->fp8_activations);
  CHECK(c->mtp_depth == 1);
  CHECK(c->comm_sms == 24u);

  auto both = TextFile::ParseString(
      "step {\n  global_batch: 8\n  seq_len: 128\n  recompute: FULL\n"
      "  recompute_modules: \"norm\"\n}\n",
      "s.pbtxt", &scenario);
  REQUIRE(both.ok());
  auto ambiguous = StepConfigFromSpec(scenario.step(), *both, Fidelity::kAnalytical);
  REQUIRE_FALSE(ambiguous.ok());
  CHECK_THAT(ambiguous.error().message(), Catch::StartsWith("s.pbtxt:4:3: step.recompute = FULL"));

  auto chunks = TextFile::ParseString(
      "step {\n  global_batch: 8\n  seq_len: 128\n  virtual_stages: 2\n}\n", "s.pbtxt", &scenario);
  REQUIRE(chunks.ok());
  auto lone = StepConfigFromSpec(scenario.step(), *chunks, Fidelity::kAnalytical);
  REQUIRE_FALSE(lone.ok());
  CHECK_THAT(lone.error().message(),
             Catch::StartsWith("s.pbtxt:4:3: step.virtual_stages = 2: chunks per device are the "
                               "interleaved schedule's"));
}

TEST_CASE("Kernel FLOPs bound: attention over every pair, or the widest GEMM") {
  const pb::ModelSpec model = *models::LoadCatalogModel("mixtral-8x7b", {}, *models::CatalogDir());
  StepConfig c;
  c.micro_batch = 2;
  c.seq_len = uint64_t{1} << 24;
  // Attention: 5 x (2 x 2^24 tokens) x 2^24 keys x 32 heads x (128 + 128) = 10 x 2^61
  // = 23,058,430,092,136,939,520: past 2^64 (1.84e19), so SimulateStep refuses this micro-batch.
  CHECK(KernelFlopsUpperBound(model, c) == 23058430092136939520.0);
  // Decode of 1000 sequences of 4096: attention 5 x 1000 x 4096 x 8192 = 1.68e11; the GEMMs,
  // 4 x 1000 tokens x 4096 hidden x max(14336 x 2, 32000 vocabulary, 4 x 4096) = 5.24288e11.
  c.mode = StepMode::kDecode;
  c.micro_batch = 1000;
  c.seq_len = 4096;
  CHECK(KernelFlopsUpperBound(model, c) == 524'288'000'000.0);
}

}  // namespace moesim::sim
