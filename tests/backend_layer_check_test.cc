// backend/run/layer_check.h catches what it promises to catch: a misrouted row, a corrupted
// payload, a wrong output. One rank, through a loopback communicator that can damage what it
// delivers.
#include <catch2/catch.hpp>
#include <cstring>

#include "backend/run/bench_scenario.h"
#include "backend/run/layer_check.h"
#include "backend/run/layer_inputs.h"

namespace moesim::backend {
namespace {

// A world of one rank: every exchange is a copy; `swap_rows` swaps the first two rows delivered.
class Loopback final : public Communicator {
 public:
  bool swap_rows = false;
  bool bump_payload = false;

  uint32_t rank() const override { return 0; }
  uint32_t size() const override { return 1; }
  uint32_t ranks_on_node() const override { return 1; }
  uint32_t local_rank() const override { return 0; }
  void Barrier() override {}
  void AllToAll(std::span<const uint64_t> send, std::span<uint64_t> recv) override {
    std::copy(send.begin(), send.end(), recv.begin());
  }
  Status AllToAllV(const void* send, std::span<const uint64_t> send_units, void* recv,
                   std::span<const uint64_t>, uint64_t unit_bytes) override {
    std::memcpy(recv, send, send_units[0] * unit_bytes);
    auto* rows = static_cast<char*>(recv);
    if (swap_rows && send_units[0] >= 2) {
      std::vector<char> tmp(rows, rows + unit_bytes);
      std::memcpy(rows, rows + unit_bytes, unit_bytes);
      std::memcpy(rows + unit_bytes, tmp.data(), unit_bytes);
    }
    if (bump_payload) reinterpret_cast<float*>(rows)[kStampElements] += 0.5f;
    swap_rows = bump_payload = false;  // damage the dispatch only, not the combine
    return Status::Ok();
  }
  Status AllToAllEqual(const void* send, void* recv, uint64_t units, uint64_t unit_bytes) override {
    std::memcpy(recv, send, units * unit_bytes);
    return Status::Ok();
  }
  void Broadcast(void*, uint64_t) override {}
  void ReduceMax(std::span<const int64_t> in, std::span<int64_t> out) override {
    std::copy(in.begin(), in.end(), out.begin());
  }
  void ReduceMax(std::span<const double> in, std::span<double> out) override {
    std::copy(in.begin(), in.end(), out.begin());
  }
  void Gather(std::span<const int64_t> in, std::span<int64_t> out) override {
    std::copy(in.begin(), in.end(), out.begin());
  }
  bool AnyRank(bool mine) override { return mine; }
};

// One GPU, 4 experts, top-2, explicit routing: token t's experts are listed per token.
const char* kScenario = R"(
cluster { node_preset: "dgx-h100" gpus: 1 }
model_spec { name: "tiny" hidden_size: 16 expert_ffn_size: 24 num_experts: 4 top_k: 2
             num_layers: 1 dtype: BF16 }
workload { tokens_per_gpu: 4 }
routing { explicit { rank { rank: 0 experts: [1, 0, 2, 0, 3, 1, 0, 2] } } }
)";

struct Layer {
  BenchScenario s;
  ExpertWeights experts;
  std::vector<float> router;
  MoeLayerRank rank;
  Layer(BenchScenario scenario)
      : s(std::move(scenario)),
        experts(MakeExpertWeights(1, 0, 4, 16, 24)),
        router(RouterMatrix(1, 16, 4)),
        rank(s.workload, 0, 0, 1, experts, router) {
    rank.Prepare();
  }
};

Layer MakeLayer() {
  auto s = LoadBenchScenarioFromString(kScenario, "tiny.pbtxt");
  REQUIRE(s.ok());
  return Layer(std::move(*s));
}

}  // namespace

TEST_CASE("layer check: an intact layer passes both checks") {
  Layer l = MakeLayer();
  Loopback comm;
  l.rank.Route();
  REQUIRE(l.rank.Dispatch(comm).ok());
  // Expert 0 gets tokens 0, 1, 3 (slots 1, 3, 6); expert 1 tokens 0, 2; 2: 1, 3; 3: 2. 8 rows.
  CHECK(l.rank.expert_rows() == std::vector<uint64_t>{3, 2, 2, 1});
  auto rows = CheckDispatched(l.rank, l.s.workload, 0, 1);
  REQUIRE(rows.ok());
  CHECK(*rows == 8);
  l.rank.Experts();
  REQUIRE(l.rank.Combine(comm).ok());
  const std::vector<float> ref = ReferenceOutput(l.s.workload, 0, 0, 1, l.router);
  auto error = CheckCombined(l.rank.output(), ref, 16, 0, 0);
  REQUIRE(error.ok());
  CHECK(*error <= kRelativeErrorBound);
}

