#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "moesim_runner.h"
#include "proto/plan.pb.h"
#include "test_paths.h"

namespace moesim {
namespace {

using testing::Moesim;

// `moesim plan` of the tiny MoE on 16 GPUs of `cluster`, 512-token sequences, then `extra`.
std::vector<std::string> PlanArgs(const std::string& cluster, const std::string& global_batch,
                                  std::vector<std::string> extra) {
  std::vector<std::string> args = {"plan",
                                   "--model",
                                   testing::SourcePath("tests/fixtures/models/tiny-moe.pbtxt"),
                                   "--cluster",
                                   cluster,
                                   "--gpus",
                                   "16",
                                   "--global-batch",
                                   global_batch,
                                   "--seq-len",
                                   "512"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::vector<std::string> Args(std::vector<std::string> extra) {
  return PlanArgs("dgx-h100", "32", std::move(extra));
}

pb::PlanTable Json(const std::string& text) {
  pb::PlanTable t;
  REQUIRE(google::protobuf::util::JsonStringToMessage(text, &t).ok());
  return t;
}

}  // namespace

TEST_CASE("moesim plan enumerates every valid plan and ranks fitting ones by step time") {
  const auto run = Moesim(Args({"--json", "--threads", "1"}));
  REQUIRE(run.status == 0);
  const pb::PlanTable t = Json(run.out);
  // 16 GPUs: tp 1, 2, 4, 8 (8 heads); pp over the divisors of 16 / tp up to 4 layers; ep over the
  // divisors of 8 experts dividing tp x dp; micro-batches 1, 2, 4, 8 dividing 32 / dp; selective
  // and full recomputation. Every row is one of them, each once.
  CHECK(t.candidates() == static_cast<uint32_t>(t.rows_size()));
  CHECK(t.candidates() > 100);
  CHECK(t.failed() == 0);
  std::set<std::string> seen;
  for (int i = 0; i < t.rows_size(); ++i) {
    const pb::PlanRow& r = t.rows(i);
    INFO(r.plan());
    CHECK(seen.insert(r.plan()).second);
    CHECK(r.tp() * r.pp() * r.dp() == 16);
    CHECK((r.tp() * r.dp()) % r.ep() == 0);
    CHECK(8 % r.ep() == 0);
    CHECK(32 % (r.dp() * r.micro_batch()) == 0);
    CHECK(r.mfu() > 0);
    CHECK(r.mfu() < 1);
    if (i == 0) continue;
    const pb::PlanRow& before = t.rows(i - 1);
    // Fitting plans first, then by step time.
    CHECK((before.fits() >= r.fits()));
    if (before.fits() == r.fits()) CHECK(before.step_ps() <= r.step_ps());
  }
}

TEST_CASE("moesim plan gives the same table on one thread and on two") {
  const auto one = Moesim(Args({"--csv", "--threads", "1", "--top", "1000"}));
  const auto two = Moesim(Args({"--csv", "--threads", "2", "--top", "1000"}));
  REQUIRE(one.status == 0);
  CHECK(one.out == two.out);
  CHECK(one.out.rfind("rank,plan,tp,cp,pp,ep,dp,edp,micro_batch,recompute,step_ms", 0) == 0);
  CHECK_THAT(one.out,
             Catch::Contains(",fits,dropped_share,etp,schedule,virtual_stages,mfu_bf16\n"));
}

TEST_CASE("moesim plan --expert-tp also tries expert tensor parallelism") {
  // tiny-moe: 8 experts of FFN 256 on 16 GPUs. Without the flag every candidate has etp 1; with
  // it, etp 2, 4, 8 up to each candidate's tp, where ep x etp divides tp x dp: more candidates,
  // each a valid plan named with its etp.
  const auto plain = Moesim(Args({"--json", "--threads", "1"}));
  const auto etp = Moesim(Args({"--json", "--threads", "1", "--expert-tp"}));
  REQUIRE(plain.status == 0);
  REQUIRE(etp.status == 0);
  const pb::PlanTable a = Json(plain.out), b = Json(etp.out);
  for (const pb::PlanRow& r : a.rows()) CHECK(r.etp() == 1);
  CHECK(b.candidates() > a.candidates());
  int split = 0;
  for (const pb::PlanRow& r : b.rows()) {
    INFO(r.plan());
    CHECK(r.etp() <= r.tp());
    CHECK((r.tp() * r.dp()) % (r.ep() * r.etp()) == 0);
    CHECK((r.plan().find(" etp") != std::string::npos) == (r.etp() > 1));
    CHECK(r.edp() * r.ep() * r.etp() == r.tp() * r.dp());
    split += r.etp() > 1;
  }
  CHECK(split == static_cast<int>(b.candidates() - a.candidates()));
}

TEST_CASE("moesim plan --schedule all tries interleaved and DualPipe where they run") {
  // tiny-moe: 4 layers on 16 GPUs, global batch 32: m = 32 / (dp x mb). Each 1F1B row comes
  // back with " int2" where pp >= 2 divides m (2 chunks a stage, empty ones where a stage holds
  // fewer layers, as Megatron's layouts allow), and
  // with " dualpipe" where pp is even and m even and >= 2 pp; --schedule dualpipe alone gives
  // those rows only.
  const auto one = Moesim(Args({"--json", "--threads", "1"}));
  const auto all = Moesim(Args({"--json", "--threads", "1", "--schedule", "all"}));
  const auto dual = Moesim(Args({"--json", "--threads", "1", "--schedule", "dualpipe"}));
  REQUIRE(one.status == 0);
  REQUIRE(all.status == 0);
  REQUIRE(dual.status == 0);
  const pb::PlanTable a = Json(one.out), b = Json(all.out), d = Json(dual.out);
  uint32_t interleaved = 0, dualpipe = 0;
  for (const pb::PlanRow& r : a.rows()) {
    const uint32_t m = 32 / (r.dp() * r.micro_batch());
    interleaved += r.pp() >= 2 && m % r.pp() == 0;
    dualpipe += r.pp() % 2 == 0 && m % 2 == 0 && m >= 2 * r.pp();
  }
  REQUIRE(dualpipe > 0);
  CHECK(b.candidates() == a.candidates() + interleaved + dualpipe);
  CHECK(d.candidates() == dualpipe);
  CHECK(d.schedule() == "dualpipe");
  for (const pb::PlanRow& r : d.rows()) {
    INFO(r.plan());
    CHECK(r.schedule() == "dualpipe");
    CHECK(r.plan().ends_with(" dualpipe"));
  }
  const auto bad = Moesim(Args({"--schedule", "interleaved", "--virtual-stages", "1"}));
  CHECK(bad.status == 1);
  CHECK_THAT(bad.err, Catch::Contains("--virtual-stages = 1: interleaving needs at least two"));
}

TEST_CASE("moesim plan --show-refused lists the refused plans with their rule") {
  // 4 heads on 8 GPUs: every tp8 plan is refused. tp8 leaves pp 1 and dp 1; ep 1, 2, 4 or 8
  // (dividing tp x dp = 8 and the 8 experts); micro-batch 1, 2, 4 or 8 (dividing 32); selective
  // or full recomputation: 4 x 4 x 2 = 32 plans.
  const std::vector<std::string> base = {
      "plan",
      "--model",
      testing::SourcePath("tests/fixtures/models/tiny-moe-4heads.pbtxt"),
      "--cluster",
      "dgx-h100",
      "--gpus",
      "8",
      "--global-batch",
      "32",
      "--seq-len",
      "512",
      "--threads",
      "1"};
  std::vector<std::string> args = base;
  args.push_back("--show-refused");
  const auto run = Moesim(args);
  REQUIRE(run.status == 0);
  CHECK_THAT(run.out, Catch::Contains(", 32 refused by the plan rules"));
  CHECK_THAT(run.out, Catch::Contains("\nrefused by the plan rules: 32\n"));
  CHECK_THAT(run.out,
             Catch::Contains("\n  tp8 pp1 ep1 dp1 mb1          plan.tp = 8: does not divide "
                             "the model's 4 attention heads"));
  CHECK_THAT(run.out, Catch::Contains("\n  tp8 pp1 ep8 dp1 mb8 full-rc  plan.tp = 8"));
  // Without the flag the count only; --json always carries the list.
  const auto quiet = Moesim(base);
  REQUIRE(quiet.status == 0);
  CHECK_THAT(quiet.out, !Catch::Contains("refused by the plan rules:"));
  args = base;
  args.push_back("--json");
  const pb::PlanTable t = Json(Moesim(args).out);
  CHECK(t.rejected() == 32);
  REQUIRE(t.refused_size() == 32);
  CHECK(t.refused(1).plan() == "tp8 pp1 ep1 dp1 mb1 full-rc");
  // A list in the middle of a CSV would break its readers.
  args = base;
  args.insert(args.end(), {"--csv", "--show-refused"});
  const auto csv = Moesim(args);
  CHECK(csv.status == 2);
  CHECK_THAT(csv.err, Catch::Contains("--show-refused") && Catch::Contains("--csv"));
}

TEST_CASE("moesim plan prints the top rows as a table") {
  const auto run = Moesim(Args({"--top", "3", "--routing", "zipf:1.2"}));
  REQUIRE(run.status == 0);
  CHECK_THAT(run.out, Catch::Contains("plans simulated"));
  CHECK_THAT(run.out, Catch::Contains("step ms"));
  CHECK_THAT(run.out, Catch::Contains("   1  tp"));
  CHECK_THAT(run.out, Catch::Contains("   3  tp"));
  CHECK_THAT(run.out, !Catch::Contains("   4  tp"));
}

TEST_CASE("moesim plan refuses bad input with what is valid") {
  auto run = Moesim(Args({"--routing", "lognormal"}));
  CHECK(run.status == 1);
  CHECK_THAT(run.err, Catch::Contains("--routing") && Catch::Contains("zipf:ALPHA"));
  run = Moesim({"plan", "--model", "mixtral-8x7b", "--gpus", "8", "--global-batch", "0"});
  CHECK(run.status == 1);
  CHECK_THAT(run.err, Catch::Contains("--global-batch") && Catch::Contains(">= 1"));
  run = Moesim({"plan", "--model", "no-such-model", "--global-batch", "8"});
  CHECK(run.status == 1);
  CHECK_THAT(run.err, Catch::Contains("mixtral-8x7b"));  // the catalog's names
  // What overlap hides: a share, and only where something overlaps.
  run = Moesim(Args({"--alltoall-hidden", "0.5"}));
  CHECK(run.status == 1);
  CHECK_THAT(run.err, Catch::Contains("--alltoall-hidden = 0.5: nothing overlaps the all-to-alls; "
                                      "valid: with --overlap-alltoall or --schedule dualpipe"));
  run = Moesim(Args({"--overlap-alltoall", "--alltoall-hidden", "1.5"}));
  CHECK(run.status == 1);
  CHECK_THAT(run.err, Catch::Contains("--alltoall-hidden = 1.5: out of range"));
}

TEST_CASE("moesim simulate runs a whole training step from a scenario") {
  const auto run =
      Moesim({"simulate", testing::SourcePath("scenarios/mixtral-8x7b-h100-64.pbtxt"), "--json"});
  REQUIRE(run.status == 0);
  pb::StepResult r;
  REQUIRE(google::protobuf::util::JsonStringToMessage(run.out, &r).ok());
  // 32 layers over pp 4: 8 per stage, all MoE, 4 all-to-alls each per micro-batch.
  CHECK(r.alltoalls_per_micro_batch() == 32);
  // 256 sequences over dp 16 with micro-batch 1.
  CHECK(r.micro_batches() == 16);
  CHECK(r.plan() == "tp1 pp4 ep8 dp16 (edp 2)");
  CHECK(r.memory().fits());
  // step = pipeline + exposed gradient reduction + optimizer (ns rounding of each part: +-3 ns).
  CHECK(std::abs(r.step_ns() - (r.pipeline_ns() + r.grad_sync_exposed_ns() + r.optimizer_ns())) <=
        3);

  // The same with etp 2: the plan says so, edp = 16 / (8 x 2) = 1, the expert gradients per GPU
  // halve (each GPU holds half of each of its experts), the dense ones do not.
  const auto etp = Moesim(
      {"simulate", testing::SourcePath("scenarios/mixtral-8x7b-h100-64-etp2.pbtxt"), "--json"});
  REQUIRE(etp.status == 0);
  pb::StepResult e;
  REQUIRE(google::protobuf::util::JsonStringToMessage(etp.out, &e).ok());
  CHECK(e.plan() == "tp1 pp4 ep8 etp2 dp16 (edp 1)");
  CHECK(2 * e.expert_grad_bytes() == r.expert_grad_bytes());
  CHECK(e.dense_grad_bytes() == r.dense_grad_bytes());
}

TEST_CASE(
    "moesim simulate says where a step keeps the attention scores FlashAttention never keeps") {
  // The Mixtral scenario (selective: the scores recomputed, as FlashAttention does) and the same
  // with recompute NONE and with modules that leave attention_core out: the memory then counts
  // 5 a s^2 / tp bytes a layer of scores (models/memory.h), and the report's recompute line says
  // so.
  std::ifstream in(testing::SourcePath("scenarios/mixtral-8x7b-h100-64.pbtxt"));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(text.find("recompute: SELECTIVE") != std::string::npos);
  const std::string note = "the attention scores are kept as unfused attention keeps them";
  const auto selective =
      Moesim({"simulate", testing::SourcePath("scenarios/mixtral-8x7b-h100-64.pbtxt")});
  REQUIRE(selective.status == 0);
  CHECK_THAT(selective.out, !Catch::Contains(note));
  for (const std::string& recompute :
       {std::string("recompute: NONE"), std::string("recompute_modules: [\"norm\"]")}) {
    INFO(recompute);
    std::string changed = text;
    changed.replace(changed.find("recompute: SELECTIVE"), 20, recompute);
    const std::string path = testing::TempPath("scores_kept.pbtxt");
    std::ofstream(path) << changed;
    const auto kept = Moesim({"simulate", path});
    REQUIRE(kept.status == 0);
    CHECK_THAT(kept.out, Catch::Contains(note));
    const auto json = Moesim({"simulate", path, "--json"});
    REQUIRE(json.status == 0);
    pb::StepResult r;
    REQUIRE(google::protobuf::util::JsonStringToMessage(json.out, &r).ok());
    CHECK(r.attention_scores_kept());
    std::filesystem::remove(path);
  }
}

TEST_CASE("moesim simulate locates a step block's missing batch") {
  const auto run = Moesim({"simulate", testing::BadFixture("step_without_batch.pbtxt")});
  CHECK(run.status == 1);
  CHECK_THAT(run.err, Catch::Contains("step.global_batch") && Catch::Contains("missing"));
  CHECK_THAT(run.err, Catch::Contains("step_without_batch.pbtxt:"));
}

TEST_CASE("moesim plan with EPLB placement balances a skewed routing at least as well") {
  auto step_of = [](const pb::PlanTable& t, const std::string& plan) {
    for (const pb::PlanRow& r : t.rows()) {
      if (r.plan() == plan) return r.step_ps();
    }
    FAIL("no row " << plan);
    return int64_t{0};
  };
  const auto contiguous = Moesim(Args({"--json", "--routing", "zipf:1.5"}));
  // 8 experts + 8 replicas: 16 physical experts, which every EP size of 16 GPUs divides.
  const auto eplb = Moesim(Args({"--json", "--routing", "zipf:1.5", "--placement", "eplb:8"}));
  const auto rr = Moesim(Args({"--json", "--routing", "zipf:1.5", "--placement", "round-robin"}));
  REQUIRE(contiguous.status == 0);
  REQUIRE(eplb.status == 0);
  REQUIRE(rr.status == 0);
  const pb::PlanTable c = Json(contiguous.out), e = Json(eplb.out);
  CHECK(e.placement() == "eplb:8");
  CHECK(e.failed() == 0);
  // EP 8 over the 8 GPUs of a node, one expert each: with Zipf 1.5 the hottest expert's GPU bounds
  // the expert phase; EPLB replicates it, so the best plan of both tables is faster with it, though
  // its GPUs now hold 2 experts each and regroup what the all-to-all brings (sort-by-expert).
  const std::string plan = "tp1 pp1 ep8 dp16 mb2";
  CHECK(c.rows(0).plan() == plan);
  CHECK(e.rows(0).plan() == plan);
  CHECK(step_of(e, plan) <= step_of(c, plan));
  CHECK(step_of(e, plan) < step_of(c, plan));
  CHECK(Moesim(Args({"--placement", "scattered"})).status == 1);
}

}  // namespace moesim

namespace moesim {

TEST_CASE("moesim plan --hardware: the profile's measured figures time every candidate") {
  const auto datasheet = Moesim(Args({"--json", "--threads", "1", "--top", "3"}));
  const auto profiled =
      Moesim(Args({"--json", "--threads", "1", "--top", "3", "--hardware",
                   testing::SourcePath("tests/fixtures/hardware/fixture-cpu.pbtxt")}));
  REQUIRE(datasheet.status == 0);
  REQUIRE(profiled.status == 0);
  const pb::PlanTable a = Json(datasheet.out), b = Json(profiled.out);
  REQUIRE(a.rows_size() > 0);
  REQUIRE(b.rows_size() > 0);
  // The fixture's GEMMs run at 0.03 TFLOP/s against an H100's 785.6 TFLOP/s BF16 GEMMs (26,000x),
  // its memory at 2 GB/s against 2,979 GB/s (1,500x); the tiny model's step also holds
  // collectives the profile leaves to the network model, and attention that keeps
  // FlashAttention's figures: the fastest plan is still > 100x slower.
  CHECK(b.rows(0).step_ps() > 100 * a.rows(0).step_ps());
  CHECK(a.hardware() == "per-kernel efficiencies");
  CHECK(a.mfu_dtype() == "BF16");
  CHECK(b.hardware() == "profile fixture-cpu");
  const auto missing = Moesim(Args({"--hardware", "/nonexistent/profile.pbtxt"}));
  CHECK(missing.status == 1);
  CHECK_THAT(missing.err, Catch::Contains("/nonexistent/profile.pbtxt"));
}

TEST_CASE("moesim plan --alltoall-algo hierarchical: DeepEP's relay where EP spans nodes") {
  // 16 GPUs = 2 DGX H100 nodes, a model of 16 experts: plans with EP 16 span both nodes and
  // relay across them; the rest keep the direct exchange. The table says which was asked for.
  std::vector<std::string> base = Args({"--json", "--threads", "1"});
  base[2] = testing::SourcePath("tests/fixtures/models/tiny-moe-16e.pbtxt");
  std::vector<std::string> hier = base;
  hier.insert(hier.end(), {"--alltoall-algo", "hierarchical"});
  const auto direct = Moesim(base);
  const auto relayed = Moesim(hier);
  REQUIRE(direct.status == 0);
  REQUIRE(relayed.status == 0);
  const pb::PlanTable a = Json(direct.out), b = Json(relayed.out);
  CHECK(a.alltoall_algo() == "direct");
  CHECK(b.alltoall_algo() == "hierarchical");
  REQUIRE(a.rows_size() == b.rows_size());
  // The same plans, each simulated both ways: a plan with EP inside one node takes the same time;
  // at least one plan's EP spans the nodes, and there the times differ.
  std::map<std::string, int64_t> before;
  for (const pb::PlanRow& r : a.rows()) before[r.plan()] = r.step_ps();
  int changed = 0;
  for (const pb::PlanRow& r : b.rows()) {
    REQUIRE(before.count(r.plan()) == 1);
    const bool spans = r.plan().find("ep16") != std::string::npos;
    CHECK((r.step_ps() != before[r.plan()]) == spans);
    changed += spans;
  }
  CHECK(changed > 0);
  const auto bad = Moesim(Args({"--alltoall-algo", "ring"}));
  CHECK(bad.status == 2);
  CHECK_THAT(bad.err, Catch::Contains("--alltoall-algo"));

  // Node-limited routing (each token's experts from 1 of 2 groups of 8, one node's under contiguous
  // placement): the relayed plans that span nodes get faster, as each token crosses at most once.
  std::vector<std::string> limited = hier;
  limited.insert(limited.end(), {"--router-groups", "2", "--router-group-topk", "1"});
  const auto one_node = Moesim(limited);
  REQUIRE(one_node.status == 0);
  std::map<std::string, int64_t> relayed_steps;
  for (const pb::PlanRow& r : b.rows()) relayed_steps[r.plan()] = r.step_ps();
  const pb::PlanTable c = Json(one_node.out);
  // Uniform loads stay exact under the limit: every expert k / E.
  CHECK(c.routing() == "uniform, 1 of 2 groups per token (loads: exact)");
  CHECK(b.routing() == "uniform (loads: exact)");
  for (const pb::PlanRow& r : c.rows()) {
    if (r.plan().find("ep16") != std::string::npos) CHECK(r.step_ps() < relayed_steps[r.plan()]);
  }
}

TEST_CASE(
    "moesim plan --dispatch-kernel-gbps and the rest bound the all-to-alls as a scenario's do") {
  // tiny-moe-16e on 2 DGX H100 nodes with deepep_normal: EP 16 relays across the nodes, EP 2 to 8
  // stay in one node (DeepEP's intranode kernels), EP 1 moves nothing.
  std::vector<std::string> base = Args({"--json", "--threads", "1", "--quiet"});
  base[2] = testing::SourcePath("tests/fixtures/models/tiny-moe-16e.pbtxt");
  base.insert(base.end(), {"--alltoall-algo", "deepep_normal"});
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    const auto run = Moesim(args);
    REQUIRE(run.status == 0);
    const pb::PlanTable table = Json(run.out);
    std::map<std::string, int64_t> ps;
    for (const pb::PlanRow& r : table.rows()) ps[r.plan()] = r.step_ps();
    return ps;
  };
  const std::map<std::string, int64_t> free = with({});
  // 1 MB/s per GPU: far below NVLink's and the NICs' rates, so the bound binds wherever it applies.
  const std::map<std::string, int64_t> kernel = with({"--dispatch-kernel-gbps", "0.001"});
  const std::map<std::string, int64_t> rdma = with({"--combine-rdma-kernel-gbps", "0.001"});
  REQUIRE(kernel.size() == free.size());
  REQUIRE(rdma.size() == free.size());
  int relayed = 0, moved = 0;
  for (const auto& [plan, ps] : free) {
    INFO(plan);
    const bool ep1 = plan.find("ep1 ") != std::string::npos;
    const bool spans = plan.find("ep16") != std::string::npos;
    // The kernels' rate bounds every dispatch that moves tokens; the RDMA rate only the relay.
    CHECK((kernel.at(plan) > ps) == !ep1);
    CHECK((rdma.at(plan) > ps) == spans);
    CHECK(kernel.at(plan) >= ps);
    CHECK(rdma.at(plan) >= ps);
    relayed += spans;
    moved += !ep1;
  }
  CHECK(relayed > 0);
  CHECK(moved > relayed);
  // The table says which bounds it searched with, in --json and above the rows.
  std::vector<std::string> shown = base;
  shown.insert(shown.end(),
               {"--combine-rdma-kernel-gbps", "57", "--dispatch-kernel-gbps", "479.5"});
  const auto json = Moesim(shown);
  REQUIRE(json.status == 0);
  const pb::PlanTable t = Json(json.out);
  CHECK(t.dispatch_kernel_gbps() == 479.5);
  CHECK(!t.has_combine_kernel_gbps());
  CHECK(!t.has_dispatch_rdma_kernel_gbps());
  CHECK(t.combine_rdma_kernel_gbps() == 57);
  shown.erase(std::find(shown.begin(), shown.end(), "--json"));
  const auto table = Moesim(shown);
  REQUIRE(table.status == 0);
  CHECK_THAT(table.out,
             Catch::Contains("EP all-to-alls: deepep_normal; the kernels at most dispatch "
                             "479.5 GB/s per GPU; the internode kernels at most combine "
                             "57 GB/s (RDMA) per GPU\n"));

