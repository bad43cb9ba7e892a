// A whole training step worked out by hand (sim/step/step.h, sim/step/step_ops.h,
// sim/compute/kernel_model.h): every op's time, forward and backward, the pipeline, the gradient
// reduction, the optimizer, MFU, and each overlap, to the picosecond. The collectives are priced
// by the network model (pinned in its own tests) on bytes counted here by hand.
//
// The step: 2 DGX H100 nodes (16 GPUs), EP 16 (tp 1, pp 1, dp 16, edp 1); a one-layer MoE model
// with hidden h = 1024, 8 heads of 128 (MHA), 16 experts of FFN 512 (SwiGLU), top-8, one shared
// expert, vocabulary 1024, BF16; training, 32 sequences of 1024 tokens, micro-batch 1: 2
// micro-batches per GPU. The routing is balanced by hand: every GPU routes its 1024 tokens x 8 =
// 8192 copies as 512 to each expert, one expert per GPU, so every GPU computes 8192 rows.
//
// Rates on an H100 (sim/compute/kernel_model.h): dense BF16 GEMMs 785.6 TFLOP/s, expert GEMMs
// (the per-expert loop) 688, FlashAttention at 1024 tokens 565 forward and 424 backward, memory
// 2,979,406,250,000 B/s, 4 us a kernel. Each kernel takes ceil(amount x 1e12 / rate) ps for its
// FLOPs and for its bytes, the larger, plus the launch; an op is the sum of its kernels.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <memory>

#include "sim/network/group_comm.h"
#include "sim/step/step.h"
#include "step_fixtures.h"

