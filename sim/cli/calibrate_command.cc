// `moesim calibrate RESULT... [--scenario FILE]... --out PROFILE [--name NAME]
// [--a2a-link-class CLASS]`: fits a
// HardwareProfile (proto/hardware.proto) from measured Results (sim/calibration/calibrate.h) and
// prints each fitted parameter with its standard error, RMS relative residual and supporting
// measurements, then the parameters it refused and why.
#include <fmt/format.h>
#include <google/protobuf/text_format.h>

#include <memory>

#include "proto/atomic_file.h"
#include "proto/checked.h"
#include "sim/calibration/calibration_data.h"
#include "sim/cli/command.h"

namespace moesim::sim {
namespace {

struct CalibrateOptions {
  std::vector<std::string> results;
  std::vector<std::string> scenarios;
  std::string out;
  std::string name = "calibrated";
  std::string a2a_link_class = "nvlink";
};

StatusOr<std::vector<Observation>> Gather(const CalibrateOptions& o) {
  std::vector<LoadedScenario> scenarios;
  for (const std::string& path : o.scenarios) {
    MOESIM_ASSIGN_OR_RETURN(LoadedScenario s, LoadScenario(path));
    scenarios.push_back(std::move(s));
  }
  std::vector<Observation> all;
  for (const std::string& path : o.results) {
    if (IsA2aSweepFile(path)) {
      MOESIM_ASSIGN_OR_RETURN(std::vector<Observation> obs,
                              A2aSweepObservations(path, o.a2a_link_class));
      all.insert(all.end(), obs.begin(), obs.end());
      continue;
    }
    MOESIM_ASSIGN_OR_RETURN(const MeasuredFile m, ReadMeasured(path));
    const LoadedScenario* scenario = nullptr;
    if (!IsGemmSweep(m.result)) {
      std::vector<std::string> names;
      for (const LoadedScenario& s : scenarios) {
        if (s.workload.name == m.result.scenario()) scenario = &s;
        names.push_back("\"" + s.workload.name + "\"");
      }
      if (scenario == nullptr) {
        return InputError(
            Location{path}, "scenario", "\"" + m.result.scenario() + "\"",
            "no --scenario file has this name",
            names.empty() ? std::string("pass its scenario with --scenario FILE") : Join(names));
      }
      MOESIM_RETURN_IF_ERROR(CheckSameScenario(m, *scenario));
    }
    MOESIM_ASSIGN_OR_RETURN(std::vector<Observation> obs, ObservationsOf(m, scenario));
    all.insert(all.end(), obs.begin(), obs.end());
  }
  return all;
}

int Run(const CalibrateOptions& o, CommandIo& io) {
  // Before reading and fitting: a path that cannot be written fails now.
  if (Status s = CheckOutputPath(o.out, "--out"); !s.ok()) return Fail(io, s.error());
  auto observations = Gather(o);
  if (!observations.ok()) return Fail(io, observations.error());
  auto profile = FitProfile(*observations, o.name);
  if (!profile.ok()) return Fail(io, profile.error());
  std::string source = "moesim calibrate";
  for (const std::string& r : o.results) source += " " + r;
  profile->set_source(source);
  // What calibrate writes, --hardware must read back: the fit's figures in the ranges the profile
  // declares (proto/hardware.proto), finite, and no time or rate negative.
  if (Status s = CheckDeclaredRanges(*profile, [&](const std::string&) { return Location{o.out}; });
      !s.ok()) {
    return Fail(io, Error("the fitted profile cannot be used: " + s.error().message()));
  }
  if (Status s = CheckReportedFigures(*profile, "the fitted profile"); !s.ok()) {
    return Fail(io, s.error());
  }
  std::string text;
  google::protobuf::TextFormat::PrintToString(*profile, &text);
  const Status written = WriteFileAtomically(
      o.out,
      "# proto-file: proto/hardware.proto\n# proto-message: moesim.pb.HardwareProfile\n" + text,
      "the profile");
  if (!written.ok()) return Fail(io, written.error());
  io.out << "# " << observations->size() << " measurements from " << o.results.size()
         << " file(s); profile written to " << o.out << "\n";
  io.out << fmt::format("{:<40} {:>14} {:>12} {:>6} {:>10}\n", "parameter", "value", "std_error",
                        "meas.", "rms_resid");
  for (const pb::FittedParameter& f : profile->fit()) {
    io.out << fmt::format("{:<40} {:>14.6g} {:>12.3g} {:6} {:>9.1f}%\n", f.name(), f.value(),
                          f.std_error(), f.measurements(), 100 * f.rms_relative_residual());
  }
  for (const std::string& why : profile->not_fitted()) io.out << "not fitted: " << why << "\n";
  for (const std::string& note : profile->notes()) {
    io.out << "note: " << note << "\n";
    if (note.rfind(kPartialProfile, 0) == 0) io.err << "moesim: warning: " << note << "\n";
  }
  return 0;
}

}  // namespace

void AddCalibrateCommand(CLI::App& app, CommandAction* chosen) {
  auto o = std::make_shared<CalibrateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "calibrate",
      "Fit a hardware profile (GEMM rate curve, memory bandwidth, launch overhead, alpha-beta per "
      "link class and all-to-all) from measured Results, by least squares");
  cmd->add_option("results", o->results,
                  "Measured Results: `moebench run --out` (needs --scenario), `moebench gemm "
                  "--out`; binary, or JSON when the name ends .json; and `moebench a2a --json` "
                  "sweeps (.json)")
      ->required();
  cmd->add_option("--scenario", o->scenarios,
                  "The scenario file of each measured run (matched by name); repeatable");
  cmd->add_option("--out", o->out, "Where to write the profile (text format, .pbtxt)")->required();
  cmd->add_option("--name", o->name, "Name of the profile")->capture_default_str();
  cmd->add_option("--a2a-link-class", o->a2a_link_class,
                  "Link class the `moebench a2a` sweeps' ranks talk over (their entry is "
                  "(class, alltoall))")
      ->capture_default_str();
  cmd->callback([o, chosen] { *chosen = [o](CommandIo& io) { return Run(*o, io); }; });
}

}  // namespace moesim::sim