  // --emit-scenario writes the rates into the step block, which simulate reads back.
  const std::string path = testing::TempPath("kernel_rates.pbtxt");
  std::vector<std::string> emit = base;
  emit.insert(emit.end(), {"--dispatch-rdma-kernel-gbps", "0.001", "--combine-kernel-gbps", "0.002",
                           "--emit-scenario", "1", "-o", path});
  REQUIRE(Moesim(emit).status == 0);
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK_THAT(text, Catch::Contains("combine_kernel_gbps: 0.002") &&
                       Catch::Contains("dispatch_rdma_kernel_gbps: 0.001") &&
                       !Catch::Contains("combine_rdma_kernel_gbps"));
  CHECK(Moesim({"simulate", path}).status == 0);
  std::filesystem::remove(path);

  // Out of the scenario field's range, and the RDMA rate without a relay: refused, named.
  auto bad = Moesim(Args({"--dispatch-kernel-gbps", "0"}));
  CHECK(bad.status == 1);
  CHECK_THAT(bad.err, Catch::Contains("--dispatch-kernel-gbps = 0: out of range"));
  bad = Moesim(Args({"--dispatch-rdma-kernel-gbps", "58"}));
  CHECK(bad.status == 1);
  CHECK_THAT(bad.err,
             Catch::Contains("--dispatch-rdma-kernel-gbps = 58: the internode kernels' RDMA "
                             "rate bounds a relay deduplicated per node; --alltoall-algo "
                             "direct has none; valid: with --alltoall-algo hierarchical or "
                             "deepep_normal"));
}

TEST_CASE("moesim plan --alltoall-algo deepep_normal: the relay as DeepEP's kernels, per_rank in a node") {
  // tiny-moe-16e on 2 DGX H100 nodes, as above. deepep_normal times the relay as DeepEP's kernels
  // (the forward under the crossing, no NCCL latencies): faster than hierarchical's two NCCL steps
  // where EP spans the nodes; inside a node it runs DeepEP's intranode kernels, as per_rank does.
  std::vector<std::string> base = Args({"--json", "--threads", "1"});
  base[2] = testing::SourcePath("tests/fixtures/models/tiny-moe-16e.pbtxt");
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    const auto run = Moesim(args);
    REQUIRE(run.status == 0);
    return Json(run.out);
  };
  const pb::PlanTable hier = with({"--alltoall-algo", "hierarchical"});
  const pb::PlanTable per_rank = with({"--alltoall-algo", "per_rank"});
  const pb::PlanTable normal = with({"--alltoall-algo", "deepep_normal"});
  const pb::PlanTable low_latency = with({"--alltoall-algo", "deepep_low_latency"});
  CHECK(normal.alltoall_algo() == "deepep_normal");
  CHECK(low_latency.alltoall_algo() == "deepep_low_latency");
  std::map<std::string, int64_t> hier_ps, per_rank_ps;
  for (const pb::PlanRow& r : hier.rows()) hier_ps[r.plan()] = r.step_ps();
  for (const pb::PlanRow& r : per_rank.rows()) per_rank_ps[r.plan()] = r.step_ps();
  int spans = 0;
  for (const pb::PlanRow& r : normal.rows()) {
    INFO(r.plan());
    if (r.plan().find("ep16") != std::string::npos) {
      CHECK(r.step_ps() < hier_ps.at(r.plan()));
      ++spans;
    } else {
      CHECK(r.step_ps() == per_rank_ps.at(r.plan()));
    }
  }
  CHECK(spans > 0);
  CHECK(low_latency.rows_size() == normal.rows_size());

