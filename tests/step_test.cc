#include "sim/step/step.h"

#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <utility>

#include "models/model_spec.h"
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

StepReport Run(const topology::Cluster& cluster, const pb::ModelSpec& model,
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

}  // namespace

TEST_CASE("Step: four all-to-alls per MoE layer per micro-batch in training, two in inference") {
  const topology::Cluster cluster = Cluster(1);
  const pb::ModelSpec model = Tiny();
  const models::Plan plan = Resolve(model, 8, "ep: 4");
  // 2 MoE layers: dispatch and combine forward, and their gradients backward = 4 per layer.
  StepReport train = Run(cluster, model, plan, Uniform(), Training(16, 128));
  CHECK(train.alltoalls_per_micro_batch == 8);
  CHECK(Count(train, "dispatch") == 4);  // 2 layers x (forward + backward)
  CHECK(Count(train, "combine") == 4);
  // global batch 16 over dp 8 with micro-batch 1: 2 micro-batches.
  CHECK(train.micro_batches == 2);

  StepConfig prefill = Training(16, 128);
  prefill.mode = StepMode::kPrefill;
  StepReport infer = Run(cluster, model, plan, Uniform(), prefill);
  CHECK(infer.alltoalls_per_micro_batch == 4);  // 2 layers x (dispatch + combine)
  CHECK(infer.backward == Duration());
  CHECK(infer.grad_sync == Duration());

  StepConfig decode = prefill;
  decode.mode = StepMode::kDecode;
  StepReport dec = Run(cluster, model, plan, Uniform(), decode);
  CHECK(dec.alltoalls_per_micro_batch == 4);
}

