// `moesim sweep SCENARIO --set FIELD=V1,V2,... [--set ...] [--csv|--json|--html FILE]`: the
// scenario at every point of the cross product of the values (sim/sweep/sweep.h), one row per
// point. On all cores; under mpirun or srun the points are spread over the ranks and rank 0 prints
// what a single process prints.
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <thread>

#include "proto/atomic_file.h"
#include "proto/checked.h"
#include "proto/serialize.h"
#include "sim/cli/command.h"
#include "sim/cli/mpi_spread.h"
#include "sim/cli/progress_bar.h"
#include "sim/report/html_report.h"
#include "sim/sweep/sweep.h"

namespace moesim::sim {
namespace {

struct SweepOptions {
  std::string scenario;
  std::vector<std::string> sets;  // "FIELD=VALUES", in flag order
  std::string fidelity = "analytical";
  double flow_tolerance = 0;    // --flow-tolerance (sim/network/flow_model.h)
  std::string csv, json, html;  // output files ("-": stdout instead of the table), or empty
  uint32_t threads = 0;         // 0: every core
  bool quiet = false;
};

// A layer total is microseconds long, a step's seconds: each in the unit that reads.
struct SweepUnit {
  const char* name;
  double per_ns;
  int decimals;
};
SweepUnit UnitOf(const pb::SweepTable& t) {
  return t.kind() == "step" ? SweepUnit{"ms", 1e-6, 3} : SweepUnit{"us", 1e-3, 2};
}

// Columns aligned as nccl-tests prints them: a '#' header, every column as wide as its widest
// cell, numbers right-aligned; a failed point's row ends with its error.
void PrintSweepTable(const pb::SweepTable& t, std::ostream& out) {
  const SweepUnit unit = UnitOf(t);
  out << "# moesim sweep: " << (t.name().empty() ? t.scenario() : t.name()) << " (" << t.scenario()
      << "), " << (t.kind() == "step" ? "whole steps" : "MoE layers") << ", " << t.fidelity()
      << FlowToleranceNote(t.flow_tolerance()) << ": " << t.rows_size() << " points";
  if (t.failed() > 0) out << ", " << t.failed() << " failed";
  out << "\n# change: against point " << t.baseline() << "; bottleneck: "
      << (t.kind() == "step" ? "the longest op of a micro-batch on the slowest stage"
                             : "the longest phase (its bound, its busiest link)")
      << "\n#\n";
  std::vector<std::string> header = {"point"};
  for (const pb::SweepField& f : t.fields()) header.push_back(f.path());
  header.push_back(fmt::format("total {}", unit.name));
  header.push_back("change %");
  for (const std::string& c : t.components()) header.push_back(fmt::format("{} {}", c, unit.name));
  const bool step = t.kind() == "step";
  if (step) {
    header.push_back("mem GB");
    header.push_back("fits");
    header.push_back("MFU %");
  }
  std::vector<std::vector<std::string>> cells;
  auto time = [&](int64_t ns) {
    return fmt::format("{:.{}f}", static_cast<double>(ns) * unit.per_ns, unit.decimals);
  };
  for (const pb::SweepRow& r : t.rows()) {
    std::vector<std::string> row = {std::to_string(r.index())};
    row.insert(row.end(), r.values().begin(), r.values().end());
    if (r.error().empty()) {
      row.push_back(time(r.total_ns()));
      row.push_back(fmt::format("{:+.1f}", r.delta_pct()));
      for (const pb::SweepComponent& c : r.components()) row.push_back(time(c.time_ns()));
      if (step) {
        row.push_back(fmt::format("{:.2f}", static_cast<double>(r.memory_bytes()) / 1e9));
        row.push_back(r.fits() ? "yes" : "no");
        row.push_back(fmt::format("{:.1f}", 100 * r.mfu()));
      }
    }
    cells.push_back(std::move(row));
  }
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& row : cells) {
      if (c < row.size()) width[c] = std::max(width[c], row[c].size());
    }
  }
  const size_t fields = static_cast<size_t>(t.fields_size());
  auto line = [&](const std::vector<std::string>& row, const std::string& tail) {
    std::string text = "  ";
    for (size_t c = 0; c < row.size(); ++c) {
      // The swept values (strings too: presets, enums) left-aligned, numbers right-aligned.
      const bool left = c >= 1 && c <= fields;
      text += left ? fmt::format("{:<{}}  ", row[c], width[c])
                   : fmt::format("{:>{}}  ", row[c], width[c]);
    }
    text += tail;
    text.erase(text.find_last_not_of(' ') + 1);
    return text + "\n";
  };
  std::string head = line(header, "bottleneck");
  head[0] = '#';
  out << head;
  for (int i = 0; i < t.rows_size(); ++i) {
    const pb::SweepRow& r = t.rows(i);
    out << line(cells[static_cast<size_t>(i)],
                r.error().empty() ? r.bottleneck() : "error: " + r.error());
  }
}

