// Weighted linear least squares for `moesim calibrate` (sim/calibration/calibrate.cc): fits theta
// to rows x_i . theta = t_i by their relative residuals, refusing parameters the data cannot tell
// apart (dependent columns, in a stated order) or that come out negative where that is not
// physical.
//
//   MOESIM_ASSIGN_OR_RETURN(SystemFit f, FitSystem(x, t, params, /*drop_order=*/{2, 0, 1}));
//   f.theta[1]   // nullopt when refused; f.refused says why
#pragma once

#include <Eigen/Dense>
#include <optional>
#include <string>
#include <vector>

#include "proto/status.h"

namespace moesim::sim {

// One unknown of a linear system: theta_j.
struct Param {
  std::string name;
  // true: below zero is not physical, so the parameter is refused and the rest refitted;
  // false: it must come out > 0 (a rate), else the data contradict the model and the whole
  // system is left unfitted (SystemFit::contradicted).
  bool may_refuse_negative = false;
  // Why a collinear column cannot be fitted, in the user's terms.
  std::string collinear_hint;
  // true: a column no measurement involves is simply absent (its theta nullopt), not refused: a
  // term the measured system does not have (no link bytes where nothing leaves the rank).
  bool absent_when_unused = false;
};

struct SystemFit {
  std::vector<std::optional<double>> theta;  // nullopt: refused
  Eigen::MatrixXd cov;                       // over all parameters; 0 where refused
  std::vector<uint32_t> support;             // rows involving each parameter
  std::vector<double> rms;                   // RMS relative residual over those rows
  std::vector<std::string> refused;          // "name: why"
  // A rate the data put at or below zero ("name: why", also in `refused`): then no parameter of
  // the system is fitted and the profile keeps the datasheet's figures (a partial profile).
  std::vector<std::string> contradicted;
  double rss = 0;                            // sum of squared relative residuals
};

// Minimises sum_i (a_i . theta - 1)^2 over the parameters not refused, a_i = x_i / t_i.
// `drop_order` says which parameter gives way first when columns are dependent.
StatusOr<SystemFit> FitSystem(const std::vector<std::vector<double>>& x,
                              const std::vector<double>& t, const std::vector<Param>& params,
                              const std::vector<int>& drop_order);

// `v` with 4 significant digits, as fitted values and residuals are reported.
std::string Number(double v);

}  // namespace moesim::sim
