// Scenario texts the backend tests share (tests/backend_cli_mpi_test.cc,
// tests/backend_gpu_run_test.cc).
#pragma once

namespace moesim::testing {

// One GPU, 4 experts top-2, small widths, 2 layers of 32 tokens: the whole layer on one rank in
// milliseconds; 32 tokens x top-2 x 2 layers = 128 rows, all kept local.
inline constexpr char kOneGpuScenario[] = R"(
name: "one gpu"
cluster { node_preset: "dgx-h100" gpus: 1 }
model_spec { name: "tiny" hidden_size: 64 expert_ffn_size: 128 num_experts: 4 top_k: 2
             num_layers: 2 dtype: BF16 }
workload { tokens_per_gpu: 32 moe_layers: 2 }
routing { synthetic { distribution: UNIFORM seed: 3 } }
)";

}  // namespace moesim::testing