// A CSV field: quoted (quotes doubled) when it holds a comma, a quote or a newline.
std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (const char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string SweepCsv(const pb::SweepTable& t) {
  std::string out = "point";
  for (const pb::SweepField& f : t.fields()) out += "," + CsvField(f.path());
  out += ",total_ns,delta_pct";
  for (const std::string& c : t.components()) out += "," + CsvField(c + " ns");
  out += ",bottleneck,memory_bytes,memory_capacity_bytes,fits,mfu,error\n";
  for (const pb::SweepRow& r : t.rows()) {
    out += std::to_string(r.index());
    for (const std::string& v : r.values()) out += "," + CsvField(v);
    out += fmt::format(",{},{:.6f}", r.total_ns(), r.delta_pct());
    for (const pb::SweepComponent& c : r.components()) out += fmt::format(",{}", c.time_ns());
    out += fmt::format(",{},{},{},{},{:.6f},{}\n", CsvField(r.bottleneck()), r.memory_bytes(),
                       r.memory_capacity_bytes(), r.fits() ? 1 : 0, r.mfu(), CsvField(r.error()));
  }
  return out;
}

int RunSweep(const SweepOptions& o, CommandIo& io) {
  const StatusOr<Fidelity> fidelity = ParseFidelity(o.fidelity);
  if (!fidelity.ok()) return Fail(io, fidelity.error());
  const StatusOr<FlowOptions> flow =
      ParseFlowOptions(o.flow_tolerance, *fidelity == Fidelity::kFlow);
  if (!flow.ok()) return Fail(io, flow.error());
  for (const auto& [path, option] :
       {std::pair{o.csv, "--csv"}, std::pair{o.json, "--json"}, std::pair{o.html, "--html"}}) {
    if (path.empty() || path == "-") continue;
    if (Status s = CheckOutputPath(path, option); !s.ok()) return Fail(io, s.error());
  }
  if (o.csv == "-" && o.json == "-") {
    return Fail(io, InputError({}, "--json", "-", "--csv - writes to stdout already",
                               "one of --csv - and --json -, the other to a FILE"));
  }
  if (o.html == "-") {
    return Fail(io, InputError({}, "--html", "-", "the page goes to a file", "a FILE.html path"));
  }
  StatusOr<SweepBase> base = LoadSweepBase(o.scenario);
  if (!base.ok()) return Fail(io, base.error());
  std::vector<SweepAxis> axes;
  for (const std::string& set : o.sets) {
    StatusOr<SweepAxis> axis = ParseSetFlag(set);
    if (!axis.ok()) return Fail(io, axis.error());
    axes.push_back(*std::move(axis));
  }
  const StatusOr<size_t> points = PointCount(axes);
  if (!points.ok()) return Fail(io, points.error());

  const MpiSpread spread = MpiSpread::Start();
  const size_t mine = (*points + spread.size() - 1 - spread.rank()) / spread.size();
  SweepRun run;
  run.fidelity = *fidelity;
  run.flow = *flow;
  run.threads = o.threads != 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  run.offset = spread.rank();
  run.stride = spread.size();
  // Progress on stderr from rank 0 (not under --quiet; not when a test captures stderr).
  run.progress = ProgressBar("moesim sweep", "points", mine,
                             spread.rank() == 0 && &io.err == &std::cerr && !o.quiet);
  std::vector<pb::SweepRow> rows = RunSweepPoints(*base, axes, run);
  pb::SweepTable pack;
  for (pb::SweepRow& r : rows) *pack.add_rows() = std::move(r);
  rows.clear();
  for (const std::string& bytes : spread.GatherBytes(pack.SerializeAsString())) {
    pb::SweepTable part;
    part.ParseFromString(bytes);
    for (pb::SweepRow& r : *part.mutable_rows()) rows.push_back(std::move(r));
  }
  if (spread.rank() != 0) return 0;
  pb::SweepTable table = MakeSweepTable(*base, axes, *fidelity, std::move(rows));
  table.set_flow_tolerance(flow->tolerance);
  if (table.failed() == static_cast<uint32_t>(table.rows_size())) {
    // Not one point ran: a table of errors with exit 0 would hide it.
    return Fail(io,
                Error(table.rows_size() == 1
                          ? table.rows(0).error()
                          : fmt::format("none of the {} points could be simulated; the first: {}",
                                        table.rows_size(), table.rows(0).error())));
  }
  if (const Status sane = CheckReportedFigures(table, "sweep of " + o.scenario); !sane.ok()) {
    return Fail(io, sane.error());
  }
  if (!o.html.empty()) {
    const Status written = WriteFileAtomically(o.html, HtmlSweepPage(table), "the HTML report");
    if (!written.ok()) return Fail(io, written.error());
  }
  bool table_to_stdout = true;
  if (!o.csv.empty()) {
    if (o.csv == "-") {
      io.out << SweepCsv(table);
      table_to_stdout = false;
    } else if (const Status s = WriteFileAtomically(o.csv, SweepCsv(table), "the CSV"); !s.ok()) {
      return Fail(io, s.error());
    }
  }
  if (!o.json.empty()) {
    const StatusOr<std::string> text = DeterministicJson(table);
    if (!text.ok()) return Fail(io, text.error());
    if (o.json == "-") {
      io.out << *text;
      table_to_stdout = false;
    } else if (const Status s = WriteFileAtomically(o.json, *text, "the JSON"); !s.ok()) {
      return Fail(io, s.error());
    }
  }
  if (table_to_stdout) PrintSweepTable(table, io.out);
  return 0;
}

}  // namespace

