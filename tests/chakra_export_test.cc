// `moesim export chakra`: a 2 x 4 GPU step written as Chakra execution traces, read back through
// proto/chakra_et.proto and checked against the plan and the step, figure by figure.
#include "sim/report/chakra_export.h"

#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/util/delimited_message_util.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "models/dispatch.h"
#include "models/send_matrices.h"
#include "moesim_runner.h"
#include "proto/chakra_et.pb.h"
#include "proto/result.pb.h"
#include "sim/moe/scenario_loader.h"
#include "sim/step/scenario_run.h"
#include "test_paths.h"

namespace moesim::sim {
namespace {

// Two nodes of four H100 (8 GPUs); a tiny MoE model of two layers, one per stage: tp 2, ep 2,
// pp 2, so dp = 8 / (2 x 2) = 2 and, on the MoE grid, edp = 8 / (2 stages x ep 2) = 2. A global
// batch of 8 over dp 2 x micro-batch 1: m = 4 micro-batches. Selective recomputation (no
// recompute ops), the distributed optimizer (reduce-scatter + all-gather).
constexpr char kChakraScenario[] = R"pb(
  name: "chakra 2x4"
  cluster {
    node {
      name: "n4"
      gpu: "h100-sxm"
      gpus: 4
      nvlink { bandwidth_gbps: 450 }
      nics { count: 4 gbit_per_s: 400 }
    }
    nodes: 2
    fabric { rail_optimized {} }
  }
  model_spec {
    name: "tiny"
    hidden_size: 64
    expert_ffn_size: 128
    num_experts: 4
    top_k: 2
    num_layers: 2
    dtype: BF16
    attention { kind: GQA num_heads: 4 num_kv_heads: 2 head_dim: 16 }
    vocab_size: 256
    router: SOFTMAX
  }
  plan { tp: 2 ep: 2 pp: 2 }
  routing { synthetic { distribution: UNIFORM seed: 1 } }
  step { mode: TRAINING global_batch: 8 seq_len: 64 micro_batch: 1 recompute: SELECTIVE }
)pb";

struct ChakraFile {
  ChakraProtoMsg::GlobalMetadata metadata;
  std::vector<ChakraProtoMsg::Node> nodes;
};

// A trace file read back as Chakra's tools read it: a length-delimited GlobalMetadata, then
// length-delimited Nodes to the end of the file.
ChakraFile ReadChakraFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  google::protobuf::io::IstreamInputStream stream(&in);
  ChakraFile f;
  bool clean_eof = false;
  REQUIRE(
      google::protobuf::util::ParseDelimitedFromZeroCopyStream(&f.metadata, &stream, &clean_eof));
  while (true) {
    ChakraProtoMsg::Node node;
    if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&node, &stream, &clean_eof)) {
      REQUIRE(clean_eof);  // the end of the file, not a cut record
      break;
    }
    f.nodes.push_back(std::move(node));
  }
  return f;
}

const ChakraProtoMsg::AttributeProto* Attr(const ChakraProtoMsg::Node& n, const std::string& name) {
  for (const auto& a : n.attr())
    if (a.name() == name) return &a;
  return nullptr;
}

struct ChakraFixture {
  LoadedScenario scenario;
  ScenarioStep step;
};

ChakraFixture Simulated(const std::string& text = kChakraScenario) {
  StatusOr<LoadedScenario> s = LoadScenarioFromString(text, "chakra.pbtxt");
  REQUIRE(s.ok());
  StatusOr<ScenarioStep> step = SimulateScenarioStep(*s, Fidelity::kAnalytical, std::nullopt);
  REQUIRE(step.ok());
  return {std::move(*s), std::move(*step)};
}

// Off-diagonal sum of row `rank` of a send matrix's bytes.
uint64_t SentOffRank(const pb::SendMatrix& m, uint32_t rank) {
  uint64_t sum = 0;
  for (int j = 0; j < m.bytes(static_cast<int>(rank)).values_size(); ++j)
    if (static_cast<uint32_t>(j) != rank)
      sum += static_cast<uint64_t>(m.bytes(static_cast<int>(rank)).values(j).number_value());
  return sum;
}

}  // namespace

