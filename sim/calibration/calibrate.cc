#include "sim/calibration/calibrate.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <sstream>

#include "sim/calibration/least_squares.h"
#include "sim/compute/profile_model.h"

namespace moesim::sim {
namespace {

void AddFitted(pb::HardwareProfile& profile, const std::string& name, double value,
               double std_error, const SystemFit& fit, int column) {
  pb::FittedParameter* f = profile.add_fit();
  f->set_name(name);
  f->set_value(value);
  f->set_std_error(std_error);
  f->set_measurements(fit.support[column]);
  f->set_rms_relative_residual(fit.rms[column]);
}

// A fit's refusals into the profile: each in not_fitted; a contradicted rate also as a note that
// the profile is partial (the command repeats those notes on stderr).
void AddRefused(const SystemFit& fit, pb::HardwareProfile& profile) {
  for (const std::string& why : fit.refused) profile.add_not_fitted(why);
  for (const std::string& why : fit.contradicted) profile.add_notes(kPartialProfile + why);
}

std::string Percent(double v) {
  std::ostringstream s;
  s.precision(3);
  s << v * 100 << "%";
  return s.str();
}

// GPU system columns.
enum GpuColumn { kLaunch = 0, kInvRate = 1, kHalfOverRate = 2, kInvMemory = 3 };

// The GPU system over `obs`, parameters named `prefix` + field: columns launch, 1/R, n_half/R and,
// `with_memory`, 1/M (a GEMM band has no memory-bound measurement of its own).
StatusOr<SystemFit> FitGpuSystem(const std::string& prefix,
                                 const std::vector<const Observation*>& obs, bool with_memory) {
  std::vector<Param> params = {
      {prefix + "launch_overhead_ns", true,
       "cannot be told apart from the other parameters in these measurements"},
      {prefix + "gemm_peak_tflops", false, "cannot be told apart from the other parameters"},
      {prefix + "gemm_n_half", true,
       "every expert measurement has the same active experts x 6*h*f, so the half-rate point "
       "cannot be told apart from the launch overhead (add `moebench gemm` shapes with other "
       "--experts, or runs with other widths)"}};
  if (with_memory) {
    params.push_back(
        {prefix + "memory_bandwidth_gbps", true, "cannot be told apart from the other parameters"});
  }
  std::vector<std::vector<double>> x;
  std::vector<double> t;
  for (const Observation* o : obs) {
    std::vector<double> row = {1.0, 0.0, 0.0};
    if (o->kind == Observation::Kind::kExpert) row = {1.0, o->x1, o->x2};
    if (with_memory) row.push_back(o->kind == Observation::Kind::kRouter ? o->x1 : 0.0);
    x.push_back(row);
    t.push_back(o->time_ns);
  }
  std::vector<int> drop = {kHalfOverRate, kLaunch, kInvRate};
  if (with_memory) drop.insert(drop.begin(), kInvMemory);
  return FitSystem(x, t, params, drop);
}

// Writes a GPU fit's GEMM figures through the setters, and its memory bandwidth (when fitted).
template <typename Launch, typename Rate, typename Half>
void RecordGpu(const SystemFit& fit, const std::string& prefix, pb::HardwareProfile& profile,
               Launch set_launch, Rate set_rate, Half set_half) {
  const auto& th = fit.theta;
  const Eigen::MatrixXd& c = fit.cov;
  auto se = [&](int j) { return std::sqrt(std::max(0.0, c(j, j))); };
  if (th[kLaunch]) {
    set_launch(*th[kLaunch]);
    AddFitted(profile, prefix + "launch_overhead_ns", *th[kLaunch], se(kLaunch), fit, kLaunch);
  }
  if (th[kInvRate]) {
    const double a = *th[kInvRate];  // ns per FLOP; 1 FLOP/ns = 1e-3 TFLOP/s
    set_rate(1e-3 / a);
    AddFitted(profile, prefix + "gemm_peak_tflops", 1e-3 / a, 1e-3 * se(kInvRate) / (a * a), fit,
              kInvRate);
    if (th[kHalfOverRate]) {
      const double b = *th[kHalfOverRate];
      // n_half = b / a; var = var(b)/a^2 + b^2 var(a)/a^4 - 2 b cov(a,b)/a^3.
      const double var = c(kHalfOverRate, kHalfOverRate) / (a * a) +
                         b * b * c(kInvRate, kInvRate) / (a * a * a * a) -
                         2 * b * c(kInvRate, kHalfOverRate) / (a * a * a);
      set_half(b / a);
      AddFitted(profile, prefix + "gemm_n_half", b / a, std::sqrt(std::max(0.0, var)), fit,
                kHalfOverRate);
    }
  }
  if (th.size() > kInvMemory && th[kInvMemory]) {
    const double inv = *th[kInvMemory];  // ns per byte; 1 byte/ns = 1 GB/s
    profile.mutable_gpu()->set_memory_bandwidth_gbps(1.0 / inv);
    AddFitted(profile, prefix + "memory_bandwidth_gbps", 1.0 / inv, se(kInvMemory) / (inv * inv),
              fit, kInvMemory);
  }
}

Status FitGpu(const std::vector<const Observation*>& obs, pb::HardwareProfile& profile) {
  MOESIM_ASSIGN_OR_RETURN(SystemFit fit, FitGpuSystem("gpu.", obs, true));
  // A size split where one GEMM rate cannot follow the data (a clock held lower through long
  // GEMMs): the expert measurements split by FLOPs at the point that fits best, at least 3 on each
  // side, kept when it halves the RMS residual (RSS below a quarter), as FitLink's size bands.
  std::vector<const Observation*> experts, others;
  for (const Observation* o : obs)
    (o->kind == Observation::Kind::kExpert ? experts : others).push_back(o);
  std::stable_sort(experts.begin(), experts.end(),
                   [](const Observation* a, const Observation* b) { return a->x1 < b->x1; });
  const double m = static_cast<double>(obs.size());
  std::optional<size_t> split;
  std::optional<SystemFit> small, large;
  double best = fit.rss / 4;
  for (size_t k = 3; fit.rss > 1e-8 * m && k + 3 <= experts.size(); ++k) {
    if (experts[k - 1]->x1 == experts[k]->x1) continue;
    std::vector<const Observation*> lo = others;
    lo.insert(lo.end(), experts.begin(), experts.begin() + k);
    const std::vector<const Observation*> hi(experts.begin() + k, experts.end());
    auto a = FitGpuSystem("gpu.", lo, true);
    auto b = FitGpuSystem("gpu.large_gemms.", hi, false);
    if (!a.ok() || !b.ok() || !a->theta[kInvRate] || !b->theta[kInvRate]) continue;
    if (a->rss + b->rss < best) {
      best = a->rss + b->rss;
      split = k;
      small = *a;
      large = *b;
    }
  }
  const SystemFit& used = split ? *small : fit;
  AddRefused(used, profile);
  pb::GpuProfile* gpu = profile.mutable_gpu();
  RecordGpu(
      used, "gpu.", profile, [&](double v) { gpu->set_launch_overhead_ns(v); },
      [&](double v) { gpu->set_gemm_peak_tflops(v); }, [&](double v) { gpu->set_gemm_n_half(v); });
  if (split) {
    profile.add_notes("gpu: GEMM size split at " + Number(experts[*split]->x1) +
                      " FLOPs (RMS relative residual " + Percent(std::sqrt(fit.rss / m)) +
                      " in one piece, " + Percent(std::sqrt(best / m)) + " in two)");
    AddRefused(*large, profile);
    pb::GpuProfile::GemmBand* band = gpu->mutable_large_gemms();
    band->set_min_flops(experts[*split]->x1);
    RecordGpu(
        *large, "gpu.large_gemms.", profile, [&](double v) { band->set_launch_overhead_ns(v); },
        [&](double v) { band->set_gemm_peak_tflops(v); },
        [&](double v) { band->set_gemm_n_half(v); });
  }
  return Status::Ok();
}

// The link system under one duplex: columns alpha, 1/beta, 1/gamma.
StatusOr<SystemFit> FitLinkSystem(const std::string& prefix,
                                  const std::vector<const Observation*>& obs,
                                  pb::LinkProfile::Duplex duplex) {
  const std::vector<Param> params = {
      {prefix + "latency_ns", true,
       "every measurement moves the same bytes, so latency and bandwidth cannot be told apart "
       "(measure other token counts or sizes); the bandwidth takes it all"},
      // Without link bytes (link class "local": nothing leaves the rank) there is no such term.
      {prefix + "bandwidth_gbps", false, "cannot be told apart from the latency", true},
      {prefix + "local_bandwidth_gbps", true,
       "every measurement's local copies are in proportion to its link bytes (balanced "
       "routing), so the two cannot be told apart (measure skewed routing too); left out, the "
       "link bandwidth takes them"}};
  std::vector<std::vector<double>> x;
  std::vector<double> t;
  for (const Observation* o : obs) {
    const AllToAllWork w{o->x1, o->x2, o->x3};
    x.push_back({1.0, w.LinkBytes(duplex), w.local});
    t.push_back(o->time_ns);
  }
  return FitSystem(x, t, params, {2, 0, 1});
}

Status FitLink(const std::string& link_class, const std::string& collective,
               const std::vector<const Observation*>& obs, pb::HardwareProfile& profile) {
  const std::string prefix = "link " + link_class + " " + collective + " ";
  // Both duplex models; half only where it fits strictly better (with balanced traffic the two
  // differ by a constant factor and fit equally: full, the usual case of a GPU link, stays).
  MOESIM_ASSIGN_OR_RETURN(SystemFit full, FitLinkSystem(prefix, obs, pb::LinkProfile::FULL));
  MOESIM_ASSIGN_OR_RETURN(SystemFit half, FitLinkSystem(prefix, obs, pb::LinkProfile::HALF));
  const double m = static_cast<double>(obs.size());
  const bool use_half = half.rss < full.rss * (1 - 1e-6) - 1e-12 * m;
  const SystemFit& fit = use_half ? half : full;
  // Rows that never leave their rank cross no link: no duplex to speak of.
  const bool crosses = std::any_of(obs.begin(), obs.end(), [](const Observation* o) {
    return AllToAllWork{o->x1, o->x2, o->x3}.LinkBytes(pb::LinkProfile::FULL) > 0;
  });
  if (crosses) {
    profile.add_notes(prefix + "duplex: " + (use_half ? "half" : "full") +
                      " (RMS relative residual " + Percent(std::sqrt(full.rss / m)) + " full, " +
                      Percent(std::sqrt(half.rss / m)) + " half)");
  }
  // A size split where one alpha-beta cannot follow the data (a protocol switch): the best split
  // of the observations by link bytes, at least 3 on each side, kept when it halves the RMS
  // residual (RSS below a quarter) and one piece misses by more than rounding (RMS > 0.01%).
  const pb::LinkProfile::Duplex duplex = use_half ? pb::LinkProfile::HALF : pb::LinkProfile::FULL;
  std::vector<const Observation*> sorted = obs;
  auto bytes_of = [&](const Observation* o) {
    return AllToAllWork{o->x1, o->x2, o->x3}.LinkBytes(duplex);
  };
  std::stable_sort(sorted.begin(), sorted.end(), [&](const Observation* a, const Observation* b) {
    return bytes_of(a) < bytes_of(b);
  });
  std::optional<size_t> split;
  std::optional<SystemFit> small, large;
  double best = fit.rss / 4;
  for (size_t k = 3; fit.rss > 1e-8 * m && k + 3 <= sorted.size(); ++k) {
    if (bytes_of(sorted[k - 1]) == bytes_of(sorted[k])) continue;
    const std::vector<const Observation*> lo(sorted.begin(), sorted.begin() + k);
    const std::vector<const Observation*> hi(sorted.begin() + k, sorted.end());
    auto a = FitLinkSystem(prefix, lo, duplex);
    auto b = FitLinkSystem(prefix + "large ", hi, duplex);
    if (!a.ok() || !b.ok() || !a->theta[1] || !b->theta[1]) continue;
    if (a->rss + b->rss < best) {
      best = a->rss + b->rss;
      split = k;
      small = *a;
      large = *b;
    }
  }
  if (split) {
    profile.add_notes(prefix + "size split at " + Number(bytes_of(sorted[*split])) +
                      " link bytes (RMS relative residual " + Percent(std::sqrt(fit.rss / m)) +
                      " in one piece, " + Percent(std::sqrt(best / m)) + " in two)");
  }
  const SystemFit& used = split ? *small : fit;
  AddRefused(used, profile);
  if (split) AddRefused(*large, profile);
  // Nothing moved at all: no entry. Rows moved only within ranks (link class "local"): latency
  // and local bandwidth.
  if (!used.theta[1] && !used.theta[2]) return Status::Ok();
  pb::LinkProfile* link = profile.add_links();
  link->set_link_class(link_class);
  link->set_collective(collective);
  link->set_duplex(duplex);
  // Latency, bandwidth and local bandwidth of one piece into (latency, bandwidth, local) setters.
  auto record = [&](const SystemFit& f, const std::string& name, auto set_latency,
                    auto set_bandwidth, auto set_local) {
    const double latency = f.theta[0].value_or(0.0);
    set_latency(latency);
    if (f.theta[0]) AddFitted(profile, name + "latency_ns", latency, std::sqrt(f.cov(0, 0)), f, 0);
    if (f.theta[1]) {
      const double inv = *f.theta[1];
      set_bandwidth(1.0 / inv);
      AddFitted(profile, name + "bandwidth_gbps", 1.0 / inv, std::sqrt(f.cov(1, 1)) / (inv * inv),
                f, 1);
    }
    if (f.theta[2]) {
      const double inv_local = *f.theta[2];  // ns per byte
      set_local(1.0 / inv_local);
      AddFitted(profile, name + "local_bandwidth_gbps", 1.0 / inv_local,
                std::sqrt(f.cov(2, 2)) / (inv_local * inv_local), f, 2);
    }
  };
  record(
      used, prefix, [&](double v) { link->set_latency_ns(v); },
      [&](double v) { link->set_bandwidth_gbps(v); },
      [&](double v) { link->set_local_bandwidth_gbps(v); });
  if (split) {
    pb::LinkProfile::SizeBand* band = link->mutable_large_messages();
    band->set_min_link_bytes(bytes_of(sorted[*split]));
    record(
        *large, prefix + "large ", [&](double v) { band->set_latency_ns(v); },
        [&](double v) { band->set_bandwidth_gbps(v); },
        [&](double v) { band->set_local_bandwidth_gbps(v); });
  }
  return Status::Ok();
}

}  // namespace

StatusOr<pb::HardwareProfile> FitProfile(const std::vector<Observation>& observations,
                                         const std::string& name) {
  if (observations.empty()) {
    return InputError({}, "measurements", "none", "nothing to fit",
                      "at least one measured Result (moebench run, moebench gemm)");
  }
  std::vector<const Observation*> gpu;
  std::map<std::pair<std::string, std::string>, std::vector<const Observation*>> links;
  for (const Observation& o : observations) {
    if (!(o.time_ns > 0) || !std::isfinite(o.time_ns)) {
      return InputError({}, o.source + ": time_ns", Number(o.time_ns), "a measured time must be",
                        "> 0");
    }
    if (o.kind == Observation::Kind::kAllToAll) {
      links[{o.link_class, o.collective}].push_back(&o);
    } else {
      gpu.push_back(&o);
    }
  }
  pb::HardwareProfile profile;
  profile.set_name(name);
  if (gpu.empty()) {
    profile.add_not_fitted(
        "gpu.*: no expert, router or gemm measurement; the datasheet figures stay");
  } else {
    MOESIM_RETURN_IF_ERROR(FitGpu(gpu, profile));
  }
  for (const auto& [key, obs] : links) {
    MOESIM_RETURN_IF_ERROR(FitLink(key.first, key.second, obs, profile));
  }
  return profile;
}

}  // namespace moesim::sim