namespace moesim::sim {
namespace {

using testing::Parse;

constexpr int64_t kLaunchNs = 4'000'000;  // ps

pb::ModelSpec Model() {
  return Parse<pb::ModelSpec>(
      "name: 'pin' hidden_size: 1024 expert_ffn_size: 512 num_experts: 16 top_k: 8 num_layers: 1 "
      "dtype: BF16 vocab_size: 1024 num_shared_experts: 1 attention { kind: MHA num_heads: 8 }");
}

models::Plan Plan(const pb::ModelSpec& model, const std::string& text) {
  auto p = models::ResolvePlan(Parse<pb::ParallelPlan>(text), 16, model, nullptr);
  REQUIRE(p.ok());
  return *p;
}

// Every GPU sends `per_pair` token copies to each GPU's one expert.
models::LayerWork Balanced(uint64_t tokens, uint64_t per_pair) {
  models::LayerWork w;
  w.dispatch_tokens = models::TrafficMatrix(16);
  for (uint32_t i = 0; i < 16; ++i) {
    for (uint32_t j = 0; j < 16; ++j) w.dispatch_tokens.at(i, j) = per_pair;
  }
  w.expert_tokens.assign(16, {16 * per_pair});
  w.tokens_in.assign(16, tokens);
  w.dropped.assign(16, 0);
  return w;
}

StepConfig Training() {
  StepConfig c;
  c.global_batch = 32;
  c.seq_len = 1024;
  return c;
}

StepReport Run(const topology::Cluster& cluster, const models::Plan& plan,
               const models::LayerWork& work, const StepConfig& config) {
  auto r = SimulateStep(cluster, Model(), plan, work, config);
  if (!r.ok()) FAIL(r.error().message());
  return *r;
}

// (pass, name) -> time in ps; every op appears once here (one layer, one stage).
std::map<std::pair<std::string, std::string>, int64_t> Times(const StepReport& r) {
  std::map<std::pair<std::string, std::string>, int64_t> t;
  for (const StepOp& op : r.ops) {
    INFO(op.pass << " " << op.name);
    CHECK(t.count({op.pass, op.name}) == 0);
    t[{op.pass, op.name}] = op.time.picoseconds();
  }
  return t;
}

}  // namespace

TEST_CASE("Step values: a one-layer MoE step on 16 H100s, every op and overlap by hand") {
  const topology::Cluster cluster = testing::DgxH100(2);
  const models::Plan plan = Plan(Model(), "ep: 16");
  const models::LayerWork work = Balanced(1024, 512);
  const StepReport r = Run(cluster, plan, work, Training());
  auto t = Times(r);

  // The collectives, on bytes by hand. Dispatch: 512 copies x 1024 x 2 B = 1,048,576 B between
  // every pair of GPUs; combine the transpose (the same); their gradients the same again.
  const std::unique_ptr<NetworkModel> net = MakeNetworkModel(cluster, Fidelity::kAnalytical);
  models::TrafficMatrix pair_bytes(16);
  for (uint32_t i = 0; i < 16; ++i) {
    for (uint32_t j = 0; j < 16; ++j) pair_bytes.at(i, j) = 1'048'576;
  }
  const int64_t dispatch = GroupAllToAllV(*net, plan.EpGroup(0), pair_bytes).time.picoseconds();
  REQUIRE(dispatch > 0);
  CHECK(t[{"forward", "dispatch"}] == dispatch);
  CHECK(t[{"forward", "combine"}] == dispatch);
  CHECK(t[{"backward", "combine"}] == dispatch);
  CHECK(t[{"backward", "dispatch"}] == dispatch);

  // Forward, t = n = 1024 tokens (tp 1), a = 2 B per activation:
  // embedding: 2 t h a = 4,194,304 B = 1,407,766 ps + 4 us.
  CHECK(t[{"forward", "embedding"}] == 1'407'766 + kLaunchNs);
  // attn-norm: residual add + RMSNorm, 4 n h a = 8,388,608 B = 2,815,531 ps.
  CHECK(t[{"forward", "attn-norm"}] == 2'815'531 + kLaunchNs);
  // attn-qkv: [1024, 1024] x [1024, 3072]: 6,442,450,944 FLOPs = 8,200,676 ps (its 14,680,064 B
  // take 4,927,178).
  CHECK(t[{"forward", "attn-qkv"}] == 8'200'676 + kLaunchNs);
  // rope: q and k (2 x 1024 wide) read and written: 2 t 2048 a = 8,388,608 B.
  CHECK(t[{"forward", "rope"}] == 2'815'531 + kLaunchNs);
  // attn-core: causal, 1024 x 1025 / 2 = 524,800 pairs x 2 x (1024 + 1024) = 2,149,580,800 FLOPs
  // at 565 TFLOP/s = 3,804,568 ps (q, k, v, o and the log-sum-exp: 8,421,376 B = 2,826,529).
  CHECK(t[{"forward", "attn-core"}] == 3'804'568 + kLaunchNs);
  // attn-out: [1024, 1024] x [1024, 1024]: 2,147,483,648 FLOPs = 2,733,559 ps.
  CHECK(t[{"forward", "attn-out"}] == 2'733'559 + kLaunchNs);
  CHECK(t[{"forward", "ffn-norm"}] == 2'815'531 + kLaunchNs);
  // router: [1024, 1024] x [1024, 16] in BF16: 33,554,432 FLOPs = 42,712 ps, but its 2,162,688 B
  // take 725,879 ps.
  CHECK(t[{"forward", "router"}] == 725'879 + kLaunchNs);
  // router-topk: 8 n E + 12 n k = 131,072 + 98,304 = 229,376 B = 76,988 ps.
  CHECK(t[{"forward", "router-topk"}] == 76'988 + kLaunchNs);
  // dispatch-layout: 8 n k + n ep + 4 (ep + E) = 65,536 + 16,384 + 128 = 82,048 B = 27,539 ps,
  // and the count exchange's 128 B = 43 ps: two kernels.
  CHECK(t[{"forward", "dispatch-layout"}] == 27'539 + 43 + 2 * kLaunchNs);
  // permute: 2 n k h a = 33,554,432 B = 11,262,121 ps.
  CHECK(t[{"forward", "permute"}] == 11'262'121 + kLaunchNs);
  // shared-expert: fc1 [1024, 1024] x [1024, 1024] (gate and up, 2 x 512) 2,733,559 ps; fc2
  // [1024, 512] x [512, 1024]: 1,073,741,824 FLOPs = 1,366,780 ps but 4,194,304 B = 1,407,766.
  CHECK(t[{"forward", "shared-expert"}] == 2'733'559 + 1'407'766 + 2 * kLaunchNs);
  // shared-expert-act: SwiGLU, 3 t f a = 3,145,728 B = 1,055,824 ps.
  CHECK(t[{"forward", "shared-expert-act"}] == 1'055'824 + kLaunchNs);
  // expert: 8192 rows at 688 TFLOP/s, one launch per GEMM (the loop, one expert): fc1 [8192,
  // 1024] x [1024, 1024] 17,179,869,184 FLOPs = 24,970,741 ps; fc2 [8192, 512] x [512, 1024]
  // 8,589,934,592 FLOPs = 12,485,371 ps.
  CHECK(t[{"forward", "expert"}] == 24'970'741 + 12'485'371 + 2 * kLaunchNs);
  // expert-act: 3 x 8192 x 512 x 2 = 25,165,824 B = 8,446,591 ps.
  CHECK(t[{"forward", "expert-act"}] == 8'446'591 + kLaunchNs);
  // unpermute: (n k + n) h a = 18,874,368 B = 6,334,943 ps.
  CHECK(t[{"forward", "unpermute"}] == 6'334'943 + kLaunchNs);
  // final-norm: 3 n h a = 6,291,456 B = 2,111,648 ps.
  CHECK(t[{"forward", "final-norm"}] == 2'111'648 + kLaunchNs);
  // lm-head: [1024, 1024] x [1024, 1024 vocabulary] in BF16: 2,733,559 ps.
  CHECK(t[{"forward", "lm-head"}] == 2'733'559 + kLaunchNs);
  // loss: 6 bytes a logit, 6 x 1024 x 1024 = 6,291,456 B.
  CHECK(t[{"forward", "loss"}] == 2'111'648 + kLaunchNs);
  const int64_t f_compute = 189'077'382;  // the 20 compute ops above

  // Backward: each op's gradient kernels (dispatch-layout has none).
  CHECK(t.count({"backward", "dispatch-layout"}) == 0);
  CHECK(t[{"backward", "loss"}] == 2'111'648 + kLaunchNs);
  // lm-head: dgrad [1024, 1024] x [1024, 1024] 2,733,559 ps; wgrad the same FLOPs, its 12,582,912
  // B (FP32 gradient read and written) take 4,223,296 ps.
  CHECK(t[{"backward", "lm-head"}] == 2'733'559 + 4'223'296 + 2 * kLaunchNs);
  CHECK(t[{"backward", "final-norm"}] == 2'111'648 + kLaunchNs);
  // unpermute: (2 n k + n) h a = 35,651,584 B = 11,966,003 ps.
  CHECK(t[{"backward", "unpermute"}] == 11'966'003 + kLaunchNs);
  // expert-act: 5 x 8192 x 512 x 2 = 41,943,040 B = 14,077,651 ps.
  CHECK(t[{"backward", "expert-act"}] == 14'077'651 + kLaunchNs);
  // expert: fc2 dgrad and wgrad 12,485,371 ps each, fc1 dgrad and wgrad 24,970,741 each (the
  // same FLOPs as forward, compute-bound): twice the forward, four launches.
  CHECK(t[{"backward", "expert"}] == 2 * (24'970'741 + 12'485'371) + 4 * kLaunchNs);
  // shared-expert-act: 5 t f a = 5,242,880 B = 1,759,707 ps.
  CHECK(t[{"backward", "shared-expert-act"}] == 1'759'707 + kLaunchNs);
  // shared-expert: fc2 dgrad [1024, 1024] x [1024, 512] 1,407,766 ps (bytes), wgrad [512, 1024]
  // x [1024, 1024] 7,340,032 B = 2,463,589 ps; fc1 dgrad 2,733,559, wgrad 4,223,296 (bytes).
  CHECK(t[{"backward", "shared-expert"}] ==
        1'407'766 + 2'463'589 + 2'733'559 + 4'223'296 + 4 * kLaunchNs);
  // permute: the scatter-add back, (n k + n) h a = 18,874,368 B = 6,334,943 ps.
  CHECK(t[{"backward", "permute"}] == 6'334'943 + kLaunchNs);
  // router-topk: 8 n E + 4 n k = 163,840 B = 54,991 ps.
  CHECK(t[{"backward", "router-topk"}] == 54'991 + kLaunchNs);
  // router: dgrad 2,162,688 B = 725,879 ps; wgrad 2,260,992 B = 758,874 ps.
  CHECK(t[{"backward", "router"}] == 725'879 + 758'874 + 2 * kLaunchNs);
  CHECK(t[{"backward", "ffn-norm"}] == 2'815'531 + kLaunchNs);
  CHECK(t[{"backward", "attn-out"}] == 2'733'559 + 4'223'296 + 2 * kLaunchNs);
  // attn-core: 2.5 x 2,149,580,800 = 5,373,952,000 FLOPs at 424 TFLOP/s = 12,674,416 ps.
  CHECK(t[{"backward", "attn-core"}] == 12'674'416 + kLaunchNs);
  CHECK(t[{"backward", "rope"}] == 2'815'531 + kLaunchNs);
  // attn-qkv: dgrad 8,200,676 ps; wgrad 8,200,676 (its 33,554,432 B take 11,262,121).
  CHECK(t[{"backward", "attn-qkv"}] == 8'200'676 + 11'262'121 + 2 * kLaunchNs);
  CHECK(t[{"backward", "attn-norm"}] == 2'815'531 + kLaunchNs);
  // embedding: t h (a + 8) = 10,485,760 B = 3,519,413 ps.
  CHECK(t[{"backward", "embedding"}] == 3'519'413 + kLaunchNs);
  const int64_t b_compute = 295'658'707;  // the 19 compute ops above

  // One micro-batch: F and B; two of them, no pipeline stages: 2 (F + B), no overlap.
  const int64_t a2a = 2 * dispatch;  // per pass
  const int64_t f = f_compute + a2a, b = b_compute + a2a;
  CHECK(r.forward.picoseconds() == f);
  CHECK(r.backward.picoseconds() == b);
  CHECK(r.pair.picoseconds() == f + b);
  CHECK(r.bubble == Duration());
  CHECK(r.pipeline.picoseconds() == 2 * (f + b));
  CHECK(r.alltoalls_per_micro_batch == 4);
  CHECK(r.alltoall.picoseconds() == 2 * 2 * a2a);

  // Gradients, fp32: dense 1024^2 (embedding) + 1024^2 (LM head) + 4 x 1024^2 (attention) +
  // 1024 x 16 (router) + 3 x 1024 x 512 (shared expert) = 7,880,704 parameters: 31,522,816 B
  // reduce-scattered over the 16 GPUs, then the BF16 weights, 15,761,408 B, all-gathered; the
  // expert's 1,572,864 over its edp group of one GPU.
  CHECK(r.dense_grad_bytes == 31'522'816);
  CHECK(r.expert_grad_bytes == 6'291'456);
  const std::vector<uint32_t> dense_group = plan.DpCpGroup(0), expert_group = plan.EdpGroup(0);
  REQUIRE(dense_group.size() == 16);
  REQUIRE(expert_group.size() == 1);
  auto collective = [&](const std::vector<uint32_t>& group, CollectiveOp op, uint64_t bytes) {
    return net->GroupCollective(group, op, CollectiveAlgo::kRing, bytes).time.picoseconds();
  };
  const int64_t sync = collective(dense_group, CollectiveOp::kReduceScatter, 31'522'816) +
                       collective(dense_group, CollectiveOp::kAllGather, 15'761'408) +
                       collective(expert_group, CollectiveOp::kReduceScatter, 6'291'456) +
                       collective(expert_group, CollectiveOp::kAllGather, 3'145'728);
  REQUIRE(sync > 0);
  CHECK(r.grad_sync.picoseconds() == sync);
  CHECK(r.grad_sync_exposed.picoseconds() == sync);
  // Adam on this GPU's shard: 7,880,704 / 16 + 1,572,864 = 2,065,408 parameters x (28 + 2) B =
  // 61,962,240 B = 20,796,842 ps.
  const int64_t optimizer = 20'796'842 + kLaunchNs;
  CHECK(r.optimizer.picoseconds() == optimizer);
  const int64_t step = 2 * (f + b) + sync + optimizer;
  CHECK(r.step.picoseconds() == step);
  CHECK(r.compute_only.picoseconds() == 2 * (f_compute + b_compute) + optimizer);

  // MFU: 3 x forward FLOPs a token (params.h): 2 x (LM head 1,048,576 + attention 4,194,304 +
  // router 16,384 + shared 1,572,864 + 8 routed 12,582,912 = 19,415,040) + attention 2 x 1024 x 8
  // x 256 = 4,194,304: 43,024,384; x 3 x 32,768 tokens over step x 16 GPUs x 989.5 TFLOP/s.
  const double seconds = static_cast<double>(step) / 1e12;
  const double mfu = 3.0 * 43'024'384 * 32'768 / (seconds * 16 * 989.5e12);
  CHECK(r.mfu == Approx(mfu).epsilon(1e-12));
  CHECK(r.mfu_bf16 == r.mfu);  // a BF16 model: the same peak
  CHECK(r.mfu_dtype == "BF16");
  CHECK(r.tokens_per_second == Approx(32'768 / seconds).epsilon(1e-12));

  SECTION("all-to-all overlap: a pair is max(compute, all-to-alls), here the all-to-alls") {
    StepConfig c = Training();
    c.overlap.alltoall = true;
    c.overlap.alltoall_hidden = 1.0;  // hiding as much as the compute allows
    const StepReport o = Run(cluster, plan, work, c);
    REQUIRE(f_compute + b_compute < 2 * a2a);  // the all-to-alls are the longer
    CHECK(o.alltoall_hidden == 1.0);
    CHECK(o.pair.picoseconds() == 2 * a2a);
    // The first micro-batch runs alone, the second overlaps.
    CHECK(o.pipeline.picoseconds() == (f + b) + 2 * a2a);
    CHECK(o.step.picoseconds() == (f + b) + 2 * a2a + sync + optimizer);
  }
  SECTION("all-to-all overlap as Megatron-Core's hides at most 36.55 % of the all-to-alls") {
    StepConfig c = Training();
    c.overlap.alltoall = true;
    const StepReport o = Run(cluster, plan, work, c);
    CHECK(o.alltoall_hidden == kMegatronEpOverlapHidden);
    // The pair: the compute and the all-to-alls, less at most 0.3655 of the all-to-alls'
    // 2 x a2a (rounded down to a picosecond), since that is more than max(compute, a2a) gives:
    // compute + 2 a2a - floor(0.3655 x 2 a2a).
    const int64_t hidden = static_cast<int64_t>(std::floor(0.3655 * static_cast<double>(2 * a2a)));
    const int64_t pair = f_compute + b_compute + 2 * a2a - hidden;
    REQUIRE(pair > 2 * a2a);
    CHECK(o.pair.picoseconds() == pair);
    CHECK(o.pipeline.picoseconds() == (f + b) + pair);
    CHECK(o.step.picoseconds() == (f + b) + pair + sync + optimizer);
  }
  SECTION("16-bit gradients (grad_reduce_in_fp32 false): half the bytes reduced and kept") {
    StepConfig c = Training();
    c.grad_bytes = 2;
    const StepReport g = Run(cluster, plan, work, c);
    // 7,880,704 dense and 1,572,864 expert parameters at 2 B: 15,761,408 and 3,145,728 B
    // reduce-scattered; the weights all-gathered as before.
    CHECK(g.grad_bytes == 2);
    CHECK(g.dense_grad_bytes == 15'761'408);
    CHECK(g.expert_grad_bytes == 3'145'728);
    const int64_t half = collective(dense_group, CollectiveOp::kReduceScatter, 15'761'408) +
                         collective(dense_group, CollectiveOp::kAllGather, 15'761'408) +
                         collective(expert_group, CollectiveOp::kReduceScatter, 3'145'728) +
                         collective(expert_group, CollectiveOp::kAllGather, 3'145'728);
    CHECK(g.grad_sync.picoseconds() == half);
    CHECK(g.grad_sync < r.grad_sync);
    // Memory keeps half the gradient bytes (models/memory.h: parameters x grad_bytes).
    const models::MemoryBreakdown fp32 =
        StepMemory(Model(), plan, Training(), r.micro_batches, work);
    const models::MemoryBreakdown bf16 = StepMemory(Model(), plan, c, r.micro_batches, work);
    REQUIRE(fp32.gradients.value > 0);
    CHECK(2 * bf16.gradients.value == fp32.gradients.value);
  }
  SECTION("shared-expert overlap: each pass hides its shared expert under dispatch") {
    StepConfig c = Training();
    c.overlap.shared_expert = true;
    const StepReport o = Run(cluster, plan, work, c);
    // Forward: shared-expert + its SwiGLU = 12,141,325 + 5,055,824 = 17,197,149 ps, shorter than
    // dispatch; backward 26,828,210 + 5,759,707 = 32,587,917 ps.
    REQUIRE(dispatch > 32'587'917);
    CHECK(o.forward.picoseconds() == f - 17'197'149);
    CHECK(o.backward.picoseconds() == b - 32'587'917);
    CHECK(o.pipeline.picoseconds() == 2 * (f + b - 17'197'149 - 32'587'917));
  }
  SECTION("no distributed optimizer: the gradients all-reduced as NCCL's tuner picks") {
    StepConfig c = Training();
    c.distributed_optimizer = false;
    const StepReport o = Run(cluster, plan, work, c);
    // The 31,522,816 B of dense gradients all-reduced over the 16 GPUs of two DGX H100 by the
    // fastest of NCCL's candidates across Hopper NVSwitch nodes: ring, tree, NVLSTree (`moesim
    // collective`'s choice); the expert's edp group is one GPU. Here NVLSTree, below the ring.
    auto all_reduce = [&](CollectiveAlgo algo) {
      return net->GroupCollective(dense_group, CollectiveOp::kAllReduce, algo, 31'522'816)
          .time.picoseconds();
    };
    const int64_t ring = all_reduce(CollectiveAlgo::kRing),
                  tree = all_reduce(CollectiveAlgo::kTree),
                  nvlstree = all_reduce(CollectiveAlgo::kNvlsTree);
    INFO("ring " << ring << " ps, tree " << tree << " ps, nvlstree " << nvlstree << " ps");
    REQUIRE(nvlstree < ring);
    REQUIRE(nvlstree < tree);
    CHECK(o.grad_sync.picoseconds() == nvlstree);
  }
  SECTION("gradient overlap: only what outlasts the last backward is exposed") {
    StepConfig c = Training();
    c.overlap.gradients = true;
    const StepReport o = Run(cluster, plan, work, c);
    const int64_t exposed = std::max<int64_t>(0, sync - b);
    CHECK(o.grad_sync_exposed.picoseconds() == exposed);
    CHECK(o.step.picoseconds() == 2 * (f + b) + exposed + optimizer);
  }
}

TEST_CASE("Step values: a direct all-to-all into 2 experts a GPU regroups its rows by expert") {
  // EP 8 (edp 2): 2 of the 16 experts on each GPU. Each GPU routes 1024 tokens x 8 = 8192 copies,
  // 512 to each expert: 1024 to each GPU, whose 8 senders bring it 8192 rows, 4096 an expert,
  // source rank by source rank. Megatron-Core's all-to-all dispatcher sorts them expert by expert
  // before the grouped GEMMs and back before combine:
  //   sort-by-expert: the rows and their FP32 weights read and written, 2 x 8192 x (1024 x 2 + 4)
  //                   = 33,619,968 B = 11,284,117 ps;
  //   unsort-by-expert: the rows only, 2 x 8192 x 1024 x 2 = 33,554,432 B = 11,262,121 ps;
  // each backward the inverse copy, the same bytes.
  const topology::Cluster cluster = testing::DgxH100(2);
  const models::Plan plan = Plan(Model(), "ep: 8");
  models::LayerWork w;
  w.dispatch_tokens = models::TrafficMatrix(8);
  for (uint32_t i = 0; i < 8; ++i) {
    for (uint32_t j = 0; j < 8; ++j) w.dispatch_tokens.at(i, j) = 1024;
  }
  w.expert_tokens.assign(8, {4096, 4096});
  w.tokens_in.assign(8, 1024);
  w.dropped.assign(8, 0);
  auto t = Times(Run(cluster, plan, w, Training()));
  CHECK(t[{"forward", "sort-by-expert"}] == 11'284'117 + kLaunchNs);
  CHECK(t[{"forward", "unsort-by-expert"}] == 11'262'121 + kLaunchNs);
  CHECK(t[{"backward", "sort-by-expert"}] == 11'284'117 + kLaunchNs);
  CHECK(t[{"backward", "unsort-by-expert"}] == 11'262'121 + kLaunchNs);
  // The same 8192 rows through the 2 experts' GEMMs: the loop at 688 TFLOP/s, fc1 [4096, 1024] x
  // [1024, 1024] and fc2 [4096, 512] x [512, 1024] twice, as the 8192-row expert above in halves.
  CHECK(t[{"forward", "expert"}] == 2 * (12'485'371 + 6'242'686) + 4 * kLaunchNs);

  // Where each token arrives once per GPU (per_rank, DeepEP's normal kernels) the receiver writes
  // the rows expert by expert: no sort. Nor with one expert a GPU (EP 16, the step above).
  for (auto algo : {models::AllToAllAlgo::kPerRank, models::AllToAllAlgo::kDeepEpNormal}) {
    StepConfig c = Training();
    c.alltoall_algo = algo;
    auto u = Times(Run(cluster, plan, w, c));
    CHECK(u.count({"forward", "sort-by-expert"}) == 0);
    CHECK(u.count({"backward", "unsort-by-expert"}) == 0);
  }
  auto one = Times(Run(cluster, Plan(Model(), "ep: 16"), Balanced(1024, 512), Training()));
  CHECK(one.count({"forward", "sort-by-expert"}) == 0);
}

TEST_CASE("Step values: attention with heads of 64 runs at FlashAttention-3's head-dim-64 rate") {
  // The model above with 16 heads of 64 instead of 8 of 128: q, k, v and o stay 1024 wide, so the
  // FLOPs are the same, 524,800 pairs x 2 x (1024 + 1024) = 2,149,580,800 forward, but the kernel
  // runs at 392 TFLOP/s at 1024 tokens (Figure 5a; 565 with heads of 128): 5,483,624.5 -> 5,483,625
  // ps. Backward: 2.5 x that at 363 (Figure 6a; 424 with 128): 14,804,275.5 -> 14,804,276 ps.
  pb::ModelSpec model = Model();
  model.mutable_attention()->set_num_heads(16);
  const topology::Cluster cluster = testing::DgxH100(2);
  const models::Plan plan = Plan(model, "ep: 16");
  auto r = SimulateStep(cluster, model, plan, Balanced(1024, 512), Training());
  REQUIRE(r.ok());
  auto t = Times(*r);
  CHECK(t[{"forward", "attn-core"}] == 5'483'625 + kLaunchNs);
  CHECK(t[{"backward", "attn-core"}] == 14'804'276 + kLaunchNs);
  // The projections do not change: [1024, 1024] x [1024, 3072] as with heads of 128.
  CHECK(t[{"forward", "attn-qkv"}] == 8'200'676 + kLaunchNs);
}

TEST_CASE("Step values: attention is split over TP, its norms over the sequence-parallel group") {
  // The model above with tp 2 (dp 8, EP 16 over the same GPUs as parallel folding allows):
  // 4 heads per GPU, so q, k, v, o are 512 wide, while the attention still sees all t = 1024
  // tokens; the norms run on n = 512 (sequence parallelism).
  const topology::Cluster cluster = testing::DgxH100(2);
  const models::Plan plan = Plan(Model(), "tp: 2 ep: 16");
  const StepReport r = Run(cluster, plan, Balanced(512, 256), Training());
  auto t = Times(r);
  // attn-norm: 4 x 512 x 1024 x 2 = 4,194,304 B = 1,407,766 ps.
  CHECK(t[{"forward", "attn-norm"}] == 1'407'766 + kLaunchNs);
  // attn-qkv: [1024, 1024] x [1024, 1536]: 3,221,225,472 FLOPs = 4,100,338 ps.
  CHECK(t[{"forward", "attn-qkv"}] == 4'100'338 + kLaunchNs);
  // attn-core: 524,800 pairs x 2 x (512 + 512) = 1,074,790,400 FLOPs at 565 = 1,902,284 ps.
  CHECK(t[{"forward", "attn-core"}] == 1'902'284 + kLaunchNs);
  // attn-out: [1024, 512] x [512, 1024]: 1,073,741,824 FLOPs = 1,366,780 ps, but 4,194,304 B =
  // 1,407,766 ps.
  CHECK(t[{"forward", "attn-out"}] == 1'407'766 + kLaunchNs);
  // Their gradients: attn-core 2.5 x 1,074,790,400 at 424 TFLOP/s = 6,337,208 ps.
  CHECK(t[{"backward", "attn-core"}] == 6'337'208 + kLaunchNs);
}

}  // namespace moesim::sim
