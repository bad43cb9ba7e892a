#include "models/memory.h"

#include <catch2/catch.hpp>

#include "models/model_spec.h"
#include "models/params.h"

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
pb::ModelSpec Tiny() {
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

}  // namespace

TEST_CASE("Memory of a small model by hand: tp 2 pp 2 ep 4 on 8 GPUs") {
  // dp = 8 / (2*2) = 2, edp = tp*dp / ep = 4 / 4 = 1, 2 layers per stage.
  const pb::ModelSpec model = Tiny();
  const Plan plan = MakePlan(model, 8, 2, 2, 4);
  MemoryOptions o;
  o.seq_len = 1024;
  o.micro_batch_size = 2;
  o.num_microbatches = 4;
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
  auto model = LoadCatalogModel("mixtral-8x7b", Location{}, CatalogDir());
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

}  // namespace moesim::models