TEST_CASE("layer check: a misrouted row is named by its stamp") {
  Layer l = MakeLayer();
  Loopback comm;
  comm.swap_rows = true;  // expert 0's first two rows: token 0 and token 1 trade places
  l.rank.Route();
  REQUIRE(l.rank.Dispatch(comm).ok());
  auto rows = CheckDispatched(l.rank, l.s.workload, 0, 1);
  REQUIRE_FALSE(rows.ok());
  CHECK(
      rows.error().message() ==
      "rank 0, layer 0: expert 0 row 0 holds token (rank 0, token 1), expected (rank 0, token 0)");
}

TEST_CASE("layer check: a corrupted payload and a wrong output are caught") {
  Layer l = MakeLayer();
  Loopback comm;
  comm.bump_payload = true;  // one value of the first row, after the stamp, + 0.5
  l.rank.Route();
  REQUIRE(l.rank.Dispatch(comm).ok());
  auto rows = CheckDispatched(l.rank, l.s.workload, 0, 1);
  REQUIRE_FALSE(rows.ok());
  CHECK(rows.error().message() ==
        "rank 0, layer 0: expert 0 row 0, token (rank 0, token 0): payload differs from the "
        "token's row");
  // An output off by 1% of a token's largest value is far outside the bound of 1e-4.
  const std::vector<float> ref = ReferenceOutput(l.s.workload, 0, 0, 1, l.router);
  std::vector<float> wrong = ref;
  float largest = 0;
  for (int i = 0; i < 16; ++i) largest = std::max(largest, std::abs(ref[16 + i]));
  wrong[16 + 5] += 0.01f * largest;
  auto error = CheckCombined(wrong, ref, 16, 0, 0);
  REQUIRE_FALSE(error.ok());
  CHECK_THAT(error.error().message(),
             Catch::StartsWith("rank 0, layer 0: token 1 after combine differs from the "
                               "single-process reference by 0.01"));
}

}  // namespace moesim::backend

namespace moesim::backend {

TEST_CASE("layer check: over the layer's largest value a cancelling token passes, alone it fails") {
  // Two tokens of hidden 2. Token 0's reference is (1, 0), token 1's (0.01, 0), and the output
  // errs by 0.05 in token 1 only, as an FP8 GEMM errs by a share of the terms it sums even where
  // they cancel. Over its own largest value token 1 is off by 0.05 / 0.01 = 5; over the layer's
  // largest value (1), by 0.05.
  const std::vector<float> ref = {1.0f, 0.0f, 0.01f, 0.0f};
  const std::vector<float> out = {1.0f, 0.0f, 0.06f, 0.0f};
  const StatusOr<double> layer = CheckCombined(out, ref, 2, 0, 0, 0.25, ErrorScale::kLayer);
  REQUIRE(layer.ok());
  CHECK(*layer == Approx(0.05).epsilon(1e-6));
  const StatusOr<double> token = CheckCombined(out, ref, 2, 0, 0, 0.25, ErrorScale::kToken);
  REQUIRE_FALSE(token.ok());
  CHECK(token.error().message() ==
        "rank 0, layer 0: token 1 after combine differs from the single-process reference by 5 "
        "of its largest value (bound 0.25)");
  // Past the bound over the layer's largest value too: 0.3 of 1.
  const std::vector<float> far = {1.0f, 0.0f, 0.31f, 0.0f};
  const StatusOr<double> worse = CheckCombined(far, ref, 2, 0, 0, 0.25, ErrorScale::kLayer);
  REQUIRE_FALSE(worse.ok());
  CHECK(worse.error().message() ==
        "rank 0, layer 0: token 1 after combine differs from the single-process reference by 0.3 "
        "of the layer's largest value (bound 0.25)");
}

}  // namespace moesim::backend
