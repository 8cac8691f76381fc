#pragma once
/// @file
/// §2.10 spillover: spill_c = ξ·(Σ_j a_cj·K̄_j / Σ_j a_cj − K̄_c)⁺, a_cj = GDP_j·tier_sim(tier_c, tier_j), j ≠ c.

#include <vector>

namespace cutoff {

/// @param[in] gdp       length C: GDP_c(t) (any consistent unit)
/// @param[in] tier      length C: export tier 1/2/3
/// @param[in] Kbar      length C: employment-weighted mean K_i
/// @param[in] tier_sim  {same tier, adjacent tiers, tiers 1 and 3}
/// @return spill_c, length C (0 where Σ_j a_cj = 0)
std::vector<double> spillover(const std::vector<double>& gdp, const std::vector<int>& tier,
                              const std::vector<double>& Kbar, const std::vector<double>& tier_sim, double xi);

}  // namespace cutoff