void AddSweepCommand(CLI::App& app, CommandAction* chosen) {
  auto o = std::make_shared<SweepOptions>();
  CLI::App* cmd = app.add_subcommand(
      "sweep", "one scenario at every point of a cross product of field values, a row per point");
  cmd->add_option("scenario", o->scenario, "scenario file (.pbtxt)")->required();
  cmd->add_option(
         "--set", o->sets,
         "FIELD=VALUES: FIELD a path in the scenario's text field names (plan.ep, "
         "cluster.node.nics.gbit_per_s, routing.synthetic.zipf_alpha, cluster.node_preset, "
         "model_spec.top_k, ...); a repeated message on the path takes [i] (device[0].id), without "
         "one every element gets the value; a path into cluster.node or model_spec while the "
         "scenario names a node_preset or a catalog model first writes the preset or model out. "
         "VALUES: a,b,c; number ranges start:stop:step (0:1.5:0.25, stop included) and "
         "start:stop:xF (100:800:x2); enums by name, bools true/false. Several --set: the cross "
         "product, the last varying fastest")
      ->required()
      ->take_all()
      ->allow_extra_args(false);
  cmd->add_option("--fidelity", o->fidelity, "network model: analytical or flow")
      ->check(CLI::IsMember({"analytical", "flow"}))
      ->capture_default_str();
  cmd->add_option("--flow-tolerance", o->flow_tolerance,
                  "with --fidelity flow: finish every flow due within this fraction of its time "
                  "together (faster; 0 = exact; at most 0.1)")
      ->capture_default_str();
  cmd->add_option("--csv", o->csv,
                  "write every row as CSV to FILE (-: stdout, instead of the table)");
  cmd->add_option("--json", o->json,
                  "write the SweepTable (proto/sweep.proto) as JSON to FILE (-: stdout, instead of "
                  "the table)");
  cmd->add_option("--html", o->html,
                  "write a self-contained HTML page: the total against one field (lines), two "
                  "(a heatmap, and a line per value of the second), the components, every row");
  cmd->add_option("--threads", o->threads, "threads (default: all cores)");
  cmd->add_flag("--quiet", o->quiet, "no progress on stderr");
  cmd->callback([o, chosen] { *chosen = [o](CommandIo& io) { return RunSweep(*o, io); }; });
}

}  // namespace moesim::sim
