// `moebench gemm [--device cpu|gpu] [--dtype bf16|fp8] [--tokens-per-expert LIST] [--experts LIST]
// [--hidden LIST] [--ffn LIST] [--model NAME] [--warmup W] [--iters I] [--out FILE] [--json]`:
// grouped SwiGLU expert GEMMs over every combination of the shapes, achieved GFLOP/s.
#include <fmt/format.h>

#include <memory>

#include "backend/bench/gemm_bench.h"
#include "backend/cli/command.h"
#include "models/model_spec.h"

namespace moesim::backend {
namespace {

struct GemmCommandOptions {
  std::string device = "cpu";
  // Defaults: OLMoE-1B-7B's expert (hidden 2048, FFN 1024), 8 experts per GPU as at EP 8, loads
  // from decode-like to prefill-like; small enough for a laptop's CPU.
  std::vector<uint64_t> tokens = {16, 64, 256};
  std::vector<uint32_t> experts = {8};
  std::vector<uint32_t> hidden = {2048};
  std::vector<uint32_t> ffn = {1024};
  std::string model;
  GemmOptions timing;
  std::string out;
  bool json = false;
};

void PrintTable(const pb::Result& r, std::ostream& out) {
  out << "# moebench gemm: " << r.scenario() << "; device " << r.device() << " (" << r.dtype()
      << "), " << r.gpus() << " rank(s), " << r.iterations() << " iterations after "
      << r.warmup_iterations() << " warm-up\n"
      << "# time: slowest rank per iteration, median and spread; GFLOP/s = 6*T*E*h*f / median\n"
      << "#\n"
      << "# tokens/expert  experts  hidden    ffn     GFLOP   median(us)    min(us)    max(us)  "
         "GFLOP/s\n";
  for (const pb::Phase& p : r.phases()) {
    const pb::GemmShape& s = p.gemm_shape();
    out << fmt::format(
        "{:15}  {:7}  {:6}  {:5}  {:>8.3f}  {:>11.1f}  {:>9.1f}  {:>9.1f}  {:>7.1f}\n",
        s.tokens_per_expert(), s.experts(), s.hidden(), s.ffn(), p.flops() / 1e9, p.time_ns() / 1e3,
        p.time_min_ns() / 1e3, p.time_max_ns() / 1e3,
        p.time_ns() > 0 ? static_cast<double>(p.flops()) / p.time_ns() : 0.0);
  }
}

int Run(GemmCommandOptions o, CommandIo& io) {
  if (!o.model.empty()) {
    const StatusOr<std::string> catalog = models::CatalogDir();
    if (!catalog.ok()) return io.Fail(catalog.error());
    auto spec = models::LoadCatalogModel(o.model, Location{}, *catalog);
    if (!spec.ok()) return io.Fail(spec.error());
    o.hidden = {spec->hidden_size()};
    o.ffn = {spec->expert_ffn_size()};
  }
  if (o.timing.iterations < 1)
    return io.Fail(InputError({}, "--iters", "0", "nothing to time", ">= 1"));
  std::vector<pb::GemmShape> shapes;
  for (uint32_t h : o.hidden) {
    for (uint32_t f : o.ffn) {
      for (uint32_t e : o.experts) {
        for (uint64_t t : o.tokens) {
          if (h == 0 || f == 0 || e == 0 || t == 0) {
            return io.Fail(InputError({}, "gemm shape",
                                      std::to_string(t) + "x" + std::to_string(e) + "x" +
                                          std::to_string(h) + "x" + std::to_string(f),
                                      "a zero size", "every size >= 1"));
          }
          pb::GemmShape s;
          s.set_tokens_per_expert(t);
          s.set_experts(e);
          s.set_hidden(h);
          s.set_ffn(f);
          shapes.push_back(s);
        }
      }
    }
  }
  if (o.timing.dtype == "fp8") {
    if (o.device != "gpu") {
      return io.Fail(InputError({}, "--dtype", "fp8",
                                "FP8 GEMMs run on a GPU; the CPU kernels are fp32",
                                "--device gpu, or --dtype bf16"));
    }
    for (const pb::GemmShape& s : shapes) {
      if (s.tokens_per_expert() % 16 != 0) {
        return io.Fail(InputError({}, "--dtype fp8 shape",
                                  std::to_string(s.tokens_per_expert()) + " tokens per expert",
                                  "FP8 operands need 16-row multiples (DeepGEMM pads each "
                                  "expert to 128)",
                                  "multiples of 16"));
      }
      if (s.hidden() % 128 != 0 || s.ffn() % 128 != 0) {
        return io.Fail(InputError(
            {}, "--dtype fp8 shape",
            "hidden " + std::to_string(s.hidden()) + ", ffn " + std::to_string(s.ffn()),
            "block scales of 128 need hidden and ffn multiples of 128", "multiples of 128"));
      }
    }
  }
  // Before the measurement, which may be long: an --out that cannot be written fails now.
  if (Status s = CheckOutOption(o.out, io); !s.ok()) return io.Fail(s.error());
  auto result = o.device == "gpu" ? MeasureGpuGemms(io.comm, shapes, o.timing)
                                  : MeasureCpuGemms(io.comm, shapes, o.timing);
  if (!result.ok()) return io.Fail(result.error());
  if (io.root() && !o.json) PrintTable(*result, io.out);
  const Status written = WriteResult(*result, o.out, o.json, io);
  return written.ok() ? 0 : io.Fail(written.error());
}

}  // namespace

void AddGemmCommand(CLI::App& app, CommandAction* chosen) {
  auto o = std::make_shared<GemmCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "gemm",
      "Measure grouped SwiGLU expert GEMMs over shapes (tokens per expert x experts x "
      "hidden x FFN): GFLOP/s");
  cmd->add_option("--device", o->device, "cpu: Eigen kernels (fp32); gpu: cuBLAS (bf16)")
      ->check(CLI::IsMember({"cpu", "gpu"}))
      ->capture_default_str();
  cmd->add_option("--tokens-per-expert", o->tokens, "Rows each expert gets (list)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--experts", o->experts, "Experts per GPU (list)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--hidden", o->hidden, "Hidden size (list)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--ffn", o->ffn, "Expert FFN size (list)")->delimiter(',')->capture_default_str();
  cmd->add_option("--model", o->model, "Take hidden and FFN sizes from a catalog model");
  cmd->add_option("--warmup", o->timing.warmup, "Untimed iterations per shape")
      ->capture_default_str();
  cmd->add_option("--iters", o->timing.iterations, "Timed iterations per shape")
      ->capture_default_str();
  AddGemmApiOption(cmd, &o->timing.gemm_api);
  cmd->add_option("--dtype", o->timing.dtype,
                  "--device gpu: bf16 (cuBLAS) or fp8 (E4M3 with 1x128 activation and 128x128 "
                  "weight scales, cuBLASLt; --gemm-api does not apply)")
      ->check(CLI::IsMember({"bf16", "fp8"}))
      ->capture_default_str();
  cmd->add_option("--out", o->out, "Write the measured Result (binary protobuf) to FILE");
  cmd->add_flag("--json", o->json, "Print the measured Result as JSON instead of the table");
  cmd->callback([o, chosen] { *chosen = [o](CommandIo& io) { return Run(*o, io); }; });
}

}  // namespace moesim::backend