TEST_CASE("Step: bytes of the DP gradient reductions") {
  const topology::Cluster cluster = Cluster(1);
  const pb::ModelSpec model = Tiny();
  // ep 4 over dp 8 (tp 1, pp 1): edp = 8 / 4 = 2.
  const models::Plan plan = Resolve(model, 8, "ep: 4");
  const StepReport r = Run(cluster, model, plan, Uniform(), Training(16, 128));
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
  const StepReport r = Run(cluster, model, plan, Uniform(), Training(32, 256));
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
  pb::ModelSpec model = *models::LoadCatalogModel("mixtral-8x7b", {}, models::CatalogDir());
  model.set_num_layers(4);
  model.set_num_shared_experts(1);  // so the shared-expert overlap has something to hide
  // EP 8 across the two nodes' GPUs by a dp-major order? Default order keeps EP inside a node;
  // ep 16 (8 experts would not divide) is impossible, so EP 8 with dp 2 and a skewed routing.
  const models::Plan plan = Resolve(model, 16, "ep: 8");
  for (const Recompute recompute : {Recompute::kNone, Recompute::kFull}) {
    StepConfig base = Training(64, 1024);
    base.recompute = recompute;
    const StepReport off = Run(cluster, model, plan, Skewed(), base);
    for (int which = 0; which < 3; ++which) {
      StepConfig on = base;
      if (which == 0) on.overlap.alltoall = true;
      if (which == 1) on.overlap.shared_expert = true;
      if (which == 2) on.overlap.gradients = true;
      const StepReport r = Run(cluster, model, plan, Skewed(), on);
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
  const StepReport all = Run(cluster, model, plan, Skewed(), c);
  CHECK(all.dropped_copies == 0);
  // 4 ranks x 512 tokens x top-2 routed copies per MoE layer per micro-batch.
  CHECK(all.routed_copies == 4 * 512 * 2);
  c.capacity_factor = 1.0;
  const StepReport capped = Run(cluster, model, plan, Skewed(), c);
  // Zipf 1.5 over 4 experts sends most copies to expert 0, beyond ceil(512 x 2 / 4) = 256 per
  // sender: those are dropped, and the busiest rank computes fewer tokens.
  CHECK(capped.dropped_copies > 0);
  CHECK(capped.dropped_copies < capped.routed_copies);
  CHECK(capped.step < all.step);
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
  const StepReport d = Run(cluster, model, plan, Uniform(), direct);
  const StepReport h = Run(cluster, model, plan, Uniform(), relayed);
  CHECK(TimeOf(h, "dispatch") < TimeOf(d, "dispatch"));
  CHECK(TimeOf(h, "combine") < TimeOf(d, "combine"));
  CHECK(TimeOf(h, "expert") == TimeOf(d, "expert"));  // the same tokens reach the same experts
  CHECK(h.hardware.find("hierarchical (DeepEP, deduplicated per node)") != std::string::npos);

  // EP inside one node: nothing to relay; the direct exchange stays, and the report says why.
  const topology::Cluster one = Cluster(1);
  const models::Plan inside = Resolve(model, 8, "ep: 8");
  const StepReport n = Run(one, model, inside, Uniform(), relayed);
  StepConfig one_direct = relayed;
  one_direct.alltoall_algo = models::AllToAllAlgo::kDirect;
  CHECK(TimeOf(n, "dispatch") ==
        TimeOf(Run(one, model, inside, Uniform(), one_direct), "dispatch"));
  CHECK(n.hardware.find("direct (hierarchical needs an EP group over several nodes") !=
        std::string::npos);

  // ETP 2 lays an EP group of 8 on every other GPU of the 2 nodes: 4 on each, so the relay runs,
  // but a routing's node counts (node = rank / 8) are not the group's nodes: every copy crosses.
  const models::Plan strided = Resolve(model, 16, "ep: 8 etp: 2");
  const StepReport s = Run(cluster, model, strided, Uniform(), relayed);
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
  const StepReport h = Run(cluster, model, plan, Uniform(), hierarchical);
  const StepReport n = Run(cluster, model, plan, Uniform(), normal);
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
  const StepReport nf = Run(cluster, model, plan, Uniform(), normal_flow);
  CHECK(TimeOf(nf, "dispatch") >= TimeOf(n, "dispatch"));
  CHECK(TimeOf(nf, "combine") >= TimeOf(n, "combine"));

  // Low latency: every copy crosses (no deduplication), each with its 16-byte header.
  const StepReport l = Run(cluster, model, plan, Uniform(), low_latency);
  CHECK(TimeOf(l, "dispatch") > TimeOf(n, "dispatch"));
  CHECK(l.hardware.find("deepep_low_latency (DeepEP low-latency kernels: a message per token and "
                        "expert, RDMA across nodes, NVLink within one; 330M messages/s per NIC)") !=
        std::string::npos);

  // deepep_normal with the EP group inside one node runs DeepEP's intranode kernels: per_rank.
  const topology::Cluster one = Cluster(1);
  const models::Plan inside = Resolve(model, 8, "ep: 8");
  const StepConfig per_rank = Prefill(models::AllToAllAlgo::kPerRank);
  const StepReport i = Run(one, model, inside, Uniform(), normal);
  CHECK(TimeOf(i, "dispatch") == TimeOf(Run(one, model, inside, Uniform(), per_rank), "dispatch"));
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
  const StepReport e = Run(cluster, model, split, Uniform(), config);
  const StepReport w = Run(cluster, model, whole, Uniform(), config);
  CHECK(Count(e, "etp-allgather") == 4);
  CHECK(Count(e, "etp-reducescatter") == 4);
  CHECK(Count(w, "etp-allgather") == 0);
  // Each GPU holds half of each of its experts: its expert gradients halve (params / (ep x etp)).
  CHECK(2 * e.expert_grad_bytes == w.expert_grad_bytes);
  CHECK(e.dense_grad_bytes == w.dense_grad_bytes);

  // The expert op: every ETP rank runs both members' tokens (2n per expert, the routing being the
  // same on each) through FFN 32 / 2 = 16: 6 (2n) h (f / 2) = 6nhf FLOPs, half the weights.
  auto work = StepMoeLayer(model, split, Uniform(), {}, 8, config, nullptr);
  REQUIRE(work.ok());
  const ComputeRates rates = StepComputeRates(cluster, model.dtype(), config);
  pb::ModelSpec half = model;
  half.set_expert_ffn_size(16);
  Duration slowest;
  for (std::vector<uint64_t> counts : work->expert_tokens) {
    for (uint64_t& n : counts) n *= 2;
    slowest = std::max(slowest, ExpertTime(rates, half, counts));
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

TEST_CASE("Step: per_rank EP all-to-alls send each token once per GPU, FP8 one way, BF16 back") {
  // tests/fixtures/two_nodes_4gpu.pbtxt (2 x 4 H100, NVLink 400 GB/s, one 50 GB/s NIC per GPU,
  // line rates), EP 8, hidden 4096, 16 experts (2 per GPU), top-2; the layer as in
  // tests/moe_layer_test.cc's per-rank case: GPU 0's token to two experts on GPU 5, GPU 1's to
  // two on GPU 2, every other token to its own GPU's two experts.
  auto cluster =
      topology::LoadClusterArgument(testing::SourcePath("tests/fixtures/two_nodes_4gpu.pbtxt"), "");
  REQUIRE(cluster.ok());
  const pb::ModelSpec model = Parse<pb::ModelSpec>(
      "name: 'toy' hidden_size: 4096 expert_ffn_size: 14336 num_experts: 16 top_k: 2 "
      "num_layers: 1 dtype: BF16 vocab_size: 100");
  const models::Plan plan = Resolve(model, 8, "ep: 8");
  models::LayerWork work;
  work.dispatch_tokens = models::TrafficMatrix(8);
  work.rank_tokens = models::TrafficMatrix(8);
  work.dispatch_tokens.at(0, 5) = 2;  // copies
  work.dispatch_tokens.at(1, 2) = 2;
  work.rank_tokens.at(0, 5) = 1;  // distinct tokens
  work.rank_tokens.at(1, 2) = 1;
  for (uint32_t r = 2; r < 8; ++r) {
    work.dispatch_tokens.at(r, r) = 2;
    work.rank_tokens.at(r, r) = 1;
  }
  work.expert_tokens = {{0, 0}, {0, 0}, {2, 2}, {1, 1}, {1, 1}, {2, 2}, {1, 1}, {1, 1}};
  work.tokens_in.assign(8, 1);
  work.dropped.assign(8, 0);
  StepConfig config = Training(8, 1);
  config.mode = StepMode::kPrefill;
  auto step = [&](models::AllToAllAlgo algo, std::optional<models::WireDtype> dispatch,
                  std::optional<models::WireDtype> combine) {
    StepConfig c = config;
    c.alltoall_algo = algo;
    c.dispatch_dtype = dispatch;
    c.combine_dtype = combine;
    auto r = SimulateStep(*cluster, model, plan, work, c);
    if (!r.ok()) FAIL(r.error().message());
    return *r;
  };
  // The bytes each exchange must carry, by hand; GroupAllToAllV prices them as NCCL would
  // (sim/network/group_comm.h, its NCCL latency and protocol pinned in its own tests). Crossing
  // GPU 0 -> 5 and GPU 1 -> 2, and kept on GPUs 2 to 7 (the diagonal, which moves no bytes):
  //   direct, BF16:      2 copies x 4096 x 2 B = 16,384 B each
  //   per_rank, BF16:    1 token x 8,192 B each
  //   per_rank, FP8:     1 token x (4096 + 4096 / 128 x 4) = 4,224 B each
  const std::unique_ptr<NetworkModel> net = MakeNetworkModel(*cluster, Fidelity::kAnalytical);
  auto priced = [&](uint64_t bytes) {
    models::TrafficMatrix m(8);
    m.at(0, 5) = bytes;
    m.at(1, 2) = bytes;
    for (uint32_t r = 2; r < 8; ++r) m.at(r, r) = bytes;
    return std::pair{GroupAllToAllV(*net, plan.EpGroup(0), m).time,
                     GroupAllToAllV(*net, plan.EpGroup(0), m.Transposed()).time};
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

  // A layer without per-token ranks (an expected layer not filled) sends every copy, and says so.
  models::LayerWork copies_only = work;
  copies_only.rank_tokens = models::TrafficMatrix();
  StepConfig c = config;
  c.alltoall_algo = models::AllToAllAlgo::kPerRank;
  auto r = SimulateStep(*cluster, model, plan, copies_only, c);
  REQUIRE(r.ok());
  CHECK(TimeOf(*r, "dispatch") == direct_bf16);
  CHECK(r->hardware.find("per_rank needs each token's GPUs") != std::string::npos);
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

}  // namespace moesim::sim