  // A chunk only for deepep_normal; a group score only with a group limit over uniform routing.
  const auto chunked = Moesim(Args({"--alltoall-algo", "hierarchical", "--alltoall-chunk-tokens",
                                    "8"}));
  CHECK(chunked.status == 1);
  CHECK_THAT(chunked.err, Catch::Contains("--alltoall-chunk-tokens = 8: only deepep_normal "
                                          "forwards in chunks"));
  const auto scored = Moesim(Args({"--router-group-score-top", "2"}));
  CHECK(scored.status == 1);
  CHECK_THAT(scored.err, Catch::Contains("--router-group-score-top = 2: scores the groups of a "
                                         "group limit over uniform routing"));
  const pb::PlanTable by_score =
      with({"--router-groups", "2", "--router-group-topk", "1", "--router-group-score-top", "2"});
  // i.i.d. scores favour no expert: the loads stay exact.
  CHECK(by_score.routing() ==
        "uniform, 1 of 2 groups per token by the sum of their best 2 expert scores (loads: exact)");
}

TEST_CASE("moesim plan --alltoall-algo per_rank --dispatch-dtype fp8: fewer bytes, never slower") {
  // tiny-moe (8 experts) on 16 GPUs: the plans with EP > 1 exchange tokens; per_rank sends each
  // once per GPU, in FP8 (hidden + hidden / 128 x 4 B, about half of BF16) one way. Plans without
  // an EP exchange take the same time; at least one with it is faster.
  const auto plain = Moesim(Args({"--json", "--threads", "1"}));
  const auto lean = Moesim(Args({"--json", "--threads", "1", "--alltoall-algo", "per_rank",
                                 "--dispatch-dtype", "fp8", "--combine-dtype", "bf16"}));
  REQUIRE(plain.status == 0);
  REQUIRE(lean.status == 0);
  const pb::PlanTable a = Json(plain.out), b = Json(lean.out);
  CHECK(a.dispatch_dtype().empty());
  CHECK(b.alltoall_algo() == "per_rank");
  CHECK(b.dispatch_dtype() == "fp8");
  CHECK(b.combine_dtype() == "bf16");
  std::map<std::string, int64_t> before;
  for (const pb::PlanRow& r : a.rows()) before[r.plan()] = r.step_ps();
  int faster = 0;
  for (const pb::PlanRow& r : b.rows()) {
    REQUIRE(before.count(r.plan()) == 1);
    CHECK(r.step_ps() <= before[r.plan()]);
    if (r.ep() == 1) CHECK(r.step_ps() == before[r.plan()]);
    faster += r.step_ps() < before[r.plan()];
  }
  CHECK(faster > 0);
  const auto text = Moesim(Args({"--threads", "1", "--dispatch-dtype", "fp8"}));
  REQUIRE(text.status == 0);
  CHECK_THAT(text.out, Catch::Contains("EP all-to-alls: direct, dispatch in fp8\n"));
  const auto bad = Moesim(Args({"--dispatch-dtype", "fp4"}));
  CHECK(bad.status == 2);
  CHECK_THAT(bad.err, Catch::Contains("--dispatch-dtype"));
}

TEST_CASE("moesim plan refuses a group limit the model cannot take, naming the option") {
  std::vector<std::string> args = Args({"--router-groups", "3", "--router-group-topk", "1"});
  args[2] = testing::SourcePath("tests/fixtures/models/tiny-moe-16e.pbtxt");
  const auto groups = Moesim(args);
  CHECK(groups.status == 1);
  CHECK(groups.err ==
        "moesim: error: --router-groups = 3: must divide the 16 experts into at most 64 groups; "
        "valid: a divisor of 16 from 1 to 64\n");
  // 8 groups of 2 experts, 1 group per token: 2 experts cannot hold a token's 4.
  args[args.size() - 3] = "8";
  const auto top = Moesim(args);
  CHECK(top.status == 1);
  CHECK_THAT(top.err, Catch::Contains("--router-group-topk = 1") &&
                          Catch::Contains("groups of at least top-k = 4 experts together"));
  // A trace brings its own routing: a group limit cannot reshape it.
  args[args.size() - 3] = "2";
  args.insert(args.end(), {"--trace", "any.moetrace"});
  const auto trace = Moesim(args);
  CHECK(trace.status == 1);
  CHECK_THAT(trace.err, Catch::Contains("a --trace brings its own routing"));
}

}  // namespace moesim

