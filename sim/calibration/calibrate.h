// sim/calibration/ owns fitting a HardwareProfile to measurements and validating predictions
// against them: least squares, calibration data, calibrate, validate. It may include sim/moe/,
// sim/network/, sim/compute/ (and topology/, models/, proto/).
//
// Fitting a HardwareProfile (proto/hardware.proto) to measured times by least squares (Eigen).
//
// Each Observation is one measured time and the work behind it, in the linear form of
// sim/compute/profile_model.h. The observations fall into independent systems: the GPU's (expert
// and router phases, `moebench gemm` shapes) with parameters
//   launch L [ns], 1/R [ns per FLOP], n_half/R [ns per active FLOP], 1/M [ns per byte]
// and one per (link class, collective) with parameters alpha [ns], 1/beta [ns per byte] and
// 1/gamma [ns per local byte], fitted twice, with full- and half-duplex link bytes, keeping the
// one with the smaller residual (a note in the profile says which, and both residuals).
// Each system minimises the squared RELATIVE residuals, sum_i ((x_i . theta - t_i) / t_i)^2,
// so a 10 us all-to-all weighs as much as a 10 ms one (the measurements span decades).
//
// A parameter that no observation involves (its column is zero), or whose column the others'
// can reproduce (e.g. every expert measurement has the same active experts, so n_half/R and L
// cannot be told apart), is refused: left out of the fit and of the profile (the datasheet
// figure stays), and named in `not_fitted` with the reason. A fitted L, n_half or alpha below
// zero is not physical: it is refused the same way and the rest refitted without it. A rate (R,
// M, beta, gamma) at or below zero means the measurements contradict the model (a busy machine,
// a mislabelled file): no parameter of that system (the GPU's, one link's) is fitted, each is
// named in `not_fitted`, and a note starting kPartialProfile says the profile is partial.
// Standard errors come from the covariance s^2 (A^T A)^-1 with s^2 = RSS / (m - p) (m
// observations, p fitted parameters; unknown, reported as 0, when m == p), carried to R, n_half,
// M and beta by the delta method.
//
//   std::vector<Observation> obs = ...;          // sim/calibration/calibration_data.h reads them
//   from files MOESIM_ASSIGN_OR_RETURN(pb::HardwareProfile p, FitProfile(obs, "cpu-2rank"));
//   p.gpu().gemm_peak_tflops();  p.fit(0).measurements();  p.not_fitted(0);
#pragma once

#include <string>
#include <vector>

#include "proto/hardware.pb.h"
#include "proto/status.h"

namespace moesim::sim {

struct Observation {
  enum class Kind { kExpert, kRouter, kAllToAll };
  Kind kind = Kind::kExpert;
  // kExpert: x1, x2 = ExpertWork's flops, active (sim/compute/profile_model.h); kRouter: x1 =
  // bytes; kAllToAll: one rank's AllToAllWork: x1 = sent off-rank, x2 = received off-rank, x3 =
  // local.
  double x1 = 0, x2 = 0, x3 = 0;
  // kAllToAll: which LinkProfile it informs.
  std::string link_class, collective;
  double time_ns = 0;  // > 0
  // Where it comes from, for error messages: "runs/a.pb: phases[2] (expert, layer 0), rank 1".
  std::string source;
};

// How the notes of a partial profile begin.
inline constexpr char kPartialProfile[] = "partial profile: ";

// Fits every system the observations touch. Errors: no observations; a time that is not > 0
// (names its source). `name` goes into the profile.
StatusOr<pb::HardwareProfile> FitProfile(const std::vector<Observation>& observations,
                                         const std::string& name);

}  // namespace moesim::sim
