#include "models/memory.h"

#include <catch2/catch.hpp>

#include "models/model_spec.h"
#include "models/params.h"
#include "test_paths.h"

namespace moesim::models {
namespace {

Plan MakePlan(const pb::ModelSpec& model, uint32_t world, uint32_t tp, uint32_t pp, uint32_t ep) {
  pb::ParallelPlan spec;
  spec.set_tp(tp);
  spec.set_pp(pp);
  spec.set_ep(ep);
  return ResolvePlan(spec, world, model, nullptr).value();
}

// hidden 1024, 8 experts of FFN 2048 (SwiGLU), top-2, 4 layers, 8 MHA heads, vocab 1000, BF16.
pb::ModelSpec TinyForMemory() {
  pb::ModelSpec m;
  m.set_name("tiny");
  m.set_hidden_size(1024);
  m.set_expert_ffn_size(2048);
  m.set_num_experts(8);
  m.set_top_k(2);
  m.set_num_layers(4);
  m.set_dtype(pb::BF16);
  m.mutable_attention()->set_kind(pb::AttentionSpec::MHA);
  m.mutable_attention()->set_num_heads(8);
  m.set_vocab_size(1000);
  return m;
}

// The first test's options: s 1024, b 2, 4 micro-batches.
MemoryOptions SmallOptions() {
  MemoryOptions o;
  o.seq_len = 1024;
  o.micro_batch_size = 2;
  o.num_microbatches = 4;
  return o;
}

}  // namespace

TEST_CASE("Memory of a small model by hand: tp 2 pp 2 ep 4 on 8 GPUs") {
  // dp = 8 / (2*2) = 2, edp = tp*dp / ep = 4 / 4 = 1, 2 layers per stage.
  const pb::ModelSpec model = TinyForMemory();
  const Plan plan = MakePlan(model, 8, 2, 2, 4);
  MemoryOptions o = SmallOptions();
  const MemoryBreakdown m0 = StageMemory(model, plan, o, 0);

  // Parameters. Attention 4h^2 = 4,194,304, router h*E = 8,192 per layer; embedding 1000 x 1024
  // = 1,024,000 on stage 0. Dense: (2 * 4,202,496 + 1,024,000) / tp 2 = 4,714,496.
  // Experts: 8 / ep 4 = 2 per GPU, 3*h*f = 6,291,456 each, 2 layers: 25,165,824.
  CHECK(m0.dense_params == 4'714'496);
  CHECK(m0.expert_params == 25'165'824);
  // 29,880,320 parameters: weights x 2 B, gradients x 4 B; Adam x 12 B sharded: dense over
  // dp*cp = 2 (28,286,976), experts over edp = 1 (301,989,888).
  CHECK(m0.weights == Bytes{59'760'640});
  CHECK(m0.gradients == Bytes{119'521'280});
  CHECK(m0.optimizer == Bytes{330'276'864});

  // Activations per layer, e = 2 B, n = s*b = 2048 tokens, t = sp = 2, a = 8 heads:
  //   attention: 5*n*h/2 = 5,242,880 + 2*n*4h/2 = 8,388,608 + 5*a*n*s/2 = 41,943,040
  //   MoE:       5*n*h/2 = 5,242,880 + router 4*E*(n/2) = 32,768
  //              + copies (n/2)*top_k = 2048 x (2*2*h + 2*3*f) = 2048 x 16,384 = 33,554,432
  //   = 94,404,608; two layers 188,809,216; stage 0 adds ids and embedding dropout mask
  //   (8n + n*h)/2 = 1,056,768: 189,865,984 per micro-batch, 2 (= pp - 0) in flight.
  CHECK(m0.activations_per_microbatch == Bytes{189'865'984});
  CHECK(m0.microbatches_in_flight == 2);
  CHECK(m0.activations == Bytes{379'731'968});
  // All-to-all: dispatch and combine, each (n/2)*top_k = 2048 tokens of 2h bytes: 2 x 4,194,304.
  CHECK(m0.all_to_all == Bytes{8'388'608});
  CHECK(m0.total() == Bytes{897'679'360});

  // Last stage: LM head instead of the embedding (same size), 1 micro-batch in flight, plus the
  // output layer 4*n*(h + vocab)/t = 4 * 2048 * 2024 / 2 = 8,290,304.
  const MemoryBreakdown m1 = StageMemory(model, plan, o, 1);
  CHECK(m1.weights == m0.weights);
  CHECK(m1.microbatches_in_flight == 1);
  CHECK(m1.activations == Bytes{188'809'216 + 8'290'304});
  CHECK(PeakMemory(model, plan, o).stage == 0);

  // Selective recomputation drops the 5*a*s^2 term: 2 x 41,943,040 fewer per micro-batch.
  o.recompute = MemoryOptions::Recompute::kSelective;
  CHECK(StageMemory(model, plan, o, 0).activations_per_microbatch ==
        Bytes{189'865'984 - 2 * 41'943'040});
  // Full recomputation keeps each layer's input, 2*n*h/2 = 2,097,152 (plus the stage 0 extras),
  // and one layer's activations while recomputing it: 2 x 5,251,072 + 94,404,608.
  o.recompute = MemoryOptions::Recompute::kFull;
  CHECK(StageMemory(model, plan, o, 0).activations == Bytes{2 * 5'251'072 + 94'404'608});

  // 897,679,360 B against 0.8 GB: 97,679,360 B short.
  const Status fits = m0.Fits(Bytes{800'000'000});
  REQUIRE_FALSE(fits.ok());
  CHECK_THAT(fits.error().message(),
             Catch::StartsWith("memory: pipeline stage 0 needs 0.90 GB per GPU (weights 0.06 GB"));
  CHECK_THAT(fits.error().message(), Catch::EndsWith("0.10 GB more than the 0.80 GB a GPU has"));
  CHECK(m0.Fits(Bytes{897'679'360}).ok());
}

TEST_CASE("Memory of Mixtral-8x7B with tp 1 ep 8 pp 4 on 64 H100") {
  auto model = LoadCatalogModel("mixtral-8x7b", Location{}, *CatalogDir());
  REQUIRE(model.ok());
  // Every weight once: tp = pp = ep = 1 counts the whole model, as CountParams does.
  const MemoryBreakdown whole = StageMemory(*model, MakePlan(*model, 1, 1, 1, 1), {}, 0);
  CHECK(whole.dense_params + whole.expert_params == CountParams(*model).total_params());

  // 64 GPUs: dp = 64 / 4 = 16, edp = 16 / 8 = 2, 8 layers per stage.
  const Plan plan = MakePlan(*model, 64, 1, 4, 8);
  MemoryOptions o;
  o.seq_len = 4096;
  o.micro_batch_size = 1;
  o.num_microbatches = 32;
  o.recompute = MemoryOptions::Recompute::kSelective;
  const MemoryBreakdown m = StageMemory(*model, plan, o, 0);
  // Per layer: attention Q, O 4096^2 each + K, V 2*4096*8*128 = 41,943,040, router 4096*8;
  // stage 0: 8 x 41,975,808 + embedding 32000*4096 = 466,878,464 dense; experts: 1 per GPU of
  // 3*4096*14336 = 176,160,768, x 8 layers = 1,409,286,144.
  CHECK(m.dense_params == 466'878'464);
  CHECK(m.expert_params == 1'409'286'144);
  CHECK(m.weights == Bytes{3'752'329'216});    // 1,876,164,608 x 2 B
  CHECK(m.gradients == Bytes{7'504'658'432});  // x 4 B
  // 466,878,464 x 12 / 16 + 1,409,286,144 x 12 / 2 = 350,158,848 + 8,455,716,864.
  CHECK(m.optimizer == Bytes{8'805'875'712});
  // Per layer (n = 4096, t = 1, GQA: q + k + v + o = (32 + 8 + 8 + 32) x 128 = 10,240):
  //   attention 5*n*h = 83,886,080 + 2*n*10,240 = 83,886,080 (no score term: selective);
  //   MoE 5*n*h = 83,886,080 + router 4*8*n = 131,072
  //       + copies 2n = 8192 x (4h + 6f) = 8192 x 102,400 = 838,860,800;  = 1,090,650,112.
  //   8 layers + ids and dropout mask (8n + n*h = 16,809,984) = 8,742,010,880 per micro-batch;
  //   4 in flight: 34,968,043,520.
  CHECK(m.activations_per_microbatch == Bytes{8'742'010'880});
  CHECK(m.activations == Bytes{34'968'043'520});
  CHECK(m.all_to_all == Bytes{134'217'728});  // 2 x 8192 tokens x 8192 B
  // 55.17 GB: fits an 80 GB H100.
  CHECK(m.total() == Bytes{55'165'124'608});
  CHECK(m.Fits(Bytes{80'000'000'000}).ok());
  // Without recomputation the 5*a*s^2 term (5*32*4096^2 = 2,684,354,560 per layer) adds 8 x 4 of
  // them: 141,064,470,528 B, 61.06 GB more than 80 GB.
  o.recompute = MemoryOptions::Recompute::kNone;
  const MemoryBreakdown none = StageMemory(*model, plan, o, 0);
  CHECK(none.total() == Bytes{55'165'124'608 + 32 * 2'684'354'560ULL});
  CHECK_THAT(none.Fits(Bytes{80'000'000'000}).error().message(),
             Catch::EndsWith("61.06 GB more than the 80.00 GB a GPU has"));
  // Megatron-LM's estimator (megatron/training/theoretical_memory_usage.py) gives 79.25e9 B of
  // weights and optimizer for this plan (11.74e9 parameters x (6 + 12/16) B): it divides every
  // weight by tp*pp only, ignoring EP, which here holds 1 of 8 experts per GPU (20.06e9 B above).
  // Its activations (selective, SP) are 17.25e9 B: it treats the FFN as one dense 14,336-wide
  // MLP, without top-2 copies or the SwiGLU gate, which this model counts (34.97e9 B).
}

TEST_CASE("Memory: recomputation by module and FP8 activation caching, by hand") {
  // The small model above, tp 2 pp 2 ep 4, s 1024, b 2: n = 2048, t = sp = 2, e = 2. Its MoE
  // layer without recomputation (first test): attention 5,242,880 (LN input 2,097,152, QKV input
  // 2,097,152, mask 1,048,576) + q, k, v 2 x 2048 x 3h / 2 = 6,291,456 + o 2 x 2048 x h / 2 =
  // 2,097,152 + scores 41,943,040; MoE 5,242,880 + router 32,768 + 2048 copies x (input 2h
  // 2,048 + gate and up 2 x 2 x 2048 = 8,192 + their product 2 x 2048 = 4,096 + output 2h
  // 2,048 = 16,384): 94,404,608.
  const pb::ModelSpec model = TinyForMemory();
  const Plan plan = MakePlan(model, 8, 2, 2, 4);
  MemoryOptions o = SmallOptions();
  o.recompute = MemoryOptions::Recompute::kModules;
  SECTION("norm, attention_core and moe_act with FP8 caching (DeepSeek-V3's choices on MHA)") {
    o.modules = *ParseRecomputeModules({"norm", "attention_core", "moe_act"}, {}, "f");
    o.fp8_activations = true;
    // attention: LN input 2,097,152 + mask 1,048,576 (the QKV input recomputed) + q, k, v
    //   6,291,456 (not GEMM inputs: BF16) + o at 1 byte 2048 x 1024 / 2 = 1,048,576 = 10,485,760
    // MoE: LN input + mask 3,145,728 + router 32,768 + 2048 copies x (input at 1 byte 1,024 +
    //   gate and up at 1 byte 2 x 2048 = 4,096; no product, no output) = 10,485,760: 13,664,256
    // 24,150,016 per layer; 2 layers + stage 0's ids and mask 1,056,768 = 49,356,800; 2 in flight.
    const MemoryBreakdown m = StageMemory(model, plan, o, 0);
    CHECK(m.activations_per_microbatch == Bytes{49'356'800});
    CHECK(m.activations == Bytes{98'713'600});
    CHECK(ToString(o.modules) == "norm, attention_core, moe_act");
  }
  SECTION("moe: only the MoE block's input stays") {
    // attention 5,242,880 + 8,388,608 + 41,943,040, MoE 5,242,880: 60,817,408 per layer.
    o.modules = *ParseRecomputeModules({"moe"}, {}, "f");
    CHECK(StageMemory(model, plan, o, 0).activations_per_microbatch ==
          Bytes{2 * 60'817'408 + 1'056'768});
  }
  SECTION("the presets as modules: selective is attention_core, none is nothing") {
    o.modules = *ParseRecomputeModules({"attention_core"}, {}, "f");
    const Bytes attention_core = StageMemory(model, plan, o, 0).activations;
    o.recompute = MemoryOptions::Recompute::kSelective;
    CHECK(StageMemory(model, plan, o, 0).activations == attention_core);
    o.recompute = MemoryOptions::Recompute::kModules;
    o.modules = {};
    const Bytes nothing = StageMemory(model, plan, o, 0).activations;
    o.recompute = MemoryOptions::Recompute::kNone;
    CHECK(StageMemory(model, plan, o, 0).activations == nothing);
    CHECK(nothing == Bytes{379'731'968});  // the first test's figure
  }
  SECTION("mlp on a dense layer") {
    // Layer 0 dense with FFN 4096: its MLP keeps 2048 x 4096 x (2 x 2 + 2) / 2 = 25,165,824.
    pb::ModelSpec dense = model;
    dense.set_first_k_dense_layers(1);
    dense.set_dense_ffn_size(4096);
    const Plan p = MakePlan(dense, 8, 2, 2, 4);
    o.modules = {};
    const Bytes kept = StageMemory(dense, p, o, 0).activations_per_microbatch;
    o.modules.mlp = true;
    CHECK(StageMemory(dense, p, o, 0).activations_per_microbatch.value == kept.value - 25'165'824);
  }
  auto bad = ParseRecomputeModules({"norm", "attn"}, {"s.pbtxt", 4, 3}, "step.recompute_modules");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message() ==
        "s.pbtxt:4:3: step.recompute_modules = \"attn\": unknown module; valid: norm, "
        "mla_up_proj, attention_core, mlp, moe, moe_act");
}

TEST_CASE("Memory: MLA latents, and what norm and mla_up_proj drop of them") {
  // One dense layer of MLA: h 1024, 8 heads, q latent 256, KV latent 128, per head nope 64,
  // rope 32, value 64; FFN 2048; tp 1, s 1024, b 1: n = 1024.
  pb::ModelSpec m;
  m.set_name("mla");
  m.set_hidden_size(1024);
  m.set_num_layers(1);
  m.set_first_k_dense_layers(1);
  m.set_dense_ffn_size(2048);
  m.set_num_experts(1);
  m.set_expert_ffn_size(2048);
  m.set_top_k(1);
  m.set_dtype(pb::BF16);
  m.set_vocab_size(1000);
  pb::AttentionSpec* a = m.mutable_attention();
  a->set_kind(pb::AttentionSpec::MLA);
  a->set_num_heads(8);
  a->set_q_lora_rank(256);
  a->set_kv_lora_rank(128);
  a->set_qk_nope_head_dim(64);
  a->set_qk_rope_head_dim(32);
  a->set_v_head_dim(64);
  const Plan plan = MakePlan(m, 1, 1, 1, 1);
  MemoryOptions o;
  o.seq_len = 1024;
  o.micro_batch_size = 1;
  o.recompute = MemoryOptions::Recompute::kNone;
  // Attention: LN input, QKV input, mask 5 n h = 5,242,880; latents before their norms
  //   2 n (256 + 128 + 32) = 851,968 and after 2 n (256 + 128) = 786,432; q, k, v per head
  //   8 x (96 + 96 + 64) = 2048 wide: 4,194,304; o 8 x 64 = 512 wide: 1,048,576; scores
  //   5 x 8 x n x s = 41,943,040: 54,067,200.
  // FFN: 5 n h = 5,242,880 + n f (2 x 2 + 2) = 12,582,912: 17,825,792.
  // The first stage's ids and mask 8n + n h = 1,056,768: 72,949,760 per micro-batch.
  CHECK(StageMemory(m, plan, o, 0).activations_per_microbatch == Bytes{72'949'760});
  // norm, mla_up_proj and attention_core with FP8 caching: attention 3 n h = 3,145,728 +
  // latents 851,968 + o at 1 byte 524,288 = 4,521,984; FFN 3 n h + n f (2 x 2 + 1) = 3,145,728 +
  // 10,485,760 = 13,631,488; + 1,056,768 = 19,210,240.
  o.recompute = MemoryOptions::Recompute::kModules;
  o.modules = *ParseRecomputeModules({"norm", "mla_up_proj", "attention_core"}, {}, "f");
  o.fp8_activations = true;
  CHECK(StageMemory(m, plan, o, 0).activations_per_microbatch == Bytes{19'210'240});
}

TEST_CASE("Memory: micro-batches in flight under interleaved 1F1B and DualPipe") {
  // The small model, tp 2 pp 2 ep 4, 4 micro-batches, no recomputation: one micro-batch's
  // activations are 189,865,984 on stage 0 and 188,809,216 on stage 1 (first test), which adds
  // the output layer 8,290,304 once.
  const pb::ModelSpec model = TinyForMemory();
  const Plan plan = MakePlan(model, 8, 2, 2, 4);
  MemoryOptions o = SmallOptions();
  SECTION("interleaved, V 2: Megatron-Core's warm-up chunks plus one, of 1/V each") {
    o.schedule = PipelineSchedule::kInterleaved;
    o.virtual_stages = 2;
    // Device 0: 2(2 - 0 - 1) + (2 - 1) 2 + 1 = 5 chunks = 2.5 micro-batches, Megatron's
    // p (1 + (p - 1)/(p V)) = 2 x 1.25: 5 x 189,865,984 / 2 = 474,664,960.
    const MemoryBreakdown m0 = StageMemory(model, plan, o, 0);
    CHECK(m0.activations == Bytes{474'664'960});
    CHECK(m0.microbatches_in_flight == 3);
    CHECK(m0.in_flight_rule ==
          "interleaved 1F1B: 2(pp - stage - 1) + (V - 1) pp + 1 = 5 chunks of 1/2");
    // Device 1: 0 + 2 + 1 = 3 chunks: 3 x 188,809,216 / 2 + 8,290,304 = 291,504,128.
    CHECK(StageMemory(model, plan, o, 1).activations == Bytes{291'504'128});
  }
  SECTION("DualPipe: both stages' parameters, pp + 1 micro-batches of their mean") {
    o.schedule = PipelineSchedule::kDualPipe;
    const MemoryBreakdown m = StageMemory(model, plan, o, 0);
    // Dense: 2 x (2 layers x 4,202,496 + a 1,024,000 table) / tp 2 = 9,428,992; experts 2 x
    // 25,165,824 = 50,331,648: the 2x of DualPipe's table.
    CHECK(m.dense_params == 9'428'992);
    CHECK(m.expert_params == 50'331'648);
    // (2 + 1) x (189,865,984 + 188,809,216) / 2 + the output layer 8,290,304 = 576,303,104.
    CHECK(m.activations == Bytes{576'303'104});
    CHECK(m.microbatches_in_flight == 3);
    CHECK(m.in_flight_rule == "DualPipe: pp + 1 = 3 of stages 0 and 1");
    CHECK(StageMemory(model, plan, o, 1).total() == m.total());  // the same device pair
  }
}

TEST_CASE("Memory: a multi-token-prediction module on the last stage") {
  // The small model, tp 2 pp 2 ep 4, depth 1: stage 1 adds a block like layer 3 (attention
  // 4,194,304 + router 8,192) and a 2h x h projection 2,097,152: dense (2 x 4,202,496 +
  // 1,024,000 + 6,299,648) / 2 = 7,864,320; its 2 experts of 3 h f = 6,291,456: 3 x 12,582,912.
  const pb::ModelSpec model = TinyForMemory();
  const Plan plan = MakePlan(model, 8, 2, 2, 4);
  MemoryOptions o = SmallOptions();
  o.mtp_depth = 1;
  const MemoryBreakdown m = StageMemory(model, plan, o, 1);
  CHECK(m.dense_params == 7'864'320);
  CHECK(m.expert_params == 37'748'736);
  // Activations: 188,809,216 + the block's 94,404,608 + its projection input 2 n 2h / 2 =
  // 4,194,304, one micro-batch in flight, and the output layer twice: 2 x 8,290,304.
  CHECK(m.activations == Bytes{188'809'216 + 94'404'608 + 4'194'304 + 2 * 8'290'304});
  // Stage 0 does not hold it.
  const Bytes first_with = StageMemory(model, plan, o, 0).total();
  o.mtp_depth = 0;
  CHECK(StageMemory(model, plan, o, 0).total() == first_with);
}

TEST_CASE("Inference memory: weights and a KV cache, no gradients or optimizer states") {
  const pb::ModelSpec model = TinyForMemory();
  MemoryOptions o;
  o.inference = true;
  o.seq_len = 1;  // decode: one new token per sequence
  o.micro_batch_size = 4;
  o.kv_context = 1024;
  // MHA, 8 heads of 1024 / 8 = 128: K and V are 2 x 8 x 128 = 2048 elements per token and layer.
  CHECK(KvCacheWidth(model) == 2048);
  // tp 1: one sequence caches 4 layers x 1024 tokens x 2048 elements x 2 bytes = 16,777,216 B.
  const MemoryBreakdown one = StageMemory(model, MakePlan(model, 8, 1, 1, 8), o, 0);
  CHECK(one.gradients.value == 0);
  CHECK(one.optimizer.value == 0);
  CHECK(one.kv_cache_per_sequence.value == 16'777'216);
  CHECK(one.kv_cache.value == 4 * 16'777'216);
  CHECK(one.microbatches_in_flight == 1);
  // tp 2 splits the 8 KV heads 4 and 4: half the cache per GPU.
  const MemoryBreakdown split = StageMemory(model, MakePlan(model, 8, 2, 1, 4), o, 0);
  CHECK(split.kv_cache_per_sequence.value == 8'388'608);
  // The same step as training keeps gradients (fp32, 4 B per parameter) and no KV cache.
  o.inference = false;
  o.kv_context = 0;
  const MemoryBreakdown training = StageMemory(model, MakePlan(model, 8, 1, 1, 8), o, 0);
  CHECK(training.gradients.value == 2 * training.weights.value);  // 4 B against BF16's 2 B
  CHECK(training.kv_cache.value == 0);
  // Sequences that fit: room after the weights over one sequence's share of the micro-batch's
  // activations, all-to-all buffers and KV cache. The 4 sequences' parts add up to a multiple of 4
  // here, so room for exactly 10 sequences gives 10, one byte less 9, the weights alone 0.
  const uint64_t four = one.activations.value + one.all_to_all.value + one.kv_cache.value;
  REQUIRE(four % 4 == 0);
  const uint64_t ten = one.weights.value + 10 * (four / 4);
  CHECK(one.SequencesThatFit(Bytes{ten}) == 10);
  CHECK(one.SequencesThatFit(Bytes{ten - 1}) == 9);
  CHECK(one.SequencesThatFit(one.weights) == 0);
}

TEST_CASE("Inference memory: the 120B MoE example decoding on 8 GPUs, EP 8") {
  auto model = LoadModelArgument(testing::SourcePath("models/examples/moe-120b-8x14b-top2.pbtxt"));
  REQUIRE(model.ok());
  // tp 1, ep 8: every GPU holds the dense part (attention 7,851,737,088 + embedding and LM head
  // 524,288,000 + routers 3,407,872 = 8,379,432,960) and one of the 8 experts (52 x 3 x 8192 x
  // 10880 = 13,904,117,760), in BF16: 2 x 22,283,550,720 = 44,567,101,440 bytes.
  MemoryOptions o;
  o.inference = true;
  o.seq_len = 1;  // decode: one new token per sequence
  o.micro_batch_size = 64;
  o.kv_context = 4096;
  const MemoryBreakdown m = StageMemory(*model, MakePlan(*model, 8, 1, 1, 8), o, 0);
  CHECK(m.dense_params == 8'379'432'960ULL);
  CHECK(m.expert_params == 13'904'117'760ULL);
  CHECK(m.weights.value == 44'567'101'440ULL);
  CHECK(m.gradients.value == 0);
  CHECK(m.optimizer.value == 0);
  // GQA, 8 KV heads of 128: K and V 2 x 8 x 128 = 2048 elements per token and layer, all on the
  // one TP rank. A sequence of 4096 tokens: 52 x 4096 x 2048 x 2 B = 872,415,232 bytes; 64 of them.
  CHECK(m.kv_cache_per_sequence.value == 872'415'232ULL);
  CHECK(m.kv_cache.value == 64 * 872'415'232ULL);
  // On an 80 GB H100: (80e9 - 44,567,101,440) = 35,432,898,560 bytes left, over what one
  // sequence adds: its 872,415,232 of cache plus its share of the micro-batch's activations and
  // all-to-all buffers (one token each in decode, small): 40.6 with the cache alone, so 40 at most.
  const double per_sequence =
      static_cast<double>(m.activations.value + m.all_to_all.value + m.kv_cache.value) / 64;
  CHECK(per_sequence > 872'415'232.0);
  CHECK(per_sequence < 872'415'232.0 * 1.01);  // the cache is over 99% of it
  const uint64_t fit = m.SequencesThatFit(Bytes{80'000'000'000ULL});
  CHECK(fit == static_cast<uint64_t>(35'432'898'560.0 / per_sequence));
  CHECK(fit == 40);
}

TEST_CASE("Inference memory: MLA caches its latent, whole on every TP rank") {
  pb::ModelSpec model = TinyForMemory();
  pb::AttentionSpec* a = model.mutable_attention();
  a->set_kind(pb::AttentionSpec::MLA);
  a->set_kv_lora_rank(512);
  a->set_qk_rope_head_dim(64);
  a->set_qk_nope_head_dim(128);
  a->set_v_head_dim(128);
  // DeepSeek-V3's 512 + 64 = 576 elements per token and layer.
  CHECK(KvCacheWidth(model) == 576);
  MemoryOptions o;
  o.inference = true;
  o.seq_len = 1;
  o.micro_batch_size = 1;
  o.kv_context = 4096;
  // 4 layers x 4096 x 576 x 2 B = 18,874,368 B, the same with tp 2 (the latent is not split).
  CHECK(StageMemory(model, MakePlan(model, 8, 1, 1, 8), o, 0).kv_cache_per_sequence.value ==
        18'874'368);
  CHECK(StageMemory(model, MakePlan(model, 8, 2, 1, 4), o, 0).kv_cache_per_sequence.value ==
        18'874'368);
}

}  // namespace moesim::models