namespace moesim {

TEST_CASE("moesim plan: MFU against the model dtype's peak, and against BF16's for FP8 models") {
  // The tiny model in FP8 (a copy of the fixture with dtype: FP8): an H100's dense FP8 peak is
  // 1979 TFLOP/s, twice its BF16 989.5, so every row's BF16 MFU is twice its FP8 one.
  const std::string fp8 = testing::SourcePath("tests/fixtures/models/tiny-moe-fp8.pbtxt");
  std::vector<std::string> json = Args({"--json", "--threads", "1", "--top", "5"});
  json[2] = fp8;
  const auto run = Moesim(json);
  REQUIRE(run.status == 0);
  const pb::PlanTable t = Json(run.out);
  CHECK(t.mfu_dtype() == "FP8");
  REQUIRE(t.rows_size() > 0);
  for (const pb::PlanRow& r : t.rows()) CHECK(r.mfu_bf16() == Approx(2 * r.mfu()).epsilon(1e-12));
  // The table names both peaks; the CSV ends with mfu_bf16.
  std::vector<std::string> table = Args({"--threads", "1", "--top", "1"});
  table[2] = fp8;
  const auto printed = Moesim(table);
  CHECK_THAT(printed.out, Catch::Contains("MFU FP8 %  MFU BF16 %"));
  std::vector<std::string> csv = Args({"--csv", "--threads", "1", "--top", "1"});
  csv[2] = fp8;
  CHECK_THAT(Moesim(csv).out,
             Catch::Contains(",dropped_share,etp,schedule,virtual_stages,mfu_bf16\n"));
  // A BF16 model: one MFU column, named.
  CHECK_THAT(Moesim(Args({"--threads", "1", "--top", "1"})).out, Catch::Contains("MFU BF16 %"));
  // DeepGEMM needs an FP8 model: refused before any plan runs.
  const auto refused = Moesim(Args({"--expert-gemm", "deepgemm"}));
  CHECK(refused.status == 1);
  CHECK_THAT(refused.err, Catch::Contains("--expert-gemm = deepgemm: DeepGEMM's grouped GEMMs are "
                                          "FP8, and the model is BF16"));
}

}  // namespace moesim