TEST_CASE("export chakra: every rank's trace read back matches the plan and the step") {
  const ChakraFixture f = Simulated();
  const models::Plan& plan = f.scenario.workload.plan;
  StatusOr<ChakraExport> e = ChakraExport::Create(f.step, plan, f.scenario.workload.model);
  REQUIRE(e.ok());
  const std::string dir = testing::TempPath("chakra");
  std::filesystem::remove_all(dir);
  StatusOr<ChakraWritten> w = WriteChakraTraces(*e, dir, {});
  REQUIRE(w.ok());

  // One file per rank, named as ASTRA-sim's feeder opens them: PREFIX.RANK.et.
  CHECK(w->files == 8);
  std::vector<ChakraFile> files;
  for (uint32_t r = 0; r < 8; ++r)
    files.push_back(ReadChakraFile(dir + "/workload." + std::to_string(r) + ".et"));
  CHECK_FALSE(std::filesystem::exists(dir + "/workload.8.et"));

  // Node counts. Stage 0 (embedding + layer 0) runs per micro-batch forward: embedding, then the
  // MoE layer's 19 ops (attn-norm, tp-allgather, attn-qkv, rope, attn-core, attn-out,
  // tp-reducescatter, ffn-norm, router, router-topk, dispatch-layout, permute, dispatch,
  // sort-by-expert, expert, expert-act, unsort-by-expert, combine, unpermute: ep 2 over 4 experts,
  // 2 on each rank, under the direct all-to-all) = 20, and one SEND = 21; backward: one RECV and
  // the 19 ops with a backward (dispatch-layout has none) = 20. Stage 1 (layer 1 + final-norm,
  // tp-allgather-lm-head, lm-head, loss): forward RECV + 19 + 4 = 24; backward 23 - 1 = 22 ops +
  // SEND = 23. Then 2 reduce-scatters (dense over dp 2, expert over edp 2), the optimizer and 2
  // all-gathers = 5. Stage 0: 4 x (21 + 20) + 5 = 169; stage 1: 4 x (24 + 23) + 5 = 193.
  for (uint32_t r = 0; r < 8; ++r) {
    INFO("rank " << r);
    CHECK(files[r].nodes.size() == (plan.PpStage(r) == 0 ? 169u : 193u));
  }
  CHECK(w->nodes == 4 * 169 + 4 * 193);
  // Nodes() counts them without building them: the figure the size check uses.
  for (uint32_t r = 0; r < 8; ++r) CHECK(e->Nodes(r) == files[r].nodes.size());

  // GlobalMetadata first, in Chakra's version; every node's id is its position, and its data_deps
  // name earlier nodes of the same file.
  for (uint32_t r = 0; r < 8; ++r) {
    const ChakraFile& file = files[r];
    CHECK(file.metadata.version() == "0.0.4");
    for (size_t i = 0; i < file.nodes.size(); ++i) {
      const ChakraProtoMsg::Node& n = file.nodes[i];
      REQUIRE(n.id() == i);
      CHECK((i == 0 ? n.data_deps_size() == 0 : n.data_deps_size() == 1));
      for (uint64_t d : n.data_deps()) CHECK(d < n.id());
      REQUIRE(Attr(n, "is_cpu_op") != nullptr);
      CHECK_FALSE(Attr(n, "is_cpu_op")->bool_val());
    }
  }

  // All-to-all bytes: per micro-batch the rank's one MoE layer dispatches and combines forward and
  // again backward (their gradients, the same bytes): 4 x 2 x (dispatch + combine) of what its EP
  // rank sends off-rank in the Result's send matrices (models/send_matrices.h, the simulator's).
  pb::Result result;
  models::AddSendMatrices(result, 0,
                          models::SentTokens(f.step.layer, f.scenario.workload.alltoall_algo),
                          /*token bytes: h 64 x 2 B=*/128);
  REQUIRE(result.send_matrices_size() == 2);
  // Uniform routing of 32 tokens per rank (64 tokens / tp 2), 2 copies each: both EP ranks send
  // something off-rank, at most their 64 copies x 128 B.
  for (uint32_t r = 0; r < 8; ++r) {
    INFO("rank " << r);
    const uint32_t e_rank = plan.EpRank(r);
    const uint64_t dispatch = SentOffRank(result.send_matrices(0), e_rank);
    const uint64_t combine = SentOffRank(result.send_matrices(1), e_rank);
    CHECK(dispatch > 0);
    CHECK(dispatch <= 64 * 128);
    uint64_t a2a = 0, dispatched = 0;
    uint32_t a2a_nodes = 0;
    for (const auto& n : files[r].nodes) {
      if (n.type() != ChakraProtoMsg::COMM_COLL_NODE) continue;
      if (Attr(n, "comm_type")->int64_val() != ChakraProtoMsg::ALL_TO_ALL) continue;
      const uint64_t size = static_cast<uint64_t>(Attr(n, "comm_size")->int64_val());
      a2a += size;
      if (n.name().ends_with("/dispatch")) dispatched += size;
      ++a2a_nodes;
    }
    CHECK(a2a_nodes == 4 * 4);
    CHECK(a2a == 4 * 2 * (dispatch + combine));
    CHECK(dispatched == 4 * 2 * dispatch);
  }

  // FLOPs, by hand. t = 64 tokens (micro-batch 1 x seq 64), n = t / tp = 32 routed, h = 64; per
  // TP rank 2 query heads and 1 KV head of 16: q 32, k 16, v 16, o 32 wide.
  //   attn-qkv  2 t (32 + 16 + 16) h = 2 x 64 x 64 x 64 = 524,288
  //   attn-core 2 x pairs x (q + o) = 2 x (64 x 65 / 2 = 2,080) x 64 = 266,240 (backward x 5/2)
  //   attn-out  2 t h o = 2 x 64 x 64 x 32 = 262,144
  //   router    2 n E h = 2 x 32 x 4 x 64 = 16,384
  //   lm-head   2 t (V / tp) h = 2 x 64 x 128 x 64 = 1,048,576 (stage 1)
  //   expert    per row 2 h (2 f) + 2 f h = 2 x 64 x 256 + 2 x 128 x 64 = 49,152 x rows
  // GEMM backward = 2 x forward (dgrad + wgrad). Per micro-batch, without the experts:
  //   forward 524,288 + 266,240 + 262,144 + 16,384 = 1,069,056
  //   backward 2 x (524,288 + 262,144 + 16,384) + 665,600 = 2,271,232
  //   sum 3,340,288 (+ lm-head 3 x 1,048,576 = 3,145,728 on stage 1); experts 3 x 49,152 rows.
  // Over 4 micro-batches: 13,361,152 (stage 1: 25,944,064) + 589,824 x rows of the EP rank.
  const std::vector<std::vector<uint64_t>>& expert_tokens = f.step.layer.expert_tokens;
  REQUIRE(expert_tokens.size() == 2);
  uint64_t rows[2] = {0, 0};
  for (uint32_t e_rank = 0; e_rank < 2; ++e_rank)
    for (uint64_t t : expert_tokens[e_rank]) rows[e_rank] += t;
  CHECK(rows[0] + rows[1] == 2 * 32 * 2);  // every copy of the EP group's 64 tokens, top-2
  for (uint32_t r = 0; r < 8; ++r) {
    INFO("rank " << r);
    uint64_t flops = 0;
    for (const auto& n : files[r].nodes)
      if (n.type() == ChakraProtoMsg::COMP_NODE) flops += Attr(n, "num_ops")->int64_val();
    const uint64_t dense = plan.PpStage(r) == 0 ? 13'361'152 : 25'944'064;
    CHECK(flops == dense + 589'824 * rows[plan.EpRank(r)]);
  }

  // Groups: comm_group.json holds every plan group of two or more ranks, once; each rank's
  // collectives name its own TP, EP, dp x cp and edp groups.
  std::ifstream groups_in(dir + "/comm_group.json");
  const nlohmann::json groups = nlohmann::json::parse(groups_in);
  std::map<std::string, std::vector<uint32_t>> by_id;
  for (auto it = groups.begin(); it != groups.end(); ++it)
    by_id[it.key()] = it.value().get<std::vector<uint32_t>>();
  CHECK(by_id.size() == e->groups().size());
  for (uint32_t r = 0; r < 8; ++r) {
    INFO("rank " << r);
    for (const auto& n : files[r].nodes) {
      if (n.type() != ChakraProtoMsg::COMM_COLL_NODE) continue;
      const std::string& pg = Attr(n, "pg_name")->string_val();
      REQUIRE(by_id.count(pg) == 1);
      const std::vector<uint32_t>& members = by_id[pg];
      std::vector<uint32_t> expected;
      const int64_t type = Attr(n, "comm_type")->int64_val();
      if (type == ChakraProtoMsg::ALL_TO_ALL)
        expected = plan.EpGroup(r);
      else if (n.name().find("grad-sync/dense") == 0)
        expected = plan.DpCpGroup(r);
      else if (n.name().find("grad-sync/expert") == 0)
        expected = plan.EdpGroup(r);
      else
        expected = plan.TpGroup(r);
      std::sort(expected.begin(), expected.end());
      CHECK(members == expected);
    }
  }

  // Pipeline transfers: every SEND has one RECV at its peer with the same tag and size, from it.
  std::map<std::tuple<int32_t, int32_t, int32_t>, int64_t> sends, recvs;
  for (uint32_t r = 0; r < 8; ++r) {
    for (const auto& n : files[r].nodes) {
      if (n.type() != ChakraProtoMsg::COMM_SEND_NODE && n.type() != ChakraProtoMsg::COMM_RECV_NODE)
        continue;
      const auto key =
          std::make_tuple(Attr(n, "comm_src")->int32_val(), Attr(n, "comm_dst")->int32_val(),
                          Attr(n, "comm_tag")->int32_val());
      const int64_t size = Attr(n, "comm_size")->int64_val();
      // One micro-batch's activations: n 32 tokens x h 64 x 2 B = 4,096 bytes.
      CHECK(size == 4096);
      auto& side = n.type() == ChakraProtoMsg::COMM_SEND_NODE ? sends : recvs;
      CHECK(side.emplace(key, size).second);
      CHECK(static_cast<uint32_t>(n.type() == ChakraProtoMsg::COMM_SEND_NODE
                                      ? std::get<0>(key)
                                      : std::get<1>(key)) == r);
    }
  }
  CHECK(sends.size() == 4 * 8);  // 4 micro-batches x 4 pipelines x (forward + backward)
  CHECK(sends == recvs);
  std::filesystem::remove_all(dir);
}

TEST_CASE("export chakra: the same input gives the same bytes") {
  const ChakraFixture f = Simulated();
  StatusOr<ChakraExport> e =
      ChakraExport::Create(f.step, f.scenario.workload.plan, f.scenario.workload.model);
  REQUIRE(e.ok());
  for (uint32_t r : {0u, 5u}) {
    CHECK(e->Rank(r).metadata.SerializeAsString() == e->Rank(r).metadata.SerializeAsString());
    std::string a, b;
    for (const auto& n : e->Rank(r).nodes) a += n.SerializeAsString();
    for (const auto& n : e->Rank(r).nodes) b += n.SerializeAsString();
    CHECK(a == b);
  }
}

TEST_CASE("export chakra: bad input gets the error simulate gives, or names the directory") {
  const std::string dir = testing::TempPath("chakra_cli");
  std::filesystem::remove_all(dir);
  // A missing scenario: the same message as moesim simulate.
  const testing::MoesimRun sim = testing::Moesim({"simulate", "/no/such/scenario.pbtxt"});
  const testing::MoesimRun exp =
      testing::Moesim({"export", "chakra", "/no/such/scenario.pbtxt", "-o", dir});
  CHECK(sim.status == 1);
  CHECK(exp.status == 1);
  CHECK(exp.err == sim.err);
  CHECK_FALSE(std::filesystem::exists(dir));

  // A scenario that does not parse: the same message too.
  const std::string typo = dir + "_typo.pbtxt";
  { std::ofstream(typo) << "plan { tpp: 2 }\n"; }
  const testing::MoesimRun sim_typo = testing::Moesim({"simulate", typo});
  const testing::MoesimRun exp_typo = testing::Moesim({"export", "chakra", typo, "-o", dir});
  CHECK(exp_typo.status == 1);
  CHECK_THAT(exp_typo.err, Catch::Contains("has no field named \"tpp\""));
  CHECK(exp_typo.err == sim_typo.err);
  CHECK_FALSE(std::filesystem::exists(dir));
  std::filesystem::remove(typo);

  // A scenario without a step block.
  const testing::MoesimRun layer = testing::Moesim(
      {"export", "chakra", testing::SourcePath("scenarios/seed_example.pbtxt"), "-o", dir});
  CHECK(layer.status == 1);
  CHECK_THAT(layer.err, Catch::Contains("step = absent") && Catch::Contains("step { ... }"));

  // A directory that is not empty is refused without --force, then written with it.
  const std::string scenario = dir + ".pbtxt";
  { std::ofstream(scenario) << kChakraScenario; }
  std::filesystem::create_directories(dir);
  { std::ofstream(dir + "/keep.txt") << "mine"; }
  const testing::MoesimRun refused = testing::Moesim({"export", "chakra", scenario, "-o", dir});
  CHECK(refused.status == 1);
  CHECK(refused.err == "moesim: error: -o = " + dir +
                           ": is not empty; valid: a new or empty directory, or --force to "
                           "replace files of the same names\n");
  const testing::MoesimRun forced =
      testing::Moesim({"export", "chakra", scenario, "-o", dir, "--force"});
  CHECK(forced.status == 0);
  CHECK_THAT(forced.out, Catch::Contains("8 traces") && Catch::Contains("1448 nodes"));
  CHECK(std::filesystem::exists(dir + "/workload.7.et"));
  CHECK(std::filesystem::exists(dir + "/keep.txt"));

  // Too large: DeepSeek-V3 on 2,048 GPUs (pp 16, dp 128: 15,360 / 128 = 120 micro-batches) is
  // 60,405,504 nodes, about 7.20 GiB at 128 B a node: refused before DIR is made, unless allowed.
  // (55,060,224 before each of its 58 MoE layers sorted its rows by expert, 4 experts a GPU: two
  // sorts in the forward, the recomputation and the backward, 6 x 58 x 120 x 128 = 5,345,280.)
  const std::string big = testing::SourcePath("scenarios/deepseek-v3-h800-2048.pbtxt");
  const testing::MoesimRun large = testing::Moesim({"export", "chakra", big, "-o", dir + "_big"});
  CHECK(large.status == 1);
  CHECK(large.err ==
        "moesim: error: step = 60405504 Chakra nodes over 2048 ranks: the traces would take about "
        "7.20 GiB, more than 4.00 GiB (--max-gib); valid: fewer micro-batches (step.global_batch "
        "over dp x micro_batch), or a larger --max-gib\n");
  CHECK_FALSE(std::filesystem::exists(dir + "_big"));

  // A prefix that is not a file name.
  const testing::MoesimRun prefix =
      testing::Moesim({"export", "chakra", scenario, "-o", dir + "_p", "--prefix", "a/b"});
  CHECK(prefix.status == 1);
  CHECK(prefix.err ==
        "moesim: error: --prefix = \"a/b\": names the trace files DIR/PREFIX.RANK.et; valid: a "
        "file name without '/', such as workload\n");
  CHECK_FALSE(std::filesystem::exists(dir + "_p"));

  // -o naming a file, and a directory that cannot be created.
  const testing::MoesimRun file = testing::Moesim({"export", "chakra", scenario, "-o", scenario});
  CHECK(file.status == 1);
  CHECK_THAT(file.err, Catch::Contains("exists and is not a directory"));
  const testing::MoesimRun under_file =
      testing::Moesim({"export", "chakra", scenario, "-o", scenario + "/out"});
  CHECK(under_file.status == 1);
  CHECK_THAT(under_file.err, Catch::Contains("cannot create the directory"));
  std::filesystem::remove_all(dir);
  std::filesystem::remove(scenario);
}

TEST_CASE("export chakra: a schedule other than 1F1B is refused, naming it") {
  std::string text = kChakraScenario;
  text.replace(text.find("recompute: SELECTIVE"), 20,
               "recompute: SELECTIVE schedule: \"dualpipe\"");
  StatusOr<LoadedScenario> s = LoadScenarioFromString(text, "dualpipe.pbtxt");
  REQUIRE(s.ok());
  StatusOr<ScenarioStep> step = SimulateScenarioStep(*s, Fidelity::kAnalytical, std::nullopt);
  REQUIRE(step.ok());
  StatusOr<ChakraExport> e = ChakraExport::Create(*step, s->workload.plan, s->workload.model);
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().message() ==
        "step.schedule = dualpipe: moesim export chakra writes each rank's ops in 1F1B order; "
        "valid: 1f1b");
}

TEST_CASE("export chakra: a step that replays a trace is refused, naming where it came from") {
  ChakraFixture f = Simulated();
  // What SimulateStep says of a step whose MoE layers replay a trace (StepReport::routing).
  f.step.report.routing = "replayed from run.trace: 2 step(s) x 2 MoE layer(s)";
  StatusOr<ChakraExport> e =
      ChakraExport::Create(f.step, f.scenario.workload.plan, f.scenario.workload.model);
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().message() ==
        "routing = trace: moesim export chakra writes one MoE layer's routing for every layer and "
        "micro-batch, and this step replays a trace (replayed from run.trace: 2 step(s) x 2 MoE "
        "layer(s)); valid: routing { synthetic { ... } }");
}

}  // namespace moesim::sim
