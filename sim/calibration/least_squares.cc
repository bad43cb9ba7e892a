#include "sim/calibration/least_squares.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace moesim::sim {

std::string Number(double v) {
  std::ostringstream s;
  s.precision(4);
  s << v;
  return s.str();
}

namespace {

// Rank of the columns `cols` of A, each scaled to unit norm (so units do not matter).
Eigen::Index RankOf(const Eigen::MatrixXd& a, const std::vector<int>& cols) {
  Eigen::MatrixXd s(a.rows(), static_cast<Eigen::Index>(cols.size()));
  for (size_t k = 0; k < cols.size(); ++k) s.col(k) = a.col(cols[k]).normalized();
  Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(s);
  qr.setThreshold(1e-9);
  return qr.rank();
}

}  // namespace

StatusOr<SystemFit> FitSystem(const std::vector<std::vector<double>>& x,
                              const std::vector<double>& t, const std::vector<Param>& params,
                              const std::vector<int>& drop_order) {
  const Eigen::Index m = static_cast<Eigen::Index>(x.size());
  const int p = static_cast<int>(params.size());
  Eigen::MatrixXd a(m, p);
  for (Eigen::Index i = 0; i < m; ++i) {
    for (int j = 0; j < p; ++j) a(i, j) = x[i][j] / t[i];
  }
  SystemFit fit;
  fit.theta.assign(p, std::nullopt);
  fit.cov = Eigen::MatrixXd::Zero(p, p);
  std::vector<int> active;
  for (int j = 0; j < p; ++j) {
    if (a.col(j).norm() > 0) {
      active.push_back(j);
    } else if (!params[j].absent_when_unused) {
      fit.refused.push_back(params[j].name + ": no measurement involves it");
    }
  }
  auto without = [](std::vector<int> cols, int j) {
    std::erase(cols, j);
    return cols;
  };
  for (;;) {
    // Refuse dependent columns until the rest are independent.
    for (Eigen::Index rank = RankOf(a, active); rank < static_cast<Eigen::Index>(active.size());
         rank = RankOf(a, active)) {
      bool dropped = false;
      for (int j : drop_order) {
        if (std::find(active.begin(), active.end(), j) == active.end()) continue;
        if (RankOf(a, without(active, j)) < rank) continue;
        fit.refused.push_back(params[j].name + ": " + params[j].collinear_hint);
        active = without(active, j);
        dropped = true;
        break;
      }
      if (!dropped) return Error("calibrate: dependent parameters, none of which can go");
    }
    if (active.empty()) {
      fit.rss = static_cast<double>(m);
      return fit;
    }
    Eigen::MatrixXd s(m, static_cast<Eigen::Index>(active.size()));
    for (size_t k = 0; k < active.size(); ++k) s.col(k) = a.col(active[k]);
    const Eigen::VectorXd ones = Eigen::VectorXd::Ones(m);
    const Eigen::VectorXd theta = s.colPivHouseholderQr().solve(ones);
    // A parameter that may not be negative and is: refuse it and fit the rest again.
    std::optional<int> negative;
    for (size_t k = 0; k < active.size(); ++k) {
      const Param& q = params[active[k]];
      if (theta[k] > 0) continue;
      if (!q.may_refuse_negative) {
        // A rate at or below zero: the measurements contradict the model (a noisy machine, a
        // mislabelled file). Nothing of this system can be trusted, so none of it is fitted and
        // every figure stays at its datasheet value, each named.
        SystemFit none;
        none.theta.assign(p, std::nullopt);
        none.cov = Eigen::MatrixXd::Zero(p, p);
        none.support.assign(p, 0);
        none.rms.assign(p, 0.0);
        none.rss = static_cast<double>(m);
        none.refused = fit.refused;
        const std::string why = q.name + ": fitted coefficient " + Number(theta[k]) +
                                " <= 0, not physical (the measurements contradict the model of "
                                "sim/compute/profile_model.h); its datasheet figure stays";
        none.refused.push_back(why);
        none.contradicted.push_back(why);
        for (int j : active) {
          if (j == active[k]) continue;
          none.refused.push_back(params[j].name + ": not fitted without " + q.name +
                                 "; its datasheet figure stays");
        }
        return none;
      }
      if (theta[k] < 0 && !negative) negative = active[k];
    }
    if (negative) {
      const double v = theta[std::find(active.begin(), active.end(), *negative) - active.begin()];
      fit.refused.push_back(params[*negative].name + ": fitted " + Number(v) +
                            " < 0, not physical; fixed at 0");
      active = without(active, *negative);
      continue;
    }
    const Eigen::VectorXd residual = s * theta - ones;
    fit.rss = residual.squaredNorm();
    const Eigen::Index dof = m - static_cast<Eigen::Index>(active.size());
    const double s2 = dof > 0 ? residual.squaredNorm() / static_cast<double>(dof) : 0.0;
    const Eigen::MatrixXd cov = s2 * (s.transpose() * s).inverse();
    fit.support.assign(p, 0);
    fit.rms.assign(p, 0.0);
    for (size_t k = 0; k < active.size(); ++k) {
      const int j = active[k];
      fit.theta[j] = theta[k];
      for (size_t l = 0; l < active.size(); ++l) fit.cov(j, active[l]) = cov(k, l);
      double sum = 0;
      for (Eigen::Index i = 0; i < m; ++i) {
        if (a(i, j) == 0) continue;
        ++fit.support[j];
        sum += residual[i] * residual[i];
      }
      fit.rms[j] = fit.support[j] > 0 ? std::sqrt(sum / fit.support[j]) : 0.0;
    }
    return fit;
  }
}

}  // namespace moesim::sim