namespace moesim {

TEST_CASE("moesim plan --emit-scenario writes a ranked row as a scenario simulate runs") {
  // The tiny model on 16 GPUs, Zipf 1.1 and full recomputation allowed: rows 1 and 3 written,
  // each a scenario whose plan and step blocks are the row's, and whose simulated step lands
  // near the row's. Plan search prices each expert's expected load, simulate a draw of tokens:
  // the same step up to that draw's imbalance (a few per cent here), never 2x apart as a wrong
  // plan, micro-batch or pipeline would be.
  for (const std::string routing : {"uniform", "zipf:1.1"}) {
    const auto table = Moesim(Args({"--routing", routing, "--json", "--quiet"}));
    REQUIRE(table.status == 0);
    const pb::PlanTable t = Json(table.out);
    for (const int n : {1, 3}) {
      INFO(routing << " row " << n);
      const std::string path = testing::TempPath("emitted_row.pbtxt");
      const auto emit = Moesim(Args(
          {"--routing", routing, "--quiet", "--emit-scenario", std::to_string(n), "-o", path}));
      REQUIRE(emit.status == 0);
      CHECK_THAT(emit.err, Catch::Contains("wrote " + path + ": row " + std::to_string(n)));
      const auto run = Moesim({"simulate", path, "--json"});
      REQUIRE(run.status == 0);
      pb::StepResult step;
      REQUIRE(google::protobuf::util::JsonStringToMessage(run.out, &step).ok());
      const pb::PlanRow& row = t.rows(n - 1);
      // The plan as simulate names it: "tp1 pp2 ep8 dp8 ..." holds the row's sizes.
      const std::string sizes = "tp" + std::to_string(row.tp()) + " pp" + std::to_string(row.pp()) +
                                " ep" + std::to_string(row.ep()) + " dp" + std::to_string(row.dp());
      CHECK(step.plan().find(sizes) == 0);
      CHECK(step.micro_batches() * row.micro_batch() * row.dp() == 32);
      CHECK(step.recompute().find(row.recompute() == "FULL" ? "full" : "selective") == 0);
      const double ratio = static_cast<double>(step.step_ns()) * 1e3 / row.step_ps();
      CHECK(ratio > 0.9);
      CHECK(ratio < 1.1);
      CHECK(static_cast<double>(step.memory().total()) ==
            Approx(static_cast<double>(row.memory_bytes())).epsilon(0.05));
      std::filesystem::remove(path);
    }
  }
  // -o without --emit-scenario, a row past the table: refused, nothing written.
  const auto alone = Moesim(Args({"-o", testing::TempPath("x.pbtxt"), "--quiet"}));
  CHECK(alone.status == 1);
  CHECK_THAT(alone.err, Catch::Contains("--emit-scenario N and -o FILE go together"));
  const auto past =
      Moesim(Args({"--emit-scenario", "100000", "-o", testing::TempPath("x.pbtxt"), "--quiet"}));
  CHECK(past.status == 1);
  CHECK_THAT(past.err, Catch::Contains("--emit-scenario = 100000: no such row"));
}

}  // namespace moesim

