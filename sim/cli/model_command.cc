// `moesim model list`, `moesim model show NAME|FILE [--json]`, `moesim model compare A B`: what a
// model is and what it costs per token, from models/params.h. A model is named by its catalog name
// (models/catalog/NAME.pbtxt) or given as a ModelSpec file (anything with a '/' or ending in
// .pbtxt).

#include <fmt/format.h>

#include <memory>
#include <string>
#include <vector>

#include "models/model_spec.h"
#include "models/params.h"
#include "proto/checked.h"
#include "proto/scenario.pb.h"
#include "proto/text_file.h"
#include "sim/cli/command.h"

namespace moesim::sim {
namespace {

// Attention FLOPs depend on the context; 4096 tokens is a common pre-training sequence length.
constexpr uint64_t kDefaultSeqLen = 4096;

struct ModelOptions {
  std::string model;  // show
  std::string other;  // compare: the second model
  bool json = false;  // show
  uint64_t seq_len = kDefaultSeqLen;
};

StatusOr<pb::ModelSpec> LoadModel(const std::string& name_or_file) {
  return models::LoadModelArgument(name_or_file);
}

// "46.70 B", "903.1 M", "1.03 T": counts of parameters.
std::string Count(double n) {
  if (n >= 1e12) return fmt::format("{:.2f} T", n / 1e12);
  if (n >= 1e9) return fmt::format("{:.2f} B", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.1f} M", n / 1e6);
  return fmt::format("{:.0f}", n);
}

// "93.41 GB", "1.34 TB": decimal units, as memory sizes are sold.
std::string Memory(uint64_t bytes) {
  if (bytes >= 1'000'000'000'000) return fmt::format("{:.2f} TB", bytes / 1e12);
  if (bytes >= 1'000'000'000) return fmt::format("{:.2f} GB", bytes / 1e9);
  return fmt::format("{:.1f} MB", bytes / 1e6);
}

// "85.6 GFLOP", "1.23 TFLOP".
std::string Flops(uint64_t flops) {
  if (flops >= 1'000'000'000'000) return fmt::format("{:.2f} TFLOP", flops / 1e12);
  if (flops >= 1'000'000'000) return fmt::format("{:.1f} GFLOP", flops / 1e9);
  return fmt::format("{:.1f} MFLOP", flops / 1e6);
}

// A published figure as the source rounds it: "46.7 B", "671 B", "1 T".
std::string Published(double n) {
  if (n >= 1e12) return fmt::format("{:.4g} T", n / 1e12);
  if (n >= 1e9) return fmt::format("{:.4g} B", n / 1e9);
  return fmt::format("{:.4g} M", n / 1e6);
}

std::string Percent(double part, double whole) {
  return whole > 0 ? fmt::format("{:.1f}%", 100.0 * part / whole) : "-";
}

std::string Experts(const pb::ModelSpec& spec) {
  if (spec.num_experts() == 1) return "dense (one FFN every token uses)";
  std::string s =
      std::to_string(spec.num_experts()) + " routed, top-" + std::to_string(spec.top_k());
  if (spec.num_shared_experts() > 0) {
    s += ", " + std::to_string(spec.num_shared_experts()) + " shared";
  }
  s += spec.router() == pb::ModelSpec::SIGMOID ? "; sigmoid router" : "; softmax router";
  return s;
}

std::string AttentionText(const pb::ModelSpec& spec) {
  const pb::AttentionSpec& a = spec.attention();
  if (a.num_heads() == 0) return "MHA, heads spanning the hidden size (not given)";
  std::string s =
      pb::AttentionSpec::Kind_Name(a.kind()) + ", " + std::to_string(a.num_heads()) + " heads";
  if (a.kind() == pb::AttentionSpec::GQA) {
    s += ", " + std::to_string(a.num_kv_heads()) + " KV heads";
  }
  if (a.kind() == pb::AttentionSpec::MLA) {
    s += " (kv latent " + std::to_string(a.kv_lora_rank()) + ", q latent " +
         (a.q_lora_rank() > 0 ? std::to_string(a.q_lora_rank()) : std::string("none")) + ")";
  }
  if (a.sliding_window() > 0) {
    s += "; " + std::to_string(a.sliding_window()) + "-token window" +
         (a.full_attention_every_n_layers() > 0
              ? ", full every " + std::to_string(a.full_attention_every_n_layers()) + " layers"
              : std::string());
  }
  if (a.cross_attention_layers() > 0) {
    s += "; cross-attention in the last " + std::to_string(a.cross_attention_layers()) + " layers";
  }
  return s;
}

int ListModels(CommandIo& io) {
  const StatusOr<std::string> catalog = models::CatalogDir();
  if (!catalog.ok()) return Fail(io, catalog.error());
  const std::string& dir = *catalog;
  const std::vector<std::string> names = models::CatalogNames(dir);
  io.out << "moesim model list: " << names.size() << " models in " << dir << "\n";
  io.out << fmt::format("  {:<20} {:>8} {:>6} {:>7} {:>12} {:>10} {:>10}\n", "name", "experts",
                        "top-k", "shared", "MoE layers", "total", "active");
  for (const std::string& name : names) {
    auto spec = models::LoadCatalogModel(name, Location{}, dir);
    if (!spec.ok()) return Fail(io, spec.error());
    const models::ModelParams p = models::CountParams(*spec);
    const std::string layers =
        std::to_string(p.moe_layers) + "/" + std::to_string(spec->num_layers());
    io.out << fmt::format("  {:<20} {:8} {:6} {:7} {:>12} {:>10} {:>10}\n", name,
                          spec->num_experts(), spec->top_k(), spec->num_shared_experts(), layers,
                          Count(p.total_params()), Count(p.active_params()));
  }
  io.out << "(active: parameters one token uses; `moesim model show NAME` for the rest)\n";
  return 0;
}

void PrintShow(const pb::ModelSpec& spec, const pb::ModelSummary& s, CommandIo& io) {
  const pb::ParamBreakdown& t = s.total();
  const double total = s.total_params();
  std::ostream& out = io.out;
  out << "moesim model show: " << spec.name() << "\n"
      << "  source      " << spec.source() << "\n"
      << "  layers      " << s.num_layers() << ": " << s.moe_layers() << " MoE, "
      << s.dense_layers() << " dense\n"
      << "  experts     " << Experts(spec) << "\n"
      << "  attention   " << AttentionText(spec) << "\n"
      << "  vocabulary  "
      << (spec.vocab_size() > 0
              ? std::to_string(spec.vocab_size()) + (spec.tie_word_embeddings()
                                                         ? ", embedding tied to the LM head"
                                                         : ", separate embedding and LM head")
              : std::string("not given (embeddings not counted)"))
      << "\n"
      << "  dtype       " << pb::DType_Name(spec.dtype()) << "\n\n";

  out << "Parameters                         count   of total\n";
  std::string published;
  if (spec.published_total_params() > 0) {
    published = "   published " + Published(spec.published_total_params());
  }
  out << fmt::format("  {:<26} {:>11} {:>10}", "total (all in memory)", Count(total), "100.0%")
      << published << "\n";
  published.clear();
  if (spec.published_active_params() > 0) {
    published =
        "   published " + Published(spec.published_active_params()) +
        (spec.published_active_excludes_embedding() ? " (without the input embedding)" : "");
  }
  out << fmt::format("  {:<26} {:>11} {:>10}", "active per token", Count(s.active_params()),
                     Percent(s.active_params(), total))
      << published << "\n";
  out << fmt::format("  {:<26} {:>11} {:>10}", "  without input embedding",
                     Count(s.active_matmul_params()), Percent(s.active_matmul_params(), total))
      << "\n";
  out << fmt::format("  {:<26} {:>11} {:>10}", "routed experts", Count(s.routed_expert_params()),
                     Percent(s.routed_expert_params(), total))
      << "   per token " << Count(s.active_routed_expert_params()) << " (" << spec.top_k() << " of "
      << spec.num_experts() << " in each of " << s.moe_layers() << " MoE layers)\n";
  out << fmt::format("  {:<26} {:>11} {:>10}", "non-expert", Count(s.non_expert_params()),
                     Percent(s.non_expert_params(), total))
      << "\n";
  const std::pair<const char*, uint64_t> parts[] = {
      {"attention", t.attention()},
      {"dense FFN", t.dense_ffn()},
      {"shared experts", t.shared_experts()},
      {"routers", t.router()},
      {"embedding + LM head", t.embedding() + t.unembedding()}};
  for (const auto& [label, value] : parts) {
    out << fmt::format("    {:<24} {:>11} {:>10}", label, Count(value), Percent(value, total))
        << "\n";
  }

  out << "\nFLOPs per token at sequence length " << s.seq_len()
      << " (forward: 2 x active matmul weights + attention)\n"
      << fmt::format("  {:<10} {:>12}", "forward", Flops(s.forward_flops_per_token()))
      << "   (matmul " << Flops(s.forward_matmul_flops_per_token()) << ", attention "
      << Flops(s.forward_attention_flops_per_token()) << ")\n"
      << fmt::format("  {:<10} {:>12}", "training", Flops(s.training_flops_per_token()))
      << "   (3 x forward)\n";

  out << "\nWeights in memory (all " << Count(total) << " parameters)\n";
  for (const pb::WeightMemory& m : s.weight_memory()) {
    out << fmt::format("  {:<10} {:>12}", pb::DType_Name(m.dtype()), Memory(m.bytes()))
        << (m.dtype() == spec.dtype() ? "   <- the spec's dtype" : "") << "\n";
  }
}

// --seq-len against the range a step's seq_len declares (proto/scenario.proto).
Status CheckSeqLen(const ModelOptions& options) {
  return CheckFigure(static_cast<double>(options.seq_len),
                     DeclaredRange<pb::StepSpec>("seq_len"), {}, "--seq-len");
}

int Show(const ModelOptions& options, CommandIo& io) {
  if (Status s = CheckSeqLen(options); !s.ok()) return Fail(io, s.error());
  auto spec = LoadModel(options.model);
  if (!spec.ok()) return Fail(io, spec.error());
  const pb::ModelSummary summary = models::Summarize(*spec, options.seq_len);
  if (options.json) return PrintJson(summary, io);
  PrintShow(*spec, summary, io);
  return 0;
}

int Compare(const ModelOptions& options, CommandIo& io) {
  if (Status s = CheckSeqLen(options); !s.ok()) return Fail(io, s.error());
  auto a = LoadModel(options.model);
  if (!a.ok()) return Fail(io, a.error());
  auto b = LoadModel(options.other);
  if (!b.ok()) return Fail(io, b.error());
  const pb::ModelSummary sa = models::Summarize(*a, options.seq_len);
  const pb::ModelSummary sb = models::Summarize(*b, options.seq_len);

  std::ostream& out = io.out;
  out << "moesim model compare: compute per token against weights that must sit in memory\n"
      << "(FLOPs at sequence length " << options.seq_len << "; memory in each model's dtype)\n";
  auto row = [&](const char* label, const std::string& x, const std::string& y) {
    out << fmt::format("  {:<30} {:>22} {:>22}\n", label, x, y);
  };
  row("", sa.name(), sb.name());
  auto experts = [](const pb::ModelSpec& m) {
    return m.num_experts() == 1
               ? std::string("dense")
               : std::to_string(m.num_experts()) + ", top-" + std::to_string(m.top_k());
  };
  row("routed experts", experts(*a), experts(*b));
  row("weights in memory (params)", Count(sa.total_params()), Count(sb.total_params()));
  row("weights in memory (bytes)", Memory(sa.weight_bytes()) + " " + pb::DType_Name(sa.dtype()),
      Memory(sb.weight_bytes()) + " " + pb::DType_Name(sb.dtype()));
  row("active per token (params)", Count(sa.active_params()), Count(sb.active_params()));
  row("active / in memory", Percent(sa.active_params(), sa.total_params()),
      Percent(sb.active_params(), sb.total_params()));
  row("forward FLOPs per token", Flops(sa.forward_flops_per_token()),
      Flops(sb.forward_flops_per_token()));
  row("training FLOPs per token", Flops(sa.training_flops_per_token()),
      Flops(sb.training_flops_per_token()));
  out << "\n  " << sb.name() << " against " << sa.name() << ": "
      << fmt::format("{:.2f}x", static_cast<double>(sb.total_params()) / sa.total_params())
      << " the weights in memory, "
      << fmt::format("{:.2f}x", static_cast<double>(sb.forward_flops_per_token()) /
                                    sa.forward_flops_per_token())
      << " the compute per token.\n";
  return 0;
}

}  // namespace

void AddModelCommand(CLI::App& app, CommandAction* chosen) {
  auto options = std::make_shared<ModelOptions>();
  CLI::App* model = app.add_subcommand(
      "model", "Model catalog: parameters, active parameters, FLOPs and weight memory per model");
  model->require_subcommand(1);
  model->footer(
      "A MODEL is a catalog name (`moesim model list`) or a ModelSpec file (.pbtxt).\n"
      "Dense against MoE, with the two illustrative files of the repository:\n"
      "  moesim model compare models/examples/dense-40b.pbtxt "
      "models/examples/moe-120b-8x14b-top2.pbtxt\n"
      "(the MoE's 8 experts replace the dense FFN: per token it computes with 2 of them, about\n"
      "as much as the 40B dense model, yet all ~120B of its weights must be loaded).\n");

  CLI::App* list = model->add_subcommand(
      "list", "The catalog (models/catalog): experts, top-k, total and active parameters");
  list->callback([chosen] { *chosen = [](CommandIo& io) { return ListModels(io); }; });

  CLI::App* show = model->add_subcommand(
      "show",
      "One model: total and active parameters, routed experts against the rest, FLOPs per token "
      "(forward, training), weight memory per dtype");
  show->add_option("model", options->model, "Catalog name or ModelSpec file (.pbtxt)")->required();
  show->add_flag("--json", options->json,
                 "Print a ModelSummary (proto/model.proto) as protobuf JSON instead of a table");
  show->add_option("--seq-len", options->seq_len, "Sequence length for attention FLOPs (tokens)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  show->callback(
      [options, chosen] { *chosen = [options](CommandIo& io) { return Show(*options, io); }; });

  CLI::App* compare = model->add_subcommand(
      "compare",
      "Two models side by side: compute per token against weights that must sit in memory, e.g. "
      "models/examples/dense-40b.pbtxt against models/examples/moe-120b-8x14b-top2.pbtxt");
  compare->add_option("a", options->model, "First model: catalog name or ModelSpec file")
      ->required();
  compare->add_option("b", options->other, "Second model: catalog name or ModelSpec file")
      ->required();
  compare->add_option("--seq-len", options->seq_len, "Sequence length for attention FLOPs (tokens)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  compare->callback(
      [options, chosen] { *chosen = [options](CommandIo& io) { return Compare(*options, io); }; });
}

}  // namespace moesim::sim
