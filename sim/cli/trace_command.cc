// `moesim trace gen | import | merge | stats`: routing trace files (models/trace.h). `gen` draws a
// trace from the seeded generators of models/synthetic.h, `import` converts Megatron-Core router
// JSONL, CSV or .npy top-k indices (models/trace_import.h; many files at once by a name pattern,
// models/trace_files.h), `merge` joins traces (models/trace_merge.h), `stats` streams a trace and
// prints per-layer load statistics (models/trace.h, ComputeLoadStats).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "models/expert_counts.h"
#include "models/model_spec.h"
#include "models/placement.h"
#include "models/placement_spec.h"
#include "models/plan.h"
#include "models/rng.h"
#include "models/synthetic.h"
#include "models/trace.h"
#include "models/trace_files.h"
#include "models/trace_import.h"
#include "models/trace_merge.h"
#include "models/workload.h"
#include "proto/atomic_file.h"
#include "proto/checked.h"
#include "proto/host_memory.h"
#include "sim/cli/command.h"

namespace moesim::sim {
namespace {

struct TraceOptions {
  // gen
  std::string model;
  uint32_t experts = 0;
  uint32_t top_k = 0;
  uint64_t tokens = 0;
  uint64_t steps = 1;
  uint32_t layers = 1;
  uint32_t ranks = 1;
  std::string distribution = "uniform";
  double alpha = 1.0;
  double fraction = 0.5;
  uint32_t hot_experts = 0;
  // uniform, zipf: group-limited routing (models/synthetic.h, GroupLimit); 0 = none.
  uint32_t router_groups = 0;
  uint32_t router_group_topk = 0;
  // measured: expert counts CSV (model,domain,layer,expert,count) and which rows to use.
  std::string counts_file;
  std::string counts_model;
  std::string counts_domain;
  uint32_t counts_layer = 0;
  // import counts: the records are labelled with the measured layer (counts_layer), not 0, and the
  // summary line names the import.
  bool from_counts_import = false;
  uint64_t seed = 0;
  std::string output;
  // Which distribution-specific options the user gave, so that one that does not apply is an error.
  bool alpha_given = false, fraction_given = false, hot_given = false, counts_given = false;
  // import, merge
  std::string format;
  std::string input;                // stats; import and merge: inputs
  std::vector<std::string> inputs;  // files or glob patterns (expanded here, not by the shell)
  std::string pattern;              // import csv/npy of many files: the cell in each base name
  uint64_t step = 0;
  uint32_t layer = 0;
  uint32_t rank = 0;
  bool step_given = false, layer_given = false, rank_given = false;
  std::string along;  // merge: "", step, layer or rank
  // stats
  uint32_t ep = 0;
  std::string placement = "contiguous";
  bool placement_given = false;
  bool per_expert = false;
  double capacity_factor = 0;  // stats: > 0 counts the copies over each record's capacity
  bool json = false;
};

// Experts and top-k from --model and/or --experts/--top-k; they must agree where both are given.
struct Shape {
  uint32_t experts = 0;
  uint32_t top_k = 0;
};
StatusOr<Shape> ResolveShape(const TraceOptions& o, bool need_top_k) {
  Shape s{o.experts, o.top_k};
  if (!o.model.empty()) {
    MOESIM_ASSIGN_OR_RETURN(const std::string catalog, models::CatalogDir());
    MOESIM_ASSIGN_OR_RETURN(pb::ModelSpec spec,
                            models::LoadCatalogModel(o.model, Location{}, catalog));
    if (o.experts != 0 && o.experts != spec.num_experts()) {
      return InputError(
          Location{}, "--experts", std::to_string(o.experts),
          "model " + o.model + " has " + std::to_string(spec.num_experts()) + " experts",
          std::to_string(spec.num_experts()));
    }
    if (o.top_k != 0 && o.top_k != spec.top_k()) {
      return InputError(
          Location{}, "--top-k", std::to_string(o.top_k),
          "model " + o.model + " routes each token to top-" + std::to_string(spec.top_k()),
          std::to_string(spec.top_k()));
    }
    s = {spec.num_experts(), spec.top_k()};
  }
  if (s.experts == 0) return Error("the number of experts is needed: --experts E or --model NAME");
  if (need_top_k && s.top_k == 0) return Error("top-k is needed: --top-k K or --model NAME");
  if (s.top_k > s.experts) {
    return InputError(Location{}, "--top-k", std::to_string(s.top_k),
                      "each token picks top-k distinct experts", "1.." + std::to_string(s.experts));
  }
  return s;
}

// --distribution measured: the counts of (--counts-model, --counts-domain, --counts-layer) in the
// --counts CSV, one per expert.
StatusOr<std::vector<uint64_t>> LoadMeasured(const TraceOptions& o, uint32_t experts) {
  if (o.counts_file.empty() || o.counts_model.empty() || o.counts_domain.empty()) {
    return Error(
        "--distribution measured needs --counts FILE --counts-model M --counts-domain D "
        "(e.g. ../shared/data/routing/expert_counts_topk.csv, olmoe, arxiv)");
  }
  MOESIM_ASSIGN_OR_RETURN(models::ExpertCounts table, models::ExpertCounts::ReadCsv(o.counts_file));
  const std::vector<uint64_t>* counts = table.Find(o.counts_model, o.counts_domain, o.counts_layer);
  if (counts == nullptr) {
    std::vector<std::string> layers;
    for (uint32_t l : table.Layers(o.counts_model, o.counts_domain)) {
      layers.push_back(std::to_string(l));
    }
    return Error(o.counts_file + " has no counts for model " + o.counts_model + ", domain " +
                 o.counts_domain + ", layer " + std::to_string(o.counts_layer) +
                 "; models: " + Join(table.Models()) + "; domains of " + o.counts_model + ": " +
                 Join(table.Domains(o.counts_model)) + "; layers: " + Join(layers));
  }
  if (counts->size() != experts) {
    return Error(o.counts_file + ": " + o.counts_model + " has " + std::to_string(counts->size()) +
                 " experts but the trace is for " + std::to_string(experts));
  }
  return *counts;
}

int Gen(const TraceOptions& o, CommandIo& io) {
  auto shape_or = ResolveShape(o, /*need_top_k=*/true);
  if (!shape_or.ok()) return Fail(io, shape_or.error());
  const Shape shape = *shape_or;
  const models::RoutingShape routing{.ranks = o.ranks,
                                     .layers = o.layers,
                                     .tokens_per_rank = o.tokens,
                                     .num_experts = shape.experts,
                                     .top_k = shape.top_k};
  std::string what = "--distribution " + o.distribution;
  const std::pair<bool, const char*> specific[] = {
      {o.alpha_given && o.distribution != "zipf", "--alpha applies to --distribution zipf only"},
      {(o.fraction_given || o.hot_given) && o.distribution != "collapse",
       "--fraction and --hot-experts apply to --distribution collapse only"},
      {o.counts_given && o.distribution != "measured",
       "--counts, --counts-model, --counts-domain and --counts-layer apply to --distribution "
       "measured only"}};
  for (const auto& [wrong, problem] : specific) {
    if (wrong) return Fail(io, Error(problem));
  }
  const models::GroupLimit limit{o.router_groups, o.router_group_topk};
  if (o.router_groups != 0 || o.router_group_topk != 0) {
    if (o.distribution != "uniform" && o.distribution != "zipf") {
      return Fail(io, Error("--router-groups and --router-group-topk apply to --distribution "
                            "uniform or zipf only"));
    }
    const Status limit_ok =
        CheckRouterGroupOptions(o.router_groups, o.router_group_topk, shape.experts, shape.top_k);
    if (!limit_ok.ok()) return Fail(io, limit_ok.error());
    what += " --router-groups " + std::to_string(o.router_groups) + " --router-group-topk " +
            std::to_string(o.router_group_topk);
  }
  std::vector<uint64_t> measured;
  if (o.distribution == "measured") {
    auto counts = LoadMeasured(o, shape.experts);
    if (!counts.ok()) return Fail(io, counts.error());
    measured = std::move(*counts);
    what += " --counts " + o.counts_file + " --counts-model " + o.counts_model +
            " --counts-domain " + o.counts_domain + " --counts-layer " +
            std::to_string(o.counts_layer) +
            " (per-expert totals from the counts, scaled to the tokens by largest remainder; which "
            "experts share a token is an artefact of the deal)";
  } else if (o.distribution == "zipf") {
    if (!(o.alpha > 0)) {
      return Fail(io, InputError(Location{}, "--alpha", std::to_string(o.alpha),
                                 "Zipf exponent must be positive", "> 0"));
    }
    what += " --alpha " + std::to_string(o.alpha);
  } else if (o.distribution == "collapse") {
    if (!(o.fraction >= 0 && o.fraction <= 1)) {
      return Fail(io, InputError(Location{}, "--fraction", std::to_string(o.fraction),
                                 "a fraction of the tokens", "0..1"));
    }
    if (o.hot_experts != 0 && (o.hot_experts < shape.top_k || o.hot_experts > shape.experts)) {
      return Fail(io,
                  InputError(Location{}, "--hot-experts", std::to_string(o.hot_experts),
                             "the hot experts must hold a token's top-k",
                             std::to_string(shape.top_k) + ".." + std::to_string(shape.experts)));
    }
    what += " --fraction " + std::to_string(o.fraction);
  } else if (o.distribution != "uniform") {
    return Fail(io, InputError(Location{}, "--distribution", o.distribution, "unknown distribution",
                               "uniform, zipf, collapse, measured"));
  }

  const std::tuple<const char*, uint32_t, uint32_t> sizes[] = {
      {"--layers", o.layers, models::kMaxTraceLayers},
      {"--ranks", o.ranks, models::kMaxTraceRanks}};
  for (const auto& [option, value, limit] : sizes) {
    if (value > limit) {
      return Fail(io, InputError({}, option, std::to_string(value), "more than a trace may hold",
                                 "1.." + std::to_string(limit) + " (models/trace.h)"));
    }
  }
  if (Status s = CheckFigure(static_cast<double>(o.tokens),
                             DeclaredRange<pb::Workload>("tokens_per_gpu"), {}, "--tokens");
      !s.ok()) {
    return Fail(io, s.error());
  }
  // Before the drawing, which may be long: a path that cannot be written, a layer's routing that
  // cannot be held, or a trace that cannot fit on the disk fails now. A record holds tokens x top_k
  // ids as varints (at most 3 bytes each below 2^21 experts) plus a few bytes of fields.
  if (Status s = CheckOutputPath(o.output, "--output"); !s.ok()) return Fail(io, s.error());
  if (Status s = CheckFitsInMemory(models::EstimateWorkloadBytes({o.ranks, 1, o.tokens,
                                                                  shape.experts, shape.top_k}),
                                   "one layer's routing of " + std::to_string(o.ranks) +
                                       " ranks x " + std::to_string(o.tokens) + " tokens",
                                   "fewer --ranks or --tokens", AvailableHostBytes());
      !s.ok()) {
    return Fail(io, s.error());
  }
  const double trace_bytes = static_cast<double>(o.steps) * o.layers * o.ranks *
                             (3.0 * static_cast<double>(o.tokens) * shape.top_k + 32);
  if (Status s = CheckSpaceFor(o.output, trace_bytes, "--output", "the trace"); !s.ok()) {
    return Fail(io, s.error());
  }

  pb::TraceHeader header;
  header.set_model(o.model);
  header.set_num_experts(shape.experts);
  header.set_top_k(shape.top_k);
  // An imported counts layer keeps its label: records of layer counts_layer only.
  const uint32_t first_layer = o.from_counts_import ? o.counts_layer : 0;
  header.set_num_layers(first_layer + o.layers);
  header.set_num_ranks(o.ranks);
  header.set_token_order("generated: tokens in draw order");
  header.set_source(std::string(o.from_counts_import ? "moesim trace import counts "
                                                      : "moesim trace gen ") +
                    what + " --seed " + std::to_string(o.seed) +
                    " (step s uses seed Rng::Mix(seed, s, 0))");
  auto writer = models::TraceWriter::Create(o.output, header);
  if (!writer.ok()) return Fail(io, writer.error());

  pb::TraceRecord record;
  for (uint64_t step = 0; step < o.steps; ++step) {
    // Each step its own stream, so steps differ but any one step is reproducible alone.
    const uint64_t seed = models::Rng::Mix(o.seed, step, 0);
    for (uint32_t layer = 0; layer < o.layers; ++layer) {
      models::LayerRouting routing_layer;
      if (o.distribution == "measured") {
        auto dealt = models::CountsRouting(routing, measured, seed, layer);
        if (!dealt.ok()) return Fail(io, dealt.error());
        routing_layer = std::move(*dealt);
      } else if (o.distribution == "zipf") {
        routing_layer =
            models::ZipfRouting(routing, {.alpha = o.alpha, .limit = limit}, seed, layer);
      } else if (o.distribution == "collapse") {
        routing_layer = models::CollapseRouting(
            routing, {.fraction = o.fraction, .hot_experts = o.hot_experts}, seed, layer);
      } else {
        routing_layer = models::UniformRouting(routing, seed, layer, limit);
      }
      for (uint32_t rank = 0; rank < o.ranks; ++rank) {
        const std::vector<uint32_t>& ids = routing_layer.experts[rank];
        record.Clear();
        record.set_step(step);
        record.set_layer(first_layer + layer);
        record.set_rank(rank);
        record.set_tokens(ids.size() / shape.top_k);
        record.mutable_experts()->Add(ids.begin(), ids.end());
        const Status written = writer->Write(record);
        if (!written.ok()) return Fail(io, written.error());
      }
    }
  }
  const Status closed = writer->Close();
  if (!closed.ok()) return Fail(io, closed.error());
  if (o.from_counts_import) {
    io.out << "moesim trace import: wrote " << o.output << ": " << o.steps << " steps x layer "
           << o.counts_layer << " (" << o.counts_model << ", " << o.counts_domain << ") x "
           << o.ranks << " ranks x " << o.tokens << " tokens, " << shape.experts << " experts, top-"
           << shape.top_k << " (drawn to match the counts)\n";
    return 0;
  }
  io.out << "moesim trace gen: wrote " << o.output << ": " << o.steps << " steps x " << o.layers
         << " layers x " << o.ranks << " ranks x " << o.tokens << " tokens, " << shape.experts
         << " experts, top-" << shape.top_k << " (" << o.distribution << ")\n";
  return 0;
}

// Many files into one trace: CSV or .npy placed by --pattern (models/trace_files.h), JSONL files
// in path order (each line names its own cell).
int ImportMany(const TraceOptions& o, const models::TraceImportOptions& base, CommandIo& io) {
  auto files = models::ExpandTraceGlobs(o.inputs);
  if (!files.ok()) return Fail(io, files.error());
  models::TraceImportOptions options = base;
  std::vector<models::TraceImportInput> inputs;
  std::string source;  // the header's source is "FORMAT: " + this
  std::string grid_note;
  if (o.format == "megatron-jsonl") {
    if (!o.pattern.empty()) {
      return Fail(io, Error("--pattern applies to csv and npy: a megatron-jsonl line names its own "
                            "step, layer and rank"));
    }
    std::vector<std::string> sorted = *files;
    std::sort(sorted.begin(), sorted.end());
    for (const std::string& f : sorted) inputs.push_back({f});
    source = std::to_string(sorted.size()) + " files, " + Printable(sorted.front()) + " .. " +
             Printable(sorted.back());
  } else {
    if (o.pattern.empty()) {
      return Fail(io, Error(std::to_string(files->size()) +
                            " csv/npy files: each holds one (step, layer, rank), which --pattern "
                            "reads from its name, e.g. --pattern 'r{rank}_l{layer}_s{step}.csv'"));
    }
    auto pattern = models::TraceNamePattern::Parse(o.pattern);
    if (!pattern.ok()) return Fail(io, pattern.error());
    const std::pair<bool, const char*> twice[] = {
        {o.step_given, "step"}, {o.layer_given, "layer"}, {o.rank_given, "rank"}};
    for (const auto& [given, field] : twice) {
      if (given && o.pattern.find(std::string("{") + field + "}") != std::string::npos) {
        return Fail(io, Error(std::string("--") + field + " and --pattern's {" + field +
                              "} both give the " + field + "; keep one"));
      }
    }
    auto grid = models::PlaceTraceFiles(*files, *pattern, {"", o.step, o.layer, o.rank});
    if (!grid.ok()) return Fail(io, grid.error());
    inputs = std::move(grid->inputs);
    source = grid->source;
    options.num_layers = grid->layers;
    options.num_ranks = grid->ranks;
    grid_note = ", " + std::to_string(grid->steps) + " step(s) x " +
                std::to_string(grid->distinct_layers) + " layer(s) x " +
                std::to_string(grid->ranks) + " rank(s) from " + std::to_string(inputs.size()) +
                " files";
  }
  auto summary = models::ImportTraceFiles(o.format, inputs, source, o.output, options);
  if (!summary.ok()) return Fail(io, summary.error());
  io.out << "moesim trace import: wrote " << o.output << ": " << summary->tokens << " tokens in "
         << summary->records << " records, " << options.num_experts << " experts, top-"
         << summary->top_k << grid_note << "\n";
  return 0;
}

int Import(const TraceOptions& o, CommandIo& io) {
  if (o.format == "counts") {
    // Per-expert counts carry no per-token routing: draw tokens whose per-expert totals match them
    // (the MEASURED generator, as `trace gen --distribution measured`).
    if (o.inputs.size() != 1 || !o.pattern.empty()) {
      return Fail(io, Error("import counts reads one counts CSV (no --pattern); " +
                            std::to_string(o.inputs.size()) + " input(s) given"));
    }
    if (o.tokens == 0) {
      return Fail(io, InputError({}, "--tokens", "0", "counts give totals, not tokens",
                                 "--tokens T (per rank, step and layer) and --ranks R"));
    }
    TraceOptions measured = o;
    measured.distribution = "measured";
    measured.counts_file = o.inputs.front();
    measured.counts_given = true;
    measured.from_counts_import = true;
    return Gen(measured, io);
  }
  auto shape = ResolveShape(o, /*need_top_k=*/false);
  if (!shape.ok()) return Fail(io, shape.error());
  models::TraceImportOptions options;
  options.num_experts = shape->experts;
  if (shape->top_k != 0) options.top_k = shape->top_k;
  options.model = o.model;
  options.step = o.step;
  options.layer = o.layer;
  options.rank = o.rank;
  const std::string& input = o.inputs.front();
  if (o.inputs.size() > 1 || !o.pattern.empty() ||
      input.find_first_of("*?[") != std::string::npos) {
    return ImportMany(o, options, io);
  }
  auto summary = models::ImportTrace(o.format, input, o.output, options);
  if (!summary.ok()) return Fail(io, summary.error());
  io.out << "moesim trace import: wrote " << o.output << ": " << summary->tokens << " tokens in "
         << summary->records << " records, " << shape->experts << " experts, top-" << summary->top_k
         << "\n";
  return 0;
}

int Merge(const TraceOptions& o, CommandIo& io) {
  auto files = models::ExpandTraceGlobs(o.inputs);
  if (!files.ok()) return Fail(io, files.error());
  models::TraceMergeOptions options;
  if (!o.along.empty()) {
    auto axis = models::ParseTraceAxis(o.along);
    if (!axis.ok()) return Fail(io, axis.error());
    options.along = *axis;
  }
  auto summary = models::MergeTraces(*files, o.output, options);
  if (!summary.ok()) return Fail(io, summary.error());
  io.out << "moesim trace merge: wrote " << o.output << ": " << summary->records << " records, "
         << summary->tokens << " tokens from " << files->size() << " traces; ranks 0.."
         << summary->ranks - 1 << ", layers 0.." << summary->layers - 1 << ", steps 0.."
         << summary->max_step << "\n";
  return 0;
}

// The placement of one EP group of `o.ep` ranks over the trace's layers (--placement; EPLB from
// the trace's own per-layer loads).
StatusOr<models::ExpertPlacement> StatsPlacement(const TraceOptions& o,
                                                const models::TraceCounts& counted) {
  MOESIM_ASSIGN_OR_RETURN(pb::ExpertPlacementSpec spec, ParsePlacementFlag(o.placement));
  const uint32_t experts = counted.header.num_experts();
  pb::ModelSpec model;
  model.set_num_experts(experts);
  model.set_top_k(counted.header.top_k());
  MOESIM_ASSIGN_OR_RETURN(models::Plan plan, models::EpGroupPlan(model, o.ep));
  std::vector<std::vector<uint64_t>> loads = counted.counts;
  for (auto& layer : loads) layer.resize(experts, 0);  // a layer without records: no load
  const uint32_t layers = static_cast<uint32_t>(std::max<size_t>(loads.size(), 1));
  return models::ResolvePlacement(spec, plan, experts, layers, /*gpus_per_node=*/0, loads,
                                  nullptr);
}

// The dispatch send matrix of each layer, [layer][src * ranks + dst] tokens summed over steps:
// the trace's ranks form EP groups of `o.ep` consecutive ranks, each holding `placement`, and a
// token goes once per selected expert from its rank to the rank holding that expert (a replicated
// expert: the replica models/placement.h's rule picks, counting a sender's tokens from the start
// of each record). Streams the trace a second time.
StatusOr<std::vector<std::vector<uint64_t>>> SendMatrices(const TraceOptions& o,
                                                          const models::TraceCounts& counted,
                                                          const models::ExpertPlacement& placement) {
  const uint32_t ranks = counted.ranks;
  std::vector<std::vector<uint64_t>> matrix(counted.counts.size());
  for (size_t layer = 0; layer < matrix.size(); ++layer) {
    if (!counted.counts[layer].empty()) matrix[layer].assign(uint64_t{ranks} * ranks, 0);
  }
  MOESIM_ASSIGN_OR_RETURN(models::TraceReader reader, models::TraceReader::Open(o.input));
  std::vector<uint32_t> ep_group(o.ep);
  std::vector<uint64_t> nth(counted.header.num_experts());
  pb::TraceRecord record;
  for (;;) {
    MOESIM_ASSIGN_OR_RETURN(bool got, reader.Next(&record));
    if (!got) break;
    // The first pass saw every layer and rank of the file; only a file changed since has others.
    if (record.layer() >= matrix.size() || matrix[record.layer()].empty() ||
        record.rank() >= ranks) {
      return Error(o.input + ": changed while it was being read");
    }
    uint64_t* row = matrix[record.layer()].data() + uint64_t{record.rank()} * ranks;
    const uint32_t src = record.rank();
    const uint32_t base = src - src % o.ep;  // base + ep <= ranks, a multiple of ep
    for (uint32_t i = 0; i < o.ep; ++i) ep_group[i] = base + i;
    const models::LayerPlacement& layer = placement.layer(record.layer());
    std::fill(nth.begin(), nth.end(), 0);
    for (uint32_t e : record.experts()) {  // e < num_experts, checked by the reader
      const auto replica = models::ChooseReplica(layer, e, ep_group, src % o.ep, 0, nth[e]++);
      ++row[base + replica.ep_rank];
    }
  }
  return matrix;
}

// `values` per expert, 16 to a line, each line labelled with its experts' ids.
void PrintPerExpert(const char* label, const google::protobuf::RepeatedField<uint64_t>& values,
                    std::ostream& out) {
  for (int e = 0; e < values.size(); e += 16) {
    std::string line =
        fmt::format("        {} {:>3}-{:<3}", label, e, std::min(e + 16, values.size()) - 1);
    for (int j = e; j < std::min(e + 16, values.size()); ++j) line += fmt::format(" {}", values[j]);
    out << line << "\n";
  }
}

int Stats(const TraceOptions& o, CommandIo& io) {
  constexpr uint32_t kMaxPrintedRanks = 16;  // 16 columns of 10 characters: one terminal line
  auto counted = models::CountTrace(o.input, o.capacity_factor);
  if (!counted.ok()) return Fail(io, counted.error());
  const pb::TraceHeader& h = counted->header;
  if (!o.model.empty()) {
    const StatusOr<std::string> catalog = models::CatalogDir();
    if (!catalog.ok()) return Fail(io, catalog.error());
    auto spec = models::LoadCatalogModel(o.model, Location{}, *catalog);
    if (!spec.ok()) return Fail(io, spec.error());
    const Status match =
        models::CheckTraceMatchesModel(h, o.input, o.model, spec->num_experts(), spec->top_k());
    if (!match.ok()) return Fail(io, match.error());
  }
  if (o.placement_given && o.ep == 0) {
    return Fail(io, Error("--placement needs --ep: the experts are placed over an EP group"));
  }
  if (o.ep != 0 && o.placement == "contiguous" && h.num_experts() % o.ep != 0) {
    return Fail(io, InputError(Location{}, "--ep", std::to_string(o.ep),
                               std::to_string(h.num_experts()) +
                                   " experts cannot be split evenly over the EP ranks",
                               "a divisor of " + std::to_string(h.num_experts()) +
                                   ", or --placement round-robin"));
  }
  std::optional<models::ExpertPlacement> placement;
  std::vector<std::vector<uint64_t>> matrices;
  if (o.ep != 0) {
    auto placed = StatsPlacement(o, *counted);
    if (!placed.ok()) return Fail(io, placed.error());
    placement = std::move(*placed);
    if (counted->ranks % o.ep == 0 && counted->ranks <= kMaxPrintedRanks) {
      auto m = SendMatrices(o, *counted, *placement);
      if (!m.ok()) return Fail(io, m.error());
      matrices = std::move(*m);
    }
  }

  pb::TraceStats stats;
  stats.set_file(o.input);
  *stats.mutable_header() = h;
  stats.set_records(counted->records);
  stats.set_ranks(counted->ranks);
  stats.set_ep(o.ep);
  if (placement) stats.set_placement(placement->description());
  stats.set_capacity_factor(o.capacity_factor);
  for (size_t layer = 0; layer < counted->counts.size(); ++layer) {
    const std::vector<uint64_t>& counts = counted->counts[layer];
    if (counts.empty()) continue;  // no record of this layer
    const models::LoadStats s = models::ComputeLoadStats(counts, counted->tokens[layer], 0);
    pb::TraceLayerStats* l = stats.add_layers();
    l->set_layer(static_cast<uint32_t>(layer));
    l->set_tokens(s.tokens);
    l->set_selections(s.selections);
    l->set_mean_load(s.mean_load);
    l->set_min_load(s.min_load);
    l->set_max_load(s.max_load);
    l->set_min_over_mean(s.min_over_mean);
    l->set_max_over_mean(s.max_over_mean);
    l->set_cv(s.cv);
    l->set_entropy_bits(s.entropy_bits);
    l->set_idle_experts(s.idle_experts);
    l->mutable_expert_loads()->Add(counts.begin(), counts.end());
    if (o.capacity_factor > 0) {
      const std::vector<uint64_t>& dropped = counted->dropped[layer];
      l->mutable_expert_dropped()->Add(dropped.begin(), dropped.end());
      uint64_t all = 0;
      for (uint64_t d : dropped) all += d;
      l->set_dropped(all);
    }
    if (placement) {
      const std::vector<uint64_t> loads =
          models::RankLoads(placement->layer(static_cast<uint32_t>(layer)), counts);
      l->mutable_ep_rank_loads()->Add(loads.begin(), loads.end());
      const double mean = static_cast<double>(s.selections) / o.ep;
      l->set_ep_max_over_mean(mean > 0 ? *std::max_element(loads.begin(), loads.end()) / mean : 0);
    }
    if (layer < matrices.size() && !matrices[layer].empty()) {
      l->mutable_send_matrix()->Add(matrices[layer].begin(), matrices[layer].end());
    }
  }
  if (Status sane = CheckReportedFigures(stats, "the statistics of " + o.input); !sane.ok()) {
    return Fail(io, sane.error());
  }
  if (o.json) return PrintJson(stats, io);

  std::ostream& out = io.out;
  out << "moesim trace stats: " << o.input << "\n"
      << "  model " << (h.model().empty() ? "-" : h.model()) << ", " << h.num_experts()
      << " experts, top-" << h.top_k() << ", " << counted->records << " records\n"
      << "  source " << (h.source().empty() ? "-" : h.source()) << "\n"
      << "  (load = selections per expert over all steps and ranks; max/mean = min/mean = 1 and "
      << "entropy " << fmt::format("{:.3f}", std::log2(static_cast<double>(h.num_experts())))
      << " bits = balanced)\n";
  out << fmt::format("  {:>5} {:>12} {:>9} {:>7} {:>13} {:>12} {:>9} {:>11}\n", "layer", "tokens",
                     "max/mean", "cv", "entropy bits", "idle experts", "min/mean", "mean load");
  for (const pb::TraceLayerStats& l : stats.layers()) {
    out << fmt::format("  {:5} {:12} {:>9.3f} {:>7.3f} {:>13.3f} {:12} {:>9.3f} {:>11.1f}\n",
                       l.layer(), l.tokens(), l.max_over_mean(), l.cv(), l.entropy_bits(),
                       l.idle_experts(), l.min_over_mean(), l.mean_load());
    if (o.per_expert) PrintPerExpert("experts", l.expert_loads(), out);
    if (o.capacity_factor > 0) {
      // The expert that lost most, the first of equals.
      const auto most = std::max_element(l.expert_dropped().begin(), l.expert_dropped().end());
      out << fmt::format("        dropped at capacity factor {:g}: {} of {} copies ({:.2f} %)",
                         o.capacity_factor, l.dropped(), l.selections(),
                         l.selections() ? 100.0 * l.dropped() / l.selections() : 0.0);
      if (l.dropped() > 0) {
        out << fmt::format("; most: expert {} ({})", most - l.expert_dropped().begin(), *most);
      }
      out << "\n";
      if (o.per_expert) PrintPerExpert("dropped", l.expert_dropped(), out);
    }
    if (placement) {
      out << "        tokens per EP rank (" << o.ep << " ranks, " << placement->description()
          << "):";
      for (uint64_t load : l.ep_rank_loads()) out << " " << load;
      out << "  max/mean " << fmt::format("{:.3f}", l.ep_max_over_mean()) << "\n";
    }
  }
  if (!placement) return 0;
  const uint32_t ranks = counted->ranks;
  if (ranks % o.ep != 0) {
    out << "  (no send matrix: the trace has " << ranks << " rank(s), not a multiple of --ep "
        << o.ep << ")\n";
    return 0;
  }
  for (const pb::TraceLayerStats& l : stats.layers()) {
    out << "  layer " << l.layer() << " dispatch send matrix (tokens, row = source rank, column = "
        << "destination rank, summed over steps):\n";
    if (ranks > kMaxPrintedRanks) {
      out << "    " << ranks << " ranks: too wide to print\n";
      continue;
    }
    for (uint32_t i = 0; i < ranks; ++i) {
      out << "   ";
      for (uint32_t j = 0; j < ranks; ++j) {
        out << fmt::format(" {:9}", l.send_matrix(static_cast<int>(i * ranks + j)));
      }
      out << "\n";
    }
  }
  return 0;
}

}  // namespace

void AddTraceCommand(CLI::App& app, CommandAction* chosen) {
  auto options = std::make_shared<TraceOptions>();
  CLI::App* trace = app.add_subcommand(
      "trace", "Routing traces: generate, import (Megatron JSONL, CSV, .npy) and summarize");
  trace->require_subcommand(1);

  CLI::App* gen = trace->add_subcommand(
      "gen", "Write a trace drawn from a seeded synthetic distribution (models/synthetic.h)");
  gen->add_option("--model", options->model, "Catalog model: gives --experts and --top-k");
  gen->add_option("--experts", options->experts, "Routed experts E")->check(CLI::PositiveNumber);
  gen->add_option("--top-k", options->top_k, "Experts per token")->check(CLI::PositiveNumber);
  gen->add_option("--tokens", options->tokens, "Tokens per rank, step and layer")
      ->required()
      ->check(CLI::PositiveNumber);
  gen->add_option("--steps", options->steps, "Training steps")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  gen->add_option("--layers", options->layers, "MoE layers")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  gen->add_option("--ranks", options->ranks, "Ranks")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  gen->add_option("--distribution", options->distribution, "uniform, zipf, collapse or measured")
      ->capture_default_str();
  CLI::Option* alpha =
      gen->add_option("--alpha", options->alpha, "zipf: exponent (> 0)")->capture_default_str();
  CLI::Option* fraction =
      gen->add_option("--fraction", options->fraction, "collapse: fraction of collapsed tokens")
          ->capture_default_str();
  CLI::Option* hot =
      gen->add_option("--hot-experts", options->hot_experts, "collapse: hot experts (0 = top-k)");
  const std::vector<CLI::Option*> counts = {
      gen->add_option("--counts", options->counts_file,
                      "measured: expert counts CSV (model,domain,layer,expert,count)"),
      gen->add_option("--counts-model", options->counts_model, "measured: model rows, e.g. olmoe"),
      gen->add_option("--counts-domain", options->counts_domain,
                      "measured: domain rows, e.g. arxiv"),
      gen->add_option("--counts-layer", options->counts_layer,
                      "measured: the measured layer every generated layer takes its counts from")};
  gen->add_option("--router-groups", options->router_groups,
                  "uniform, zipf: group-limited routing over this many groups of consecutive "
                  "experts (DeepSeek's n_group)");
  gen->add_option("--router-group-topk", options->router_group_topk,
                  "uniform, zipf: groups each token's experts come from (DeepSeek's topk_group)");
  gen->add_option("--seed", options->seed, "Seed")->capture_default_str();
  gen->add_option("-o,--output", options->output, "Trace file to write")->required();
  gen->callback([options, chosen, alpha, fraction, hot, counts] {
    options->alpha_given = alpha->count() > 0;
    options->fraction_given = fraction->count() > 0;
    options->hot_given = hot->count() > 0;
    options->counts_given = std::any_of(counts.begin(), counts.end(),
                                        [](const CLI::Option* c) { return c->count() > 0; });
    *chosen = [options](CommandIo& io) { return Gen(*options, io); };
  });

  CLI::App* import = trace->add_subcommand(
      "import",
      "Convert top-k expert ids to a trace: megatron-jsonl, csv (one token per line) or "
      "npy ([tokens, top_k] integers)");
  import
      ->add_option("format", options->format,
                   "megatron-jsonl, csv, npy, or counts (per-expert counts CSV: "
                   "model,domain,layer,expert,count)")
      ->required();
  import->footer(
      "megatron-jsonl: one JSON object per line (blank lines skipped, other fields ignored):\n"
      "  {\"step\": 0, \"layer\": 3, \"rank\": 1, \"num_tokens\": 2, \"topk\": 2,\n"
      "   \"top_indices\": [[5, 1], [0, 7]], \"top_scores\": [[0.6, 0.4], [0.7, 0.3]]}\n"
      "  step, layer, rank, num_tokens, topk, top_indices required; top_indices per token (lists\n"
      "  of topk ids) or flat (num_tokens x topk ids, token-major); top_scores optional, same\n"
      "  shape. Ids 0..experts-1; a line is at most 64 MiB, nested at most 64 levels deep.\n"
      "csv: one token per line, its topk ids separated by commas (a first line that is\n"
      "not ids is a header). npy: a [tokens, topk] integer array. counts:\n"
      "model,domain,layer,expert,count rows; tokens are drawn to match them.\n"
      "Many csv/npy files: each holds one (step, layer, rank), read from its base name by\n"
      "--pattern, e.g. --pattern 'r{rank}_l{layer}_s{step}.csv' ({step}, {layer}, {rank}\n"
      "match digits; one missing takes --step/--layer/--rank). Quoted globs ('dump/*.csv') are\n"
      "expanded by moesim, so 10,000 files need no long command line. Every (step, layer,\n"
      "rank) of the grid (the steps and layers named, ranks 0..max) must be exactly one file;\n"
      "records are written in (step, layer, rank) order whatever the order of the files.\n"
      "Many megatron-jsonl files are read in path order.");
  import->add_option("input", options->inputs, "File(s) to read, or quoted glob patterns")
      ->required();
  import->add_option("--pattern", options->pattern,
                     "csv, npy: each file's (step, layer, rank) from its base name, e.g. "
                     "'r{rank}_l{layer}_s{step}.csv'");
  import->add_option("-o,--output", options->output, "Trace file to write")->required();
  import->add_option("--model", options->model, "Catalog model: gives --experts and --top-k");
  import->add_option("--experts", options->experts, "Routed experts E")->check(CLI::PositiveNumber);
  import->add_option("--top-k", options->top_k, "Experts per token (checked against the input)")
      ->check(CLI::PositiveNumber);
  CLI::Option* step =
      import->add_option("--step", options->step, "csv, npy: the step of every token");
  CLI::Option* layer =
      import->add_option("--layer", options->layer, "csv, npy: the layer of every token");
  CLI::Option* rank =
      import->add_option("--rank", options->rank, "csv, npy: the rank of every token");
  import->add_option("--tokens", options->tokens, "counts: tokens per rank, step and layer");
  import->add_option("--ranks", options->ranks, "counts: ranks")->capture_default_str();
  import->add_option("--steps", options->steps, "counts: steps")->capture_default_str();
  import->add_option("--counts-model", options->counts_model, "counts: model rows, e.g. olmoe");
  import->add_option("--counts-domain", options->counts_domain, "counts: domain rows, e.g. arxiv");
  import->add_option("--counts-layer", options->counts_layer, "counts: the measured layer");
  import->add_option("--seed", options->seed, "counts: seed of the draw")->capture_default_str();
  import->callback([options, chosen, step, layer, rank] {
    options->step_given = step->count() > 0;
  options->layer_given = layer->count() > 0;
  options->rank_given = rank->count() > 0;
  *chosen = [options](CommandIo& io) { return Import(*options, io); };
  });

  CLI::App* merge = trace->add_subcommand(
      "merge", "Join traces of the same experts and top-k into one (models/trace_merge.h)");
  merge->add_option("traces", options->inputs, "Traces to merge, or quoted glob patterns")
      ->required();
  merge->add_option("-o,--output", options->output, "Trace file to write")->required();
  merge->add_option("--along", options->along,
                    "step, layer or rank: shift each trace's steps, layers or ranks past the "
                    "traces before it (two 1-rank traces -> one 2-rank trace); without it "
                    "records keep their own");
  merge->footer(
      "The traces must agree on num_experts, top_k and (where both name one) the model. Records\n"
      "are copied in the order of the traces. A (step, layer, rank) in two traces (after the\n"
      "shift) is an error naming it and both files.");
  merge->callback([options, chosen] {
    *chosen = [options](CommandIo& io) { return Merge(*options, io); };
  });

  CLI::App* stats = trace->add_subcommand(
      "stats",
      "Per layer: tokens, max/mean and min/mean load, coefficient of variation, entropy, idle "
      "experts; with --ep, tokens per EP rank under a placement and the dispatch send matrix");
  stats->add_option("trace", options->input, "Trace file")->required();
  stats
      ->add_option("--ep", options->ep,
                   "Also tokens per EP rank and the dispatch matrix (EP groups of consecutive "
                   "ranks, each holding the --placement)")
      ->check(CLI::PositiveNumber);
  stats->add_option("--model", options->model,
                    "Catalog model the trace is used with: experts and top-k must match");
  CLI::Option* placed = stats->add_option(
      "--placement", options->placement,
      "With --ep: contiguous, round-robin, eplb[:REDUNDANT[:GROUPS]] (DeepSeek's EPLB on the "
      "trace's own loads) or FILE.csv (layer,expert,ep_rank)");
  stats->add_flag("--per-expert", options->per_expert, "Also each expert's load, per layer");
  stats
      ->add_option("--capacity-factor", options->capacity_factor,
                   "Also the copies dropped over each record's per-expert capacity "
                   "ceil(tokens x top_k / experts x CF), as Megatron-Core's "
                   "moe_expert_capacity_factor drops them on each rank")
      ->check(CLI::PositiveNumber);
  stats->add_flag("--json", options->json,
                  "Print the statistics (every expert's load included) as protobuf JSON");
  stats->callback([options, chosen, placed] {
    options->placement_given = placed->count() > 0;
    *chosen = [options](CommandIo& io) { return Stats(*options, io); };
  });
}

}  // namespace moesim::sim