namespace moesim {

namespace {

// Row 1 of `moesim plan ARGS --emit-scenario 1` as the file it writes, which simulate must run.
std::string EmittedRow1(const std::vector<std::string>& extra, const std::string& name) {
  const std::string path = testing::TempPath(name);
  std::vector<std::string> args = {"--quiet"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.insert(args.end(), {"--emit-scenario", "1", "-o", path});
  REQUIRE(Moesim(Args(args)).status == 0);
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(Moesim({"simulate", path}).status == 0);
  std::filesystem::remove(path);
  return text;
}

}  // namespace

TEST_CASE("moesim plan --overlap-tp: TP plans get faster, the others stay, and emit keeps it") {
  // Each TP pair of collective and GEMM costs max(C, G) + min(C, G) / tp instead of C + G
  // (sim/step/step.h): a plan with tp > 1 gets strictly faster, one with tp 1 keeps its step to
  // the picosecond.
  const auto off = Moesim(Args({"--json", "--quiet"}));
  const auto on = Moesim(Args({"--json", "--quiet", "--overlap-tp"}));
  REQUIRE(off.status == 0);
  REQUIRE(on.status == 0);
  const pb::PlanTable off_table = Json(off.out), on_table = Json(on.out);
  std::map<std::string, int64_t> before;
  for (const pb::PlanRow& row : off_table.rows()) before[row.plan()] = row.step_ps();
  int with_tp = 0, without = 0;
  for (const pb::PlanRow& row : on_table.rows()) {
    INFO(row.plan());
    REQUIRE(before.count(row.plan()) == 1);
    if (row.tp() > 1) {
      CHECK(row.step_ps() < before[row.plan()]);
      ++with_tp;
    } else {
      CHECK(row.step_ps() == before[row.plan()]);
      ++without;
    }
  }
  CHECK(with_tp > 0);
  CHECK(without > 0);
  // The emitted scenario says so, and simulate reads it back.
  CHECK_THAT(EmittedRow1({"--overlap-tp"}, "overlap_tp.pbtxt"), Catch::Contains("tp: true"));
}

TEST_CASE(
    "moesim plan --no-overlap-pipeline: interleaved plans pay their sends, and emit keeps it") {
  // Interleaved candidates overlap their pipeline sends by default (Megatron's overlap_p2p_comm):
  // with the sends on the critical path instead, every plan (pp >= 2, so it sends) gets slower.
  const auto on = Moesim(Args({"--json", "--quiet", "--schedule", "interleaved"}));
  const auto off =
      Moesim(Args({"--json", "--quiet", "--schedule", "interleaved", "--no-overlap-pipeline"}));
  REQUIRE(on.status == 0);
  REQUIRE(off.status == 0);
  std::map<std::string, int64_t> overlapped;
  const pb::PlanTable on_table = Json(on.out);
  for (const pb::PlanRow& row : on_table.rows()) overlapped[row.plan()] = row.step_ps();
  const pb::PlanTable off_table = Json(off.out);
  CHECK(off_table.pipeline_sends_exposed());
  CHECK_FALSE(on_table.pipeline_sends_exposed());
  REQUIRE(off_table.rows_size() > 0);
  for (const pb::PlanRow& row : off_table.rows()) {
    INFO(row.plan());
    REQUIRE(overlapped.count(row.plan()) == 1);
    CHECK(row.pp() >= 2);
    CHECK(row.step_ps() > overlapped[row.plan()]);
  }
  // The table's header says which.
  CHECK_THAT(Moesim(Args({"--quiet", "--schedule", "interleaved"})).out,
             Catch::Contains("; interleaved: pipeline sends beside the compute (Megatron's "
                             "overlap_p2p_comm)"));
  CHECK_THAT(Moesim(Args({"--quiet", "--schedule", "interleaved", "--no-overlap-pipeline"})).out,
             Catch::Contains("; interleaved: pipeline sends on the critical path "
                             "(--no-overlap-pipeline)"));
  CHECK_THAT(EmittedRow1({"--schedule", "interleaved", "--no-overlap-pipeline"},
                         "no_overlap_pipeline.pbtxt"),
             Catch::Contains("pipeline: false"));
}

TEST_CASE("moesim plan --nccl-version: the release its collectives follow, written by emit") {
  CHECK_THAT(EmittedRow1({"--nccl-version", "2.28"}, "nccl_version.pbtxt"),
             Catch::Contains("nccl_version: \"2.28\""));
  const auto bad = Moesim(Args({"--quiet", "--nccl-version", "2.18"}));
  CHECK(bad.status == 1);
  CHECK_THAT(bad.err, Catch::Contains("--nccl-version = \"2.18\": is older than moesim models"));
}

TEST_CASE("moesim plan --host-us-per-kernel: a slow host never makes a plan faster") {
  // Each pass issues its kernels at the host's pace and waits for the GPU at each dispatch
  // (sim/step/step.h): no plan gets faster, and at 1,000 us a kernel every plan is slower.
  const auto fast = Moesim(Args({"--json", "--quiet"}));
  const auto slow = Moesim(Args({"--json", "--quiet", "--host-us-per-kernel", "1000"}));
  REQUIRE(fast.status == 0);
  REQUIRE(slow.status == 0);
  const pb::PlanTable fast_table = Json(fast.out), slow_table = Json(slow.out);
  CHECK(slow_table.host_us_per_kernel() == 1000);
  CHECK_FALSE(fast_table.has_host_us_per_kernel());
  std::map<std::string, int64_t> before;
  for (const pb::PlanRow& row : fast_table.rows()) before[row.plan()] = row.step_ps();
  for (const pb::PlanRow& row : slow_table.rows()) {
    INFO(row.plan());
    REQUIRE(before.count(row.plan()) == 1);
    CHECK(row.step_ps() > before[row.plan()]);
  }
  // The table says so; the emitted scenario carries it; out of range is refused, named.
  CHECK_THAT(Moesim(Args({"--quiet", "--top", "1", "--host-us-per-kernel", "1000"})).out,
             Catch::Contains("; the host 1000 us a kernel\n"));
  const std::string path = testing::TempPath("host.pbtxt");
  REQUIRE(
      Moesim(Args({"--quiet", "--host-us-per-kernel", "12.5", "--emit-scenario", "1", "-o", path}))
          .status == 0);
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK_THAT(text, Catch::Contains("host_us_per_kernel: 12.5"));
  CHECK(Moesim({"simulate", path}).status == 0);
  std::filesystem::remove(path);
  const auto bad = Moesim(Args({"--host-us-per-kernel", "-1"}));
  CHECK(bad.status == 1);
  CHECK_THAT(bad.err, Catch::Contains("--host-us-per-kernel = -1: out of range"));
}

TEST_CASE("moesim plan names recomputation as a scenario does, in --csv and --json alike") {
  // Selective and full are tried by default: both words appear, the same in both outputs; with
  // --recompute-modules every row recomputes those modules and says so (quoted in the CSV).
  const auto csv = Moesim(Args({"--csv", "--top", "1000", "--quiet"}));
  const auto json = Moesim(Args({"--json", "--quiet"}));
  REQUIRE(csv.status == 0);
  REQUIRE(json.status == 0);
  CHECK_THAT(csv.out, Catch::Contains(",SELECTIVE,"));
  CHECK_THAT(csv.out, Catch::Contains(",FULL,"));
  const pb::PlanTable t = Json(json.out);
  for (const pb::PlanRow& r : t.rows()) {
    CHECK((r.recompute() == "FULL") == (r.plan().find("full-rc") != std::string::npos));
    CHECK((r.recompute() == "SELECTIVE" || r.recompute() == "FULL"));
  }
  const auto modules =
      Moesim(Args({"--recompute-modules", "norm,moe_act", "--csv", "--top", "2", "--quiet"}));
  REQUIRE(modules.status == 0);
  CHECK_THAT(modules.out, Catch::Contains(",\"norm,moe_act\","));
}

}  // namespace moesim

namespace moesim {

TEST_CASE("moesim plan --rerank-flow K: the best K at flow fidelity, as a flow search times them") {
  // Two DGX H100 nodes, 32 sequences of tiny-moe-16e, uniform routing, hierarchical all-to-alls
  // (a token bound for the other node crosses it once, then is forwarded over NVLink there): the
  // flow model, its relays' transfers sharing links max-min fairly, times the all-to-alls of the
  // plan with an expert on every GPU (ep16) above their closed-form bound.
  auto args = [](std::vector<std::string> extra) {
    std::vector<std::string> base = {
        "plan",
        "--model",
        testing::SourcePath("tests/fixtures/models/tiny-moe-16e.pbtxt"),
        "--cluster",
        "dgx-h100",
        "--gpus",
        "16",
        "--global-batch",
        "32",
        "--seq-len",
        "512",
        "--json",
        "--threads",
        "1",
        "--routing",
        "uniform",
        "--alltoall-algo",
        "hierarchical"};
    base.insert(base.end(), extra.begin(), extra.end());
    return base;
  };
  const auto analytical = Moesim(args({}));
  const auto reranked = Moesim(args({"--rerank-flow", "3"}));
  const auto flow = Moesim(args({"--fidelity", "flow"}));
  REQUIRE(analytical.status == 0);
  REQUIRE(reranked.status == 0);
  REQUIRE(flow.status == 0);
  const pb::PlanTable a = Json(analytical.out), r = Json(reranked.out), f = Json(flow.out);
  REQUIRE(r.rows_size() == a.rows_size());
  CHECK(r.rerank_flow() == 3);
  CHECK(a.rerank_flow() == 0);
  std::map<std::string, pb::PlanRow> by_plan;  // the flow search's row of each plan
  for (const pb::PlanRow& row : f.rows()) by_plan[row.plan()] = row;
  // The top 3 are the analytical search's top 3, each with exactly the step the flow search gives
  // that plan, ranked by it.
  std::set<std::string> best, top;
  for (int i = 0; i < 3; ++i) {
    best.insert(a.rows(i).plan());
    top.insert(r.rows(i).plan());
    const pb::PlanRow& row = r.rows(i);
    INFO(row.plan());
    CHECK(row.fidelity() == "flow");
    REQUIRE(by_plan.count(row.plan()) == 1);
    CHECK(row.step_ps() == by_plan[row.plan()].step_ps());
    CHECK(row.mfu() == by_plan[row.plan()].mfu());
    if (i > 0) CHECK(r.rows(i - 1).step_ps() <= row.step_ps());
  }
  CHECK(top == best);
  // The flow search times the analytical first (tp1 pp1 ep16 dp16) slower, as its all-to-alls
  // share links the analytical model takes one at a time. (It stays first: ep8, which overtook it
  // at flow fidelity before, now regroups the rows of its 2 experts a GPU, sort-by-expert.)
  CHECK(r.rows(0).step_ps() > a.rows(0).step_ps());
  // Below them, the analytical table unchanged.
  for (int i = 3; i < r.rows_size(); ++i) {
    CHECK(r.rows(i).plan() == a.rows(i).plan());
    CHECK(r.rows(i).step_ps() == a.rows(i).step_ps());
    CHECK(r.rows(i).fidelity() == "analytical");
  }
  const auto text = Moesim(Args({"--rerank-flow", "2", "--top", "3"}));
  CHECK_THAT(text.out, Catch::Contains("rows 1-2: re-timed at flow fidelity and ranked by it "
                                       "(--rerank-flow 2); the rest: analytical"));
  const auto twice = Moesim(Args({"--fidelity", "flow", "--rerank-flow", "2"}));
  CHECK(twice.status == 1);
  CHECK_THAT(twice.err, Catch::Contains("--rerank-flow = 2: re-times an analytical search's best "
                                        "plans; this search is already at flow fidelity"));
  // With the flow model's tolerance (sim/network/flow_model.h) the re-timed rows keep their flow
  // fidelity, the table records it, and the text says it; without a flow model it is refused.
  const auto loose = Moesim(Args({"--json", "--threads", "1", "--routing", "zipf:1.5",
                                  "--rerank-flow", "3", "--flow-tolerance", "0.01"}));
  REQUIRE(loose.status == 0);
  const pb::PlanTable l = Json(loose.out);
  CHECK(l.flow_tolerance() == 0.01);
  for (int i = 0; i < 3; ++i) CHECK(l.rows(i).fidelity() == "flow");
  CHECK_THAT(Moesim(Args({"--rerank-flow", "2", "--top", "3", "--flow-tolerance", "0.01"})).out,
             Catch::Contains("re-timed at flow fidelity, tolerance 1 % on direct all-to-alls"));
  const auto alone = Moesim(Args({"--flow-tolerance", "0.01"}));
  CHECK(alone.status == 1);
  CHECK_THAT(alone.err, Catch::Contains("--flow-tolerance = 0.01: applies to the flow model only"));
}

}  // namespace moesim
