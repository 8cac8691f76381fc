#include "core/model/spillover.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cstdlib>

namespace cutoff {

std::vector<double> spillover(const std::vector<double>& gdp, const std::vector<int>& tier,
                              const std::vector<double>& Kbar, const std::vector<double>& tier_sim, double xi) {
  const Eigen::Index C = static_cast<Eigen::Index>(gdp.size());
  // a_cj = GDP_j·tier_sim(|tier_c − tier_j|), zero diagonal: a country learns from others.
  Eigen::MatrixXd a(C, C);
  for (Eigen::Index c = 0; c < C; ++c)
    for (Eigen::Index j = 0; j < C; ++j) a(c, j) = c == j ? 0.0 : gdp[j] * tier_sim[std::abs(tier[c] - tier[j])];
  const Eigen::Map<const Eigen::VectorXd> K(Kbar.data(), C);
  // Plain loops in Eigen's lazy evaluation are fixed-order; no BLAS threads are involved.
  const Eigen::VectorXd num = a * K;
  const Eigen::VectorXd den = a.rowwise().sum();
  std::vector<double> spill(C, 0.0);
  for (Eigen::Index c = 0; c < C; ++c)
    if (den(c) > 0) spill[c] = xi * std::max(num(c) / den(c) - Kbar[c], 0.0);
  return spill;
}

}  // namespace cutoff
